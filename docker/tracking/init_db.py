"""Prepares the MySQL backend of MLflow; idempotent, run by the tracking entrypoint on every boot.

1. First-boot SQL (when MYSQL_ADMIN_USER / MYSQL_ADMIN_PASSWORD are set): creates the database and
   its user with the DB system's administrator credentials and grants it the database. The user's
   password is reset to MLFLOW_DB_PASSWORD each time, so a changed secret takes effect on reboot.
2. Schema: brings MLflow's tables to the current revision (MLFLOW_BACKEND_STORE_URI). Some MLflow
   migrations drop a primary key and add the new one in a second statement, which MySQL refuses
   with sql_require_primary_key=ON (HeatWave HA) and MariaDB with innodb_force_primary_key=ON;
   here each such pair is sent as one ALTER TABLE, so the table is never without a primary key.
Never prints a password.

Environment: MYSQL_ADMIN_USER MYSQL_ADMIN_PASSWORD MLFLOW_DB_HOST MLFLOW_DB_PORT (3306)
             MLFLOW_DB_NAME (mlflow) MLFLOW_DB_USER MLFLOW_DB_PASSWORD MLFLOW_BACKEND_STORE_URI
             MLFLOW_DB_WAIT_SECONDS (300: how long to retry while the server is starting)
             MLFLOW_DB_TLS (required: the admin connection is encrypted, as the MLflow one; off)
             MLFLOW_DB_SSL_CA (a CA file to verify the server's certificate with)
"""
import os
import re
import sys
import time

import pymysql

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
    }
    if settings["tls"] not in ("required", "off"):
        raise SettingsError(f"MLFLOW_DB_TLS must be required or off (got {settings['tls']!r})")
    for key, name in (("database", "MLFLOW_DB_NAME"), ("user", "MLFLOW_DB_USER")):
        if not IDENTIFIER.match(settings[key]):
            raise SettingsError(f"{name} must be 1-32 letters, digits or underscores (got {settings[key]!r})")
    for key, name in (("port", "MLFLOW_DB_PORT"), ("wait_seconds", "MLFLOW_DB_WAIT_SECONDS")):
        if not settings[key].isdigit():
            raise SettingsError(f"{name} must be a number (got {settings[key]!r})")
    settings["port"] = int(settings["port"])
    settings["wait_seconds"] = int(settings["wait_seconds"])
    return settings


def tls_options(settings) -> dict | None:
    """PyMySQL's ssl argument: encrypted; verified against the CA when one is given (not the host name:
    the DB system is reached by its IP address)."""
    if settings.get("tls", "required") == "off":
        return None
    return {"check_hostname": False, **({"ca": settings["ssl_ca"]} if settings.get("ssl_ca") else {})}


def connect_as_admin(settings):
    """Connects, retrying while the server accepts TCP but is not ready to log users in yet."""
    deadline = time.monotonic() + settings["wait_seconds"]
    while True:
        try:
            return pymysql.connect(host=settings["host"], port=settings["port"], user=settings["admin_user"],
                                   password=settings["admin_password"], connect_timeout=10, autocommit=True,
                                   ssl=tls_options(settings))
        except pymysql.err.OperationalError as exc:
            code = exc.args[0] if exc.args else None
            if code == 1045:  # access denied: retrying will not help
                raise SettingsError(f"the database refused MYSQL_ADMIN_USER {settings['admin_user']!r}: "
                                    "check the administrator user name and password") from exc
            if time.monotonic() > deadline:
                raise SettingsError(f"cannot connect to {settings['host']}:{settings['port']} as the administrator: "
                                    f"{exc.args[-1] if exc.args else exc}") from exc
            time.sleep(2)


def ensure_database_and_user(connection, settings) -> None:
    database, user = settings["database"], settings["user"]
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        # '%%' is the host wildcard '%' escaped for PyMySQL's parameter formatting.
        cursor.execute(f"CREATE USER IF NOT EXISTS '{user}'@'%%' IDENTIFIED BY %s", (settings["password"],))
        cursor.execute(f"ALTER USER '{user}'@'%%' IDENTIFIED BY %s", (settings["password"],))
        cursor.execute(f"GRANT ALL PRIVILEGES ON `{database}`.* TO '{user}'@'%'")


ALTER_TABLE = re.compile(r"^\s*ALTER\s+TABLE\s+(`?[\w.]+`?)\s+(.*)$", re.IGNORECASE | re.DOTALL)
DROP_PRIMARY_KEY = re.compile(r"^DROP\s+PRIMARY\s+KEY\s*$", re.IGNORECASE)


class PrimaryKeySwapMerger:
    """Holds back `ALTER TABLE t DROP PRIMARY KEY` and sends it with the next ALTER TABLE of t."""

    def __init__(self):
        self.pending_table = None

    def rewrite(self, statement: str) -> str:
        match = ALTER_TABLE.match(statement)
        if match and DROP_PRIMARY_KEY.match(match.group(2)):
            self.pending_table = match.group(1)
            return "DO 0"  # a no-op statement; the drop travels with the next ALTER
        if self.pending_table is None:
            return statement
        table, self.pending_table = self.pending_table, None
        if not (match and match.group(1) == table):
            raise RuntimeError(f"migration dropped the primary key of {table} without re-adding it "
                               f"in the next statement: {statement[:120]}")
        return f"ALTER TABLE {table} DROP PRIMARY KEY, {match.group(2)}"


def merge_primary_key_swaps(engine) -> None:
    from sqlalchemy import event

    merger = PrimaryKeySwapMerger()

    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def _merge(conn, cursor, statement, parameters, context, executemany):
        return merger.rewrite(statement), parameters


def bring_schema_to_head(uri: str) -> str:
    """Creates or upgrades MLflow's tables; returns the schema revision."""
    import sqlalchemy
    from mlflow.store.db import utils as db_utils  # MLflow's own table setup, pinned with mlflow

    engine = sqlalchemy.create_engine(uri, poolclass=sqlalchemy.pool.NullPool)
    merge_primary_key_swaps(engine)
    try:
        with engine.connect():
            pass
    except sqlalchemy.exc.OperationalError as exc:
        raise SettingsError(f"cannot connect to the MLflow database as its user: {exc.orig}") from None
    try:
        head = db_utils._get_latest_schema_revision()
        if db_utils._is_empty_database(engine):
            log("creating MLflow tables")
            db_utils._initialize_tables(engine)
        elif db_utils._get_schema_version(engine) != head:
            log(f"upgrading MLflow tables to revision {head}")
            db_utils._upgrade_db(engine)
        return db_utils._get_schema_version(engine)
    finally:
        engine.dispose()


def main() -> int:
    env = os.environ
    try:
        if env.get("MYSQL_ADMIN_USER") or env.get("MYSQL_ADMIN_PASSWORD"):
            settings = read_settings(env)
            connection = connect_as_admin(settings)
            try:
                ensure_database_and_user(connection, settings)
            finally:
                connection.close()
            log(f"database `{settings['database']}` and user '{settings['user']}'@'%' are ready "
                f"on {settings['host']}:{settings['port']}")
        if not env.get("MLFLOW_BACKEND_STORE_URI", "").startswith("mysql"):
            raise SettingsError("MLFLOW_BACKEND_STORE_URI must be the mysql+pymysql:// URI of the MLflow database")
        revision = bring_schema_to_head(env["MLFLOW_BACKEND_STORE_URI"])
    except SettingsError as exc:
        log(f"ERROR: {exc}")
        return 2
    except pymysql.MySQLError as exc:
        log(f"ERROR: first-boot SQL failed: {exc.args[-1] if exc.args else exc}")
        return 1
    log(f"MLflow schema is at revision {revision}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
