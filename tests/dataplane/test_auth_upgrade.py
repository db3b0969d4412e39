"""Upgrading MLflow keeps its users: a deployment made by the previous minor version (3.16: its schema
created by init_db.py running with MLflow 3.16, users and a permission written by 3.16's auth store)
starts with this release's tracking server, which migrates both databases; and an auth database from
the auth app's first schema is migrated through every later revision (the roles rewrite included)
with its users and permissions intact."""
import subprocess
import sys
import textwrap
from urllib.parse import quote

import pytest
import requests
import sqlalchemy

from dataplane.stacks import DB_PASSWORD, RUNTIME, start_tracking_replica
from harness.tools import PREVIOUS_MLFLOW, previous_mlflow
from orm_pack.local.services import python_env

pytestmark = pytest.mark.dataplane

ADMIN = ("mlflow", "Admin-login-Passw0rd-2026")
AUTH_ENV = (("MLFLOW_AUTH", "mlflow"), ("MLFLOW_AUTH_ADMIN_USERNAME", ADMIN[0]),
            ("MLFLOW_AUTH_ADMIN_PASSWORD", ADMIN[1]), ("MLFLOW_AUTH_DEFAULT_PERMISSION", "NO_PERMISSIONS"),
            ("MLFLOW_FLASK_SERVER_SECRET_KEY", "one-key-for-every-replica-0123456789"))
BOB = ("bob", "Bob-was-here-since-3.16")


def uri(mariadb, database: str, user: str, password: str) -> str:
    return (f"mysql+pymysql://{quote(user, safe='')}:{quote(password, safe='')}@{mariadb.host}:{mariadb.port}/"
            f"{database}?charset=utf8mb4&ssl_check_hostname=false")


def run_with_previous_mlflow(script: str, env: dict) -> subprocess.CompletedProcess:
    env = {**python_env(), **env, "PYTHONPATH": str(previous_mlflow())}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=env, capture_output=True,
                          text=True, timeout=600)


def revisions(mariadb, database: str) -> tuple[str, str]:
    with mariadb.admin(database) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT version_num FROM alembic_version")
        tracking = cursor.fetchone()[0]
    with mariadb.admin(f"{database}_auth") as connection, connection.cursor() as cursor:
        cursor.execute("SELECT version_num FROM alembic_version_auth")
        auth = cursor.fetchone()[0]
    return tracking, auth


def test_a_deployment_of_the_previous_minor_version_upgrades_with_its_users(tracker, tmp_path, mariadb, s3):
    database = "mlflow_from316"
    tracking_uri = uri(mariadb, database, database, DB_PASSWORD)
    # The previous release's first boot: our init_db.py, run with MLflow 3.16.
    made = run_with_previous_mlflow(f"""
        import runpy, sys
        sys.argv = ["init_db.py"]
        try:
            runpy.run_path({str(RUNTIME.root / "docker" / "tracking" / "init_db.py")!r}, run_name="__main__")
        except SystemExit as exit:
            assert not exit.code, exit.code
        import mlflow
        from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as Tracking
        assert mlflow.__version__ == {PREVIOUS_MLFLOW!r}, mlflow.__version__
        tracking = Tracking({tracking_uri!r}, "s3://ignored/")
        experiment = tracking.create_experiment("from-3.16")
        users = SqlAlchemyStore()
        users.init_db({uri(mariadb, database + "_auth", database, DB_PASSWORD)!r})
        users.create_user({ADMIN[0]!r}, {ADMIN[1]!r}, is_admin=True)
        users.create_user({BOB[0]!r}, {BOB[1]!r})
        users.create_experiment_permission(experiment, {BOB[0]!r}, "EDIT")
        print(experiment)
    """, {"MYSQL_ADMIN_USER": mariadb.admin_user, "MYSQL_ADMIN_PASSWORD": mariadb.admin_password,
          **dict(mariadb.client_env()), "MLFLOW_DB_NAME": database,
          "MLFLOW_DB_USER": database, "MLFLOW_DB_PASSWORD": DB_PASSWORD, "MLFLOW_AUTH_DB_NAME": f"{database}_auth",
          "MLFLOW_BACKEND_STORE_URI": tracking_uri,
          "MLFLOW_AUTH_DATABASE_URI": uri(mariadb, database + "_auth", database, DB_PASSWORD)})
    assert made.returncode == 0, made.stderr[-3000:]
    experiment = made.stdout.strip().splitlines()[-1]
    old_tracking, old_auth = revisions(mariadb, database)

    replica = start_tracking_replica(tracker, mariadb, s3, tmp_path, "upgraded", database=database,
                                     s3_prefix="upgrade", extra_env=AUTH_ENV)
    try:
        log = (tmp_path / "upgraded.log").read_text()
        assert "upgrading MLflow tables" in log  # 3.17 adds tracking migrations to 3.16's
        new_tracking, new_auth = revisions(mariadb, database)
        assert new_tracking != old_tracking
        from alembic.script import ScriptDirectory
        from mlflow.server.auth.db.utils import _get_alembic_config
        head = ScriptDirectory.from_config(_get_alembic_config("sqlite://")).get_current_head()
        # The auth app's schema did not change from 3.16 to 3.17 (the same revisions in both wheels); the
        # second test below runs its migrations from the first revision.
        assert old_auth == new_auth == head
        run = requests.post(f"{replica.url}/api/2.0/mlflow/runs/create", json={"experiment_id": experiment},
                            auth=BOB, timeout=30)
        assert run.status_code == 200, run.text  # bob's 3.16 password and EDIT grant still hold
        other = requests.post(f"{replica.url}/api/2.0/mlflow/experiments/create", json={"name": "x"},
                              auth=("bob", "wrong-password"), timeout=30)
        assert other.status_code == 401
    finally:
        tracker.stop(replica.service)


def test_an_auth_database_from_the_first_schema_is_migrated_with_its_permissions(tracker, tmp_path, mariadb, s3):
    """The auth app's later revisions rewrite permissions into roles; on MySQL they must run too."""
    from alembic.command import upgrade
    from mlflow.server.auth.db.utils import INITIAL_REVISION, _get_alembic_config
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore
    from werkzeug.security import generate_password_hash

    database = "mlflow_fromfirst"
    with mariadb.admin() as connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{database}_auth`")
    auth_uri = uri(mariadb, f"{database}_auth", mariadb.admin_user, mariadb.admin_password)
    sys.path.insert(0, str(RUNTIME.root / "docker" / "tracking"))
    try:
        import init_db  # the rewrites MySQL needs, as the entrypoint applies them
        init_db.install_statement_rewrites()
    finally:
        sys.path.pop(0)
    upgrade(_get_alembic_config(auth_uri), INITIAL_REVISION)
    engine = sqlalchemy.create_engine(auth_uri)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text(
            "INSERT INTO users (id, username, password_hash, is_admin) VALUES (1, :u, :h, 0)"),
            {"u": BOB[0], "h": generate_password_hash(BOB[1])})
        connection.execute(sqlalchemy.text(
            "INSERT INTO experiment_permissions (experiment_id, user_id, permission) VALUES ('0', 1, 'EDIT')"))
    engine.dispose()

    replica = start_tracking_replica(tracker, mariadb, s3, tmp_path, "first", database=database,
                                     s3_prefix="first-schema", extra_env=AUTH_ENV)
    try:
        assert "MLflow's users are at revision" in (tmp_path / "first.log").read_text()
        store = SqlAlchemyStore()
        store.init_db(auth_uri)
        assert store.get_user(BOB[0]).username == BOB[0]
        run = requests.post(f"{replica.url}/api/2.0/mlflow/runs/create", json={"experiment_id": "0"}, auth=BOB,
                            timeout=30)
        assert run.status_code == 200, run.text  # the first schema's EDIT grant, now a role
        private = requests.post(f"{replica.url}/api/2.0/mlflow/experiments/create", json={"name": "private"},
                                auth=ADMIN, timeout=30).json()["experiment_id"]
        other = requests.get(f"{replica.url}/api/2.0/mlflow/experiments/get", params={"experiment_id": private},
                             auth=BOB, timeout=30)
        assert other.status_code == 403, other.text  # nothing beyond the grant (NO_PERMISSIONS default)
    finally:
        tracker.stop(replica.service)


def test_the_users_database_compares_names_with_their_trailing_spaces(mariadb):
    """With utf8mb4_bin (PAD SPACE, what earlier releases made) 'mlflow ' finds the admin's row: a sign-in
    by that name took the break-glass admin over. New users' databases are NO PAD, old ones are converted
    by the migrations, as the MLflow user."""
    from mlflow.server.auth.db import utils as auth_db_utils

    sys.path.insert(0, str(RUNTIME.root / "docker" / "tracking"))
    try:
        import init_db
        init_db.install_statement_rewrites()
    finally:
        sys.path.pop(0)

    def rows_named(database: str, name: str) -> int:
        with mariadb.admin(database) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM users WHERE username = %s", (name,))
            return cursor.fetchone()[0]

    with mariadb.admin() as connection, connection.cursor() as cursor:
        cursor.execute("CREATE DATABASE `mlflow_padded_auth` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    auth_uri = uri(mariadb, "mlflow_padded_auth", mariadb.admin_user, mariadb.admin_password)
    engine = sqlalchemy.create_engine(auth_uri)
    auth_db_utils.migrate(engine, "head")  # the tables as an earlier release left them
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text(
            "INSERT INTO users (id, username, password_hash, is_admin) VALUES (1, 'mlflow', 'x', 1)"))
    engine.dispose()
    assert rows_named("mlflow_padded_auth", "mlflow ") == 1  # the attack's way in

    init_db.bring_auth_schema_to_head(auth_uri)
    assert rows_named("mlflow_padded_auth", "mlflow ") == 0 and rows_named("mlflow_padded_auth", "mlflow") == 1
    with mariadb.admin() as connection, connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT COLLATION_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = "
                       "'mlflow_padded_auth' AND COLLATION_NAME IS NOT NULL")
        assert {row[0] for row in cursor.fetchall()} == {"utf8mb4_nopad_bin"}

    settings = {"user": "mlflow_nopad", "password": DB_PASSWORD, "database": "mlflow_nopad",
                "auth_database": "mlflow_nopad_auth"}
    with mariadb.admin() as connection:
        init_db.ensure_database_and_user(connection, settings)
        with connection.cursor() as cursor:
            cursor.execute("SELECT SCHEMA_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA "
                           "WHERE SCHEMA_NAME LIKE 'mlflow\\_nopad%%'")
            assert dict(cursor.fetchall()) == {"mlflow_nopad": "utf8mb4_bin", "mlflow_nopad_rehearsal": "utf8mb4_bin",
                                               "mlflow_nopad_auth": "utf8mb4_nopad_bin"}
