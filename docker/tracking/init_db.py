"""Prepares the MySQL backend of MLflow; idempotent, run by the tracking entrypoint on every boot.

1. First-boot SQL (when MYSQL_ADMIN_USER / MYSQL_ADMIN_PASSWORD are set): creates the database and
   its user with the DB system's administrator credentials and grants it the database. The user's
   password is reset to MLFLOW_DB_PASSWORD each time, so a changed secret takes effect on reboot.
2. Schema: brings MLflow's tables to the current revision (MLFLOW_BACKEND_STORE_URI). Some MLflow
   migrations drop a primary key and add the new one in a second statement, which MySQL refuses
   with sql_require_primary_key=ON (HeatWave HA) and MariaDB with innodb_force_primary_key=ON;
   here each such pair is sent as one ALTER TABLE, so the table is never without a primary key.
3. Users (MLFLOW_AUTH_DATABASE_URI, when MLflow's auth app keeps them): the same for its own database,
   MLFLOW_AUTH_DB_NAME, created and granted to the same user by the first-boot SQL and brought to
   the auth app's head revision, so an upgrade of MLflow migrates its users with its runs.
Every connection verifies the server's certificate: its chain, its dates and that it names MLFLOW_DB_HOST (an
IP address is matched against the certificate's IP addresses). A certificate that does not verify stops the
preparation at once, before anything is created, with one line saying which server, which CA and what failed.
Never prints a password.

Environment: MYSQL_ADMIN_USER MYSQL_ADMIN_PASSWORD MLFLOW_DB_HOST MLFLOW_DB_PORT (3306)
             MLFLOW_DB_NAME (mlflow) MLFLOW_DB_USER MLFLOW_DB_PASSWORD MLFLOW_BACKEND_STORE_URI
             MLFLOW_DB_WAIT_SECONDS (300: how long to retry while the server is starting)
             MLFLOW_DB_TLS (required: the connections are encrypted and the server's certificate verified; off)
             MLFLOW_DB_SSL_CA (the CA file the server's certificate must chain to; unset: the system's trust store)
             MLFLOW_AUTH_DATABASE_URI MLFLOW_AUTH_DB_NAME (MLflow's users; both set by the entrypoint)
"""
import os
import re
import ssl
import sys
import time

import pymysql

# docker/lib beside this directory, as in the image (/opt/mlflow/lib) and the repository.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))
from mlflow_oci import indexes, migration_journal, schema_checks  # noqa: E402
from mlflow_oci.mysql_ddl import (  # noqa: E402,F401  (tests use them here)
    PrimaryKeySwapMerger,
    install_statement_rewrites,
    unique_foreign_key_names,
)

IDENTIFIER = re.compile(r"^[A-Za-z0-9_]{1,32}$")


class SettingsError(Exception):
    pass


def log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} init_db: {message}", file=sys.stderr, flush=True)


def read_settings(env) -> dict:
    missing = [name for name in ("MYSQL_ADMIN_USER", "MYSQL_ADMIN_PASSWORD", "MLFLOW_DB_HOST",
                                 "MLFLOW_DB_USER", "MLFLOW_DB_PASSWORD") if not env.get(name)]
    if missing:
        raise SettingsError(f"set {', '.join(missing)}")
    settings = {
        "admin_user": env["MYSQL_ADMIN_USER"],
        "admin_password": env["MYSQL_ADMIN_PASSWORD"],
        "host": env["MLFLOW_DB_HOST"],
        "port": env.get("MLFLOW_DB_PORT") or "3306",
        "database": env.get("MLFLOW_DB_NAME") or "mlflow",
        "user": env["MLFLOW_DB_USER"],
        "password": env["MLFLOW_DB_PASSWORD"],
        "wait_seconds": env.get("MLFLOW_DB_WAIT_SECONDS") or "300",
        "tls": env.get("MLFLOW_DB_TLS") or "required",
        "ssl_ca": env.get("MLFLOW_DB_SSL_CA") or None,
        "auth_database": env.get("MLFLOW_AUTH_DB_NAME") or None,
    }
    if settings["tls"] not in ("required", "off"):
        raise SettingsError(f"MLFLOW_DB_TLS must be required or off (got {settings['tls']!r})")
    for key, name in (("database", "MLFLOW_DB_NAME"), ("user", "MLFLOW_DB_USER"),
                      ("auth_database", "MLFLOW_AUTH_DB_NAME")):
        if key == "auth_database" and settings[key] is None:
            continue
        if not IDENTIFIER.match(settings[key]):
            raise SettingsError(f"{name} must be 1-32 letters, digits or underscores (got {settings[key]!r})")
    for key, name in (("port", "MLFLOW_DB_PORT"), ("wait_seconds", "MLFLOW_DB_WAIT_SECONDS")):
        if not settings[key].isdigit():
            raise SettingsError(f"{name} must be a number (got {settings[key]!r})")
    settings["port"] = int(settings["port"])
    settings["wait_seconds"] = int(settings["wait_seconds"])
    return settings


def tls_options(settings) -> ssl.SSLContext | None:
    """PyMySQL's ssl argument: encrypted, and the server's certificate verified against MLFLOW_DB_SSL_CA (or
    the system's trust store), with the address the client asked for: the DB system's certificate names its
    private IP, MLFLOW_DB_HOST."""
    if settings.get("tls", "required") == "off":
        return None
    context = ssl.create_default_context(cafile=settings.get("ssl_ca"))
    context.check_hostname, context.verify_mode = True, ssl.CERT_REQUIRED
    return context


def certificate_problem(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The failed certificate verification behind a PyMySQL or SQLAlchemy error, if that is what it was."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ssl.SSLCertVerificationError):
            return exc
        exc = (getattr(exc, "original_exception", None) or getattr(exc, "orig", None)
               or exc.__cause__ or exc.__context__)
    return None


# OpenSSL's verification results (X509_V_ERR_*) that a user can act on, in words.
_VERIFY_RESULTS = {
    2: "it was not issued by that CA", 18: "it was not issued by that CA (it is self-signed)",
    19: "it was not issued by that CA", 20: "it was not issued by that CA", 21: "it was not issued by that CA",
    9: "it is not valid yet (check this machine's clock)", 10: "it has expired",
}


def certificate_refusal(error: ssl.SSLCertVerificationError, host: str, port: int, ca_file: str | None) -> str:
    """One line: which server, which CA, what failed and what to do."""
    where = (f"the CA in {ca_file} (MLFLOW_DB_SSL_CA)" if ca_file
             else "the system's trust store (MLFLOW_DB_SSL_CA is not set)")
    code = getattr(error, "verify_code", None)
    if code in (62, 64):  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
        what = (f"it does not name {host}, the address in MLFLOW_DB_HOST -> give the DB system a certificate for "
                "that address (its IP address as subject alternative name), or set MLFLOW_DB_HOST to the address "
                "it names")
    elif code in _VERIFY_RESULTS:
        what = _VERIFY_RESULTS[code]
        if what.startswith("it was not issued"):
            what += " -> set MLFLOW_DB_SSL_CA to the CA that issued the DB system's certificate"
        elif code == 10:
            what += " -> renew the DB system's certificate"
    else:
        what = f"{getattr(error, 'verify_message', None) or error}"
    return f"MySQL at {host}:{port} shows a certificate that does not verify with {where}: {what}"


def connect_as_admin(settings):
    """Connects, retrying while the server accepts TCP but is not ready to log users in yet."""
    deadline = time.monotonic() + settings["wait_seconds"]
    while True:
        try:
            return pymysql.connect(host=settings["host"], port=settings["port"], user=settings["admin_user"],
                                   password=settings["admin_password"], connect_timeout=10, autocommit=True,
                                   ssl=tls_options(settings))
        except pymysql.err.OperationalError as exc:
            problem = certificate_problem(exc)
            if problem is not None:  # a certificate does not change by waiting
                raise SettingsError(certificate_refusal(problem, settings["host"], settings["port"],
                                                        settings["ssl_ca"])) from None
            code = exc.args[0] if exc.args else None
            if code == 1045:  # access denied: retrying will not help
                raise SettingsError(f"the database refused MYSQL_ADMIN_USER {settings['admin_user']!r}: "
                                    "check the administrator user name and password") from exc
            if time.monotonic() > deadline:
                raise SettingsError(f"cannot connect to {settings['host']}:{settings['port']} as the administrator: "
                                    f"{exc.args[-1] if exc.args else exc}") from exc
            time.sleep(2)


# The users' database compares names byte for byte, trailing spaces included: under a PAD SPACE collation
# (utf8mb4_bin) a sign-in as 'mlflow ' finds the row of 'mlflow'. MySQL 8 (HeatWave) calls its NO PAD
# binary collation utf8mb4_0900_bin, MariaDB utf8mb4_nopad_bin.
NO_PAD_COLLATIONS = ("utf8mb4_0900_bin", "utf8mb4_nopad_bin")


def no_pad_collation(execute) -> str:
    """The server's NO PAD binary collation; `execute(sql, params)` returns the rows."""
    rows = execute("SELECT COLLATION_NAME FROM information_schema.COLLATIONS WHERE COLLATION_NAME IN (%s, %s)",
                   NO_PAD_COLLATIONS)
    found = {row[0] for row in rows}
    for name in NO_PAD_COLLATIONS:
        if name in found:
            return name
    raise SettingsError(f"the MySQL server has none of the collations {', '.join(NO_PAD_COLLATIONS)}, which the "
                        "users' database needs so that names compare with their trailing spaces")


def ensure_database_and_user(connection, settings) -> None:
    user = settings["user"]
    # <database>_rehearsal: where an upgrade's migrations are tried on an empty copy of the schema first
    # (mlflow_oci.schema_plan); it never holds a row of data.
    databases = ([settings["database"], f"{settings['database']}_rehearsal"]
                 + ([settings["auth_database"]] if settings["auth_database"] else []))
    with connection.cursor() as cursor:
        def execute(sql, params=None):
            cursor.execute(sql, params)
            return cursor.fetchall()

        no_pad = no_pad_collation(execute) if settings["auth_database"] else None
        for database in databases:
            collation = no_pad if database == settings["auth_database"] else "utf8mb4_bin"
            cursor.execute(f"CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4 COLLATE {collation}")
        # '%%' is the host wildcard '%' escaped for PyMySQL's parameter formatting.
        cursor.execute(f"CREATE USER IF NOT EXISTS '{user}'@'%%' IDENTIFIED BY %s", (settings["password"],))
        cursor.execute(f"ALTER USER '{user}'@'%%' IDENTIFIED BY %s", (settings["password"],))
        for database in databases:
            cursor.execute(f"GRANT ALL PRIVILEGES ON `{database}`.* TO '{user}'@'%'")


def _engine(uri: str, what: str):
    import sqlalchemy

    install_statement_rewrites()
    engine = sqlalchemy.create_engine(uri, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect():
            pass
    except sqlalchemy.exc.OperationalError as exc:
        engine.dispose()
        problem = certificate_problem(exc)
        if problem is not None:
            raise SettingsError(certificate_refusal(problem, engine.url.host, engine.url.port or 3306,
                                                    os.environ.get("MLFLOW_DB_SSL_CA") or None)) from None
        raise SettingsError(f"cannot connect to the {what} as its user: {exc.orig}") from None
    return engine


def bring_auth_schema_to_head(uri: str) -> str:
    """Creates or upgrades the tables of MLflow's auth app (users, permissions); returns the revision."""
    from alembic.migration import MigrationContext
    from mlflow.server.auth.db import utils as auth_db_utils  # the auth app's own migrations

    engine = _engine(uri, "users' database")
    try:
        auth_db_utils.migrate(engine, "head")
        convert_to_no_pad(engine)
        with engine.connect() as connection:
            return MigrationContext.configure(
                connection, opts={"version_table": "alembic_version_auth"}).get_current_revision()
    finally:
        engine.dispose()


def convert_to_no_pad(engine) -> None:
    """Once, for a users' database made before it was NO PAD: its default and every table's columns. The
    MLflow user may (ALL on that database); a unique name cannot collide, as PAD SPACE was the stricter."""
    with engine.begin() as connection:
        def execute(sql, params=None):
            return connection.exec_driver_sql(sql, params).fetchall()

        collation = no_pad_collation(execute)
        database = engine.url.database
        padded = [row[0] for row in execute(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_TYPE = 'BASE TABLE' "
            "AND TABLE_COLLATION <> %s", (database, collation))]
        default = execute("SELECT DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s",
                          (database,))
        if not padded and default and default[0][0] == collation:
            return
        connection.exec_driver_sql(f"ALTER DATABASE `{database}` CHARACTER SET utf8mb4 COLLATE {collation}")
        for table in padded:
            connection.exec_driver_sql(f"ALTER TABLE `{table}` CONVERT TO CHARACTER SET utf8mb4 COLLATE {collation}")
        log(f"users' database `{database}` converted to {collation} ({len(padded)} tables): names compare with "
            "their trailing spaces")


class MigrationRefused(Exception):
    """The pre-checks found what would make the migration fail: nothing was changed."""


def bring_schema_to_head(uri: str, wait_seconds: int = 3600) -> str:
    """Creates or upgrades MLflow's tables, once, under the database's migration lock (mlflow_oci.migration_journal);
    returns the schema revision. Before an upgrade the pre-checks run (mlflow_oci.schema_checks): a problem
    refuses it (MigrationRefused) and leaves the database as it was; an unfinished earlier migration blocks it."""
    import mlflow
    from mlflow.store.db import utils as db_utils  # MLflow's own table setup, pinned with mlflow
    from mlflow_oci.schema_plan import mlflow_primary_keys

    engine = _engine(uri, "MLflow database")
    try:
        head = db_utils._get_latest_schema_revision()
        with migration_journal.migration_lock(engine, wait_seconds, log):
            empty = db_utils._is_empty_database(engine)
            migration_journal.ensure_journal(engine)
            blocked = migration_journal.blocking_entry(engine)
            if blocked:
                raise SettingsError(f"an earlier {blocked.describe()}. The schema may be half-migrated, which no "
                                    "MLflow version runs on: restore the database from the backup taken before it "
                                    "(`orm-pack upgrade` does, when its health gate fails)")
            current = None if empty else db_utils._get_schema_version(engine)
            if current == head:
                add_indexes(engine, None, head, mlflow.__version__)
                return head
            if not empty:
                with engine.connect() as connection:
                    problems = schema_checks.find_problems(
                        lambda sql, params=None: connection.exec_driver_sql(sql, params).fetchall(),
                        engine.url.database, mlflow_primary_keys())
                if problems:
                    details = "; ".join(problem.what for problem in problems)
                    migration_journal.record(engine, current, head, mlflow.__version__, "REFUSED", details)
                    for problem in problems:
                        log(f"REFUSED: {problem.what}")
                        for line in problem.fix.splitlines():
                            log(f"    fix: {line}")
                    raise MigrationRefused(f"{len(problems)} problem(s) in `{engine.url.database}` would make the "
                                           f"migration to revision {head} fail; nothing was changed")
            entry = migration_journal.record(engine, current, head, mlflow.__version__, "MIGRATING")
            try:
                if empty:
                    log("creating MLflow tables")
                    db_utils._initialize_tables(engine)
                else:
                    log(f"upgrading MLflow tables from revision {current} to {head}")
                    db_utils._upgrade_db(engine)
            except Exception as exc:
                reached = db_utils._get_schema_version(engine)
                reason = getattr(exc, "orig", None) or exc
                migration_journal.finish(engine, entry, "FAILED", f"stopped after revision {reached}: {reason}")
                raise SettingsError(f"the migration from revision {current} to {head} stopped after revision "
                                    f"{reached}: {reason}. The schema is half-migrated and stays as it is "
                                    f"(journal: table {migration_journal.JOURNAL}); restore the backup taken "
                                    "before the upgrade") from exc
            migration_journal.finish(engine, entry, "DONE")
            add_indexes(engine, entry, head, mlflow.__version__)
            return db_utils._get_schema_version(engine)
    except migration_journal.MigrationBlocked as exc:
        raise SettingsError(str(exc)) from None
    finally:
        engine.dispose()


def add_indexes(engine, entry: int | None, revision: str, mlflow_version: str) -> None:
    """The project's indexes (mlflow_oci.indexes) that are missing, after MLflow's migrations and under their lock;
    journaled in the migration's entry, or in an entry of their own (revision -> revision) when nothing migrated.
    A failure is logged and the server starts without them: they make pages faster, nothing depends on them."""
    import sqlalchemy

    try:
        with engine.connect() as connection:
            detail = indexes.ensure(connection, engine.url.database, log)
    except sqlalchemy.exc.SQLAlchemyError as exc:
        log(f"WARNING: the project's indexes were not added ({getattr(exc, 'orig', None) or exc}); pages of large "
            "experiments stay slow, the next start tries again")
        return
    if not detail:
        return
    log(detail)
    if entry is None:
        migration_journal.record(engine, revision, revision, mlflow_version, "DONE", detail)
    else:
        migration_journal.finish(engine, entry, "DONE", detail)


def main(argv: list[str]) -> int:
    """`init_db.py`: the first-boot SQL, then the migrations; `init_db.py accounts`: the first-boot SQL only."""
    env = os.environ
    try:
        if env.get("MYSQL_ADMIN_USER") or env.get("MYSQL_ADMIN_PASSWORD"):
            settings = read_settings(env)
            connection = connect_as_admin(settings)
            try:
                ensure_database_and_user(connection, settings)
            finally:
                connection.close()
            databases = ", ".join(f"`{name}`" for name in (settings["database"], settings["auth_database"]) if name)
            log(f"database {databases} and user '{settings['user']}'@'%' are ready "
                f"on {settings['host']}:{settings['port']}")
        if argv[:1] == ["accounts"]:
            return 0
        if not env.get("MLFLOW_BACKEND_STORE_URI", "").startswith("mysql"):
            raise SettingsError("MLFLOW_BACKEND_STORE_URI must be the mysql+pymysql:// URI of the MLflow database")
        wait = env.get("MLFLOW_DB_MIGRATION_WAIT_SECONDS") or "3600"
        if not wait.isdigit():
            raise SettingsError(f"MLFLOW_DB_MIGRATION_WAIT_SECONDS must be a number (got {wait!r})")
        revision = bring_schema_to_head(env["MLFLOW_BACKEND_STORE_URI"], int(wait))
        if env.get("MLFLOW_AUTH_DATABASE_URI", "").startswith("mysql"):
            log(f"MLflow's users are at revision {bring_auth_schema_to_head(env['MLFLOW_AUTH_DATABASE_URI'])}")
    except MigrationRefused as exc:
        log(f"ERROR: {exc}")
        return 3
    except SettingsError as exc:
        log(f"ERROR: {exc}")
        return 2
    except pymysql.MySQLError as exc:
        log(f"ERROR: first-boot SQL failed: {exc.args[-1] if exc.args else exc}")
        return 1
    log(f"MLflow schema is at revision {revision}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
