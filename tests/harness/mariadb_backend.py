"""A MySQL DB system's data for the MySQL HeatWave fake (tests/ormfake/mysql.py), held by a real MariaDB (the
data-plane tests' MySQL stand-in, dataplane/servers.py).

- snapshot(path): what a HeatWave backup keeps of the data, here `mariadb-dump --single-transaction --routines
  --databases` of every database that is not the server's own (mysql, sys, information_schema,
  performance_schema), plus the accounts other than the administrator (SHOW CREATE USER, SHOW GRANTS): a DB
  system restored from a backup has the source's users too, so MLflow's own login works against it.
- restore(path): a new MariaDB server (its own datadir and port) with that content; its backend is returned.

Clients log in as the server's administrator over TLS, as the DB system requires (require_secure_transport).
"""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from dataplane.servers import MariaDB, ProcessTracker, start_mariadb

from . import tools

SYSTEM_DATABASES = frozenset({"mysql", "sys", "information_schema", "performance_schema"})
SERVER_BINARIES = ("mariadbd", "mariadb-install-db")
CLIENT_BINARIES = ("mariadb", "mariadb-dump")


def binaries() -> dict:
    """The server and client programs (Debian's mariadb-server and mariadb-client), as tests/dataplane finds them."""
    return {name: tools.require_binary(name, how="apt-get install mariadb-server")
            for name in (*SERVER_BINARIES, *CLIENT_BINARIES)}


@dataclass
class MariaDBBackend:
    server: MariaDB
    tracker: ProcessTracker
    workdir: Path
    programs: dict = field(default_factory=binaries)
    extra_args: tuple = ("--innodb-force-primary-key=ON",)

    @classmethod
    def start(cls, tracker: ProcessTracker, workdir: Path, extra_args=("--innodb-force-primary-key=ON",)) -> "MariaDBBackend":
        """A new MariaDB under `workdir` (innodb_force_primary_key stands in for HeatWave's
        sql_require_primary_key, as in tests/dataplane)."""
        programs = binaries()
        workdir.mkdir(parents=True, exist_ok=True)
        server = start_mariadb(tracker, programs, workdir, extra_args=list(extra_args))
        return cls(server, tracker, workdir, programs, tuple(extra_args))

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port

    def connect(self, database: str | None = None):
        return self.server.admin(database)

    def _client(self, program: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
        command = [self.programs[program], "--no-defaults", f"--host={self.server.host}", f"--port={self.server.port}",
                   f"--user={self.server.admin_user}", "--ssl", f"--ssl-ca={self.server.ca_file}", *args]
        env = {**os.environ, "MYSQL_PWD": self.server.admin_password}
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("timeout", 300)
        result = subprocess.run(command, env=env, stderr=subprocess.PIPE, **kwargs)
        if result.returncode != 0:
            stderr = result.stderr.decode(errors="replace") if isinstance(result.stderr, bytes) else result.stderr
            raise RuntimeError(f"{program} exited with status {result.returncode}: {stderr.strip()}")
        return result

    def databases(self) -> list[str]:
        with self.connect() as connection, connection.cursor() as cursor:
            cursor.execute("SHOW DATABASES")
            return sorted(row[0] for row in cursor.fetchall() if row[0] not in SYSTEM_DATABASES)

    def accounts(self) -> str:
        """CREATE USER and GRANT statements for the accounts the server did not make itself."""
        statements = []
        with self.connect() as connection, connection.cursor() as cursor:
            cursor.execute("SELECT user, host FROM mysql.user WHERE user NOT IN (%s, 'root', 'mariadb.sys', 'PUBLIC', '')",
                           (self.server.admin_user,))
            for user, host in sorted(cursor.fetchall()):
                cursor.execute("SHOW CREATE USER %s@%s", (user, host))
                statements.append(cursor.fetchone()[0].replace("CREATE USER", "CREATE USER IF NOT EXISTS", 1))
                cursor.execute("SHOW GRANTS FOR %s@%s", (user, host))
                statements += [row[0] for row in cursor.fetchall()]
        return "".join(f"{statement};\n" for statement in statements)

    def snapshot(self, path: Path, timeout: float = 300) -> None:
        databases = self.databases()
        with open(path, "wb") as out:
            if databases:
                self._client("mariadb-dump", "--single-transaction", "--routines", "--databases", *databases, stdout=out,
                             timeout=timeout)
            out.write(b"\n-- accounts\n" + self.accounts().encode())

    def load(self, path: Path, timeout: float = 300) -> None:
        """A snapshot's databases and accounts, into this server."""
        with open(path, "rb") as dump:
            self._client("mariadb", stdin=dump, timeout=timeout)

    def restore(self, path: Path) -> "MariaDBBackend":
        number = 1
        while (self.workdir.parent / f"{self.workdir.name}-restored-{number}").exists():
            number += 1
        restored = MariaDBBackend.start(self.tracker, self.workdir.parent / f"{self.workdir.name}-restored-{number}",
                                        self.extra_args)
        restored.load(path)
        return restored

    def stop(self) -> None:
        self.tracker.stop(self.server.service)
