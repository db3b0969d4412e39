"""Throwaway servers for the data-plane tests: MariaDB (MySQL stand-in) and the moto S3 server,
plus a tracker that stops every process the tests started and proves none is left behind."""
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pymysql

from dataplane.trust import CA_FILE, issue_pair
from harness import needs
from orm_pack.local import processes
from orm_pack.local.ports import free_port


class ProcessTracker:
    """Starts services, stops them, and knows every pid that was part of their process trees. A pid is
    known with its start time: the machine reuses pids (pid_max 32768 here), and a new process that got a
    stopped one's pid is not a leftover."""

    def __init__(self):
        self.services: list[processes.Service] = []
        self.seen: dict[int, tuple[str, str | None]] = {}   # pid -> (service, start time in /proc)

    def start(self, name: str, argv: list[str], env: dict, log: Path, cwd: Path | None = None) -> processes.Service:
        needs.used("dataplane")
        service = processes.start(name, argv, env, log, cwd)
        self.services.append(service)
        self.seen[service.pid] = (name, _start_time(service.pid))
        return service

    def remember_tree(self, service: processes.Service) -> None:
        for pid in processes.descendants(service.pid):
            self.seen.setdefault(pid, (service.name, _start_time(pid)))

    def stop(self, service: processes.Service) -> None:
        self.remember_tree(service)  # with their start times, while they still run
        for pid in processes.stop(service.pid):
            self.seen.setdefault(pid, (service.name, None))
        if service in self.services:
            self.services.remove(service)

    def stop_all(self) -> None:
        for service in reversed(list(self.services)):
            self.stop(service)

    def leftovers(self) -> dict[int, str]:
        return {pid: name for pid, (name, started) in self.seen.items()
                if processes.is_alive(pid) and (started is None or _start_time(pid) == started)}


def _start_time(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat (clock ticks since boot), or None when the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


@dataclass(frozen=True)
class MariaDB:
    host: str
    port: int
    socket: Path
    admin_user: str
    admin_password: str
    service: processes.Service
    ca_file: str                  # the CA that issued its certificate (the lane's)
    other_address: str            # where it answers too, with a certificate that does not name that address

    def client_env(self) -> tuple[tuple[str, str], ...]:
        """The tracking entrypoint's settings that reach this server and verify its certificate."""
        return (("MLFLOW_DB_HOST", self.host), ("MLFLOW_DB_PORT", str(self.port)), ("MLFLOW_DB_SSL_CA", self.ca_file))

    def empty_database(self, name: str) -> str:
        """Database `name`, dropped and created anew (utf8mb4, binary collation, as init_db.py makes MLflow's);
        the SQLAlchemy URI that reaches it as the administrator, over TLS verified with the lane's CA."""
        with self.admin() as connection, connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        return (f"mysql+pymysql://{quote(self.admin_user, safe='')}:{quote(self.admin_password, safe='')}@"
                f"{self.host}:{self.port}/{name}?charset=utf8mb4&ssl_ca={quote(self.ca_file, safe='')}")

    def admin(self, database: str | None = None):
        return pymysql.connect(host=self.host, port=self.port, user=self.admin_user, password=self.admin_password,
                               database=database, autocommit=True, ssl={"check_hostname": False})


def start_mariadb(tracker: ProcessTracker, binaries: dict, workdir: Path, extra_args=()) -> MariaDB:
    """MariaDB on a loopback port with its own datadir; --no-defaults ignores /etc/mysql. Like a HeatWave
    DB system with require_secure_transport=ON, it refuses TCP connections without TLS, and like one with a
    certificate of our own (bring your own certificate) it shows a certificate from the lane's CA for its
    address, 127.0.0.1. It listens on 127.0.0.2 too, where that certificate names another address."""
    datadir, socket = workdir / "data", workdir / "mysqld.sock"
    cert, key = issue_pair(workdir / "tls", "server")
    user = "root" if os.geteuid() == 0 else os.environ.get("USER", "nobody")
    subprocess.run([binaries["mariadb-install-db"], "--no-defaults", f"--user={user}", f"--datadir={datadir}",
                    "--auth-root-authentication-method=normal", "--skip-test-db"],
                   check=True, capture_output=True, timeout=120)
    port = free_port()
    service = tracker.start("mariadb", [
        binaries["mariadbd"], "--no-defaults", f"--user={user}", f"--datadir={datadir}", f"--port={port}",
        "--bind-address=127.0.0.1,127.0.0.2", "--skip-name-resolve", f"--socket={socket}", f"--pid-file={workdir / 'mysqld.pid'}",
        "--skip-log-bin", "--innodb-buffer-pool-size=64M", "--character-set-server=utf8mb4",
        "--collation-server=utf8mb4_bin", f"--ssl-cert={cert}", f"--ssl-key={key}", f"--ssl-ca={CA_FILE}",
        "--require-secure-transport=ON", *extra_args], dict(os.environ), workdir / "mariadb.log")
    deadline = time.monotonic() + 60
    while True:
        try:
            root = pymysql.connect(unix_socket=str(socket), user="root", autocommit=True)
            break
        except pymysql.err.OperationalError:
            if not service.alive() or time.monotonic() > deadline:
                raise processes.ServiceFailed(f"mariadb did not start:\n{processes.log_tail(service.log)}") from None
            time.sleep(0.2)
    # The DB system's administrator, as HeatWave creates it: the first-boot SQL logs in with it.
    admin_password = "Adm1n-#pw:with/odd%chars"
    with root, root.cursor() as cursor:
        cursor.execute("CREATE USER 'admin'@'%%' IDENTIFIED BY %s", (admin_password,))
        cursor.execute("GRANT ALL PRIVILEGES ON *.* TO 'admin'@'%' WITH GRANT OPTION")
    return MariaDB("127.0.0.1", port, socket, "admin", admin_password, service, CA_FILE, "127.0.0.2")


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    bucket: str
    access_key: str
    secret_key: str
    service: processes.Service

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key)


def start_moto(tracker: ProcessTracker, moto_server: str, workdir: Path) -> S3Server:
    port = free_port()
    service = tracker.start("moto", [moto_server, "-H", "127.0.0.1", "-p", str(port)], dict(os.environ),
                            workdir / "moto.log")
    endpoint = f"http://127.0.0.1:{port}"
    processes.wait_ready(service, f"{endpoint}/moto-api/", 60)
    s3 = S3Server(endpoint, "mlflow-artifacts", "test-access-key", "test-secret-key-do-not-log", service)
    s3.client().create_bucket(Bucket=s3.bucket)
    return s3
