"""Upgrading MLflow's schema on MySQL (MariaDB here): checked before, rehearsed, run once, and never run over a
half-done migration. init_db.py runs as the tracking server's start runs it: a process with its settings.

The databases start at the head of an earlier MLflow release, made with this MLflow's own migration scripts up
to that release's head revision (mlflow_oci.schema_plan.RELEASE_HEADS), which is the schema that release made.
"""
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy

from dataplane.stacks import DB_PASSWORD, RUNTIME
from dataplane.tracking_vm import BREAK_A_STEP
from orm_pack.local.services import python_env

pytestmark = pytest.mark.dataplane

INIT_DB = RUNTIME.root / "docker" / "tracking" / "init_db.py"
LIB = RUNTIME.root / "docker" / "lib"
HEAD_316, HEAD_315 = "b7e2c1a4d9f3", "6f8d9c3b2a1e"


def uri(mariadb, database: str) -> str:
    return (f"mysql+pymysql://{database}:{quote(DB_PASSWORD, safe='')}@{mariadb.host}:{mariadb.port}/{database}"
            f"?charset=utf8mb4&ssl_ca={quote(mariadb.ca_file, safe='')}&ssl_check_hostname=true")


def init_db_env(mariadb, database: str, extra_path: Path | None = None) -> dict:
    env = {**python_env(), "MYSQL_ADMIN_USER": mariadb.admin_user, "MYSQL_ADMIN_PASSWORD": mariadb.admin_password,
           **dict(mariadb.client_env()), "MLFLOW_DB_NAME": database, "MLFLOW_DB_USER": database,
           "MLFLOW_DB_PASSWORD": DB_PASSWORD, "MLFLOW_BACKEND_STORE_URI": uri(mariadb, database)}
    if extra_path:
        env["PYTHONPATH"] = f"{extra_path}:{env['PYTHONPATH']}" if env.get("PYTHONPATH") else str(extra_path)
    return env


def run_init_db(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(INIT_DB), *args], env=env, capture_output=True, text=True, timeout=600)


_TEMPLATES: dict[str, sqlalchemy.Engine] = {}


def _template_at(mariadb, revision: str) -> sqlalchemy.Engine:
    """A database with MLflow's tables at `revision`, made once per revision (about 8 s of migrations)."""
    from alembic import command
    from mlflow.store.db import utils as db_utils
    from mlflow.store.tracking.dbmodels.initial_models import Base as InitialBase

    if revision not in _TEMPLATES:
        name = f"template_{revision}"
        engine = _fresh(mariadb, name)
        from mlflow_oci.mysql_ddl import install_statement_rewrites

        install_statement_rewrites()
        InitialBase.metadata.create_all(engine)
        config = db_utils._get_alembic_config(engine.url.render_as_string(hide_password=False))
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
        _TEMPLATES[revision] = engine
    return _TEMPLATES[revision]


def _fresh(mariadb, database: str) -> sqlalchemy.Engine:
    """An empty database and its user, made by init_db's first-boot SQL (with its rehearsal database)."""
    with mariadb.admin() as connection, connection.cursor() as cursor:
        for name in (database, f"{database}_rehearsal"):
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
    made = run_init_db(init_db_env(mariadb, database), "accounts")
    assert made.returncode == 0, made.stderr
    return sqlalchemy.create_engine(uri(mariadb, database), poolclass=sqlalchemy.pool.NullPool)


def lib_on_path() -> None:
    """docker/lib importable here, as init_db.py makes it for itself."""
    if str(LIB) not in sys.path:
        sys.path.insert(0, str(LIB))


def database_at(mariadb, database: str, revision: str) -> sqlalchemy.Engine:
    """A fresh database with MLflow's (empty) tables at `revision`: the template's schema, copied."""
    lib_on_path()
    from mlflow_oci.schema_plan import copy_schema

    template = _template_at(mariadb, revision)
    engine = _fresh(mariadb, database)
    copy_schema(template, engine)
    return engine


def revision_of(engine) -> str:
    with engine.connect() as connection:
        return connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


def journal(engine) -> list[tuple]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.exec_driver_sql(
            "SELECT from_revision, to_revision, state FROM mlflow_oci_upgrades ORDER BY id").fetchall()]


def head() -> str:
    from mlflow.store.db import utils as db_utils
    return db_utils._get_latest_schema_revision()


def test_a_utf8mb3_table_is_refused_with_a_fix_that_works(mariadb, tmp_path):
    """3.17's job_locks gets a foreign key to jobs: with jobs in utf8mb3, MySQL refuses that key halfway
    through the migration. The pre-check refuses first, changes nothing, and its printed fix lets it go on."""
    engine = database_at(mariadb, "mlflow_mb3", HEAD_316)
    with engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE jobs CONVERT TO CHARACTER SET utf8mb3 COLLATE utf8mb3_bin")
    refused = run_init_db(init_db_env(mariadb, "mlflow_mb3"))
    assert refused.returncode == 3, refused.stderr
    assert "REFUSED: table `jobs` is not in utf8mb4 (table default utf8mb3" in refused.stderr
    assert "mlflow/mlflow#9484" in refused.stderr
    assert revision_of(engine) == HEAD_316
    assert journal(engine)[-1][2] == "REFUSED"
    # The image's entrypoint says the same with its own exit 3, which the VM's boot reads as "refused".
    entrypoint = subprocess.run(["bash", str(RUNTIME.tracking_entrypoint), "migrate"], capture_output=True, text=True,
                                timeout=300, env={**init_db_env(mariadb, "mlflow_mb3"),
                                                  "MLFLOW_ARTIFACTS_DESTINATION": str(tmp_path / "artifacts")})
    assert entrypoint.returncode == 3, entrypoint.stderr
    assert "the upgrade of the MLflow tables was refused" in entrypoint.stderr
    fix = [line.split("fix: ", 1)[1] for line in refused.stderr.splitlines() if "    fix: " in line]
    assert "ALTER TABLE `jobs` CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;" in fix
    # The control: MLflow's own upgrade on the same schema stops halfway, on the foreign key.
    control = database_at(mariadb, "mlflow_mb3_control", HEAD_316)
    with control.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE jobs CONVERT TO CHARACTER SET utf8mb3 COLLATE utf8mb3_bin")
    from mlflow.store.db import utils as db_utils
    with pytest.raises(sqlalchemy.exc.OperationalError, match="job_locks|150|3780|incorrectly formed"):
        db_utils._upgrade_db(control)
    assert revision_of(control) not in (HEAD_316, head())  # half-migrated
    # The printed fix, run as the MLflow user, then the start migrates.
    with engine.begin() as connection:
        for statement in fix:
            connection.exec_driver_sql(statement)
    migrated = run_init_db(init_db_env(mariadb, "mlflow_mb3"))
    assert migrated.returncode == 0, migrated.stderr
    assert revision_of(engine) == head()
    assert journal(engine)[-1] == (HEAD_316, head(), "DONE")


def test_two_servers_starting_together_migrate_once(mariadb):
    engine = database_at(mariadb, "mlflow_twice", HEAD_316)
    env = init_db_env(mariadb, "mlflow_twice")
    results = [None, None]

    def start(index):
        results[index] = run_init_db(env)

    threads = [threading.Thread(target=start, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [result.returncode for result in results] == [0, 0], [result.stderr for result in results]
    logs = [result.stderr for result in results]
    assert sum("upgrading MLflow tables" in log for log in logs) == 1, logs
    assert journal(engine) == [(HEAD_316, head(), "DONE")]


def test_a_migration_that_breaks_halfway_is_recorded_and_never_run_over(mariadb, tmp_path):
    """The second of 3.17's two revisions fails after its first statements: the journal says where it stopped,
    the next start refuses to migrate over the half-done schema, and the plan says so."""
    engine = database_at(mariadb, "mlflow_broken", HEAD_316)
    (tmp_path / "sitecustomize.py").write_text(BREAK_A_STEP)
    env = {**init_db_env(mariadb, "mlflow_broken", extra_path=tmp_path), "BREAK_STATEMENT": "executor_backend"}
    broken = run_init_db(env)
    assert broken.returncode == 2, broken.stderr
    reached = revision_of(engine)
    assert reached not in (HEAD_316, head())
    assert f"stopped after revision {reached}: a deliberately broken migration step" in broken.stderr
    assert "restore the backup taken before the upgrade" in broken.stderr
    assert journal(engine)[-1][2] == "FAILED"

    again = run_init_db(init_db_env(mariadb, "mlflow_broken"))
    assert again.returncode == 2
    assert "The schema may be half-migrated" in again.stderr
    assert revision_of(engine) == reached

    plan = subprocess.run([sys.executable, "-m", "mlflow_oci.schema_plan"], capture_output=True, text=True,
                          env={**init_db_env(mariadb, "mlflow_broken", extra_path=LIB)}, timeout=300)
    assert plan.returncode == 3, plan.stderr
    assert "REFUSED: an earlier migration" in plan.stdout and "FAILED" in plan.stdout


def test_the_plan_names_the_pending_revisions_and_what_they_do(mariadb):
    """From 3.15: five revisions, rehearsed on a copy (the real database is left alone), each classed by the
    statements it sent; from before the metrics index, that revision is slow."""
    lib_on_path()
    from mlflow_oci.schema_plan import read_wire_format

    engine = database_at(mariadb, "mlflow_plan", HEAD_315)
    env = init_db_env(mariadb, "mlflow_plan", extra_path=LIB)
    result = subprocess.run([sys.executable, "-m", "mlflow_oci.schema_plan", "--json"], capture_output=True,
                            text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr + result.stdout
    assert len(result.stdout.strip()) <= 1000  # Run Command returns the last 1 KB of the output
    plan = read_wire_format(result.stdout)
    assert (plan["from_revision"], plan["from_mlflow"], plan["to_revision"]) == (HEAD_315, "3.15", head())
    assert [step["revision"] for step in plan["steps"]] == [
        "1971f2d9a75b", "17e22815139b", "b7e2c1a4d9f3", "75868b020152", "dc11669786a5"]
    steps = {step["revision"]: step for step in plan["steps"]}
    assert steps["17e22815139b"]["breaking"] and "experiment_tags" in steps["17e22815139b"]["tables"]
    assert not steps["b7e2c1a4d9f3"]["breaking"] and steps["b7e2c1a4d9f3"]["tables"] == ["jobs"]
    assert not any(step["slow"] for step in plan["steps"])  # none of them touches a large table
    assert revision_of(engine) == HEAD_315  # rehearsed on the copy only

    older = database_at(mariadb, "mlflow_plan_old", "c3d6457b6d8a")  # just before a5b4c3d2e1f0 indexes metrics
    result = subprocess.run([sys.executable, "-m", "mlflow_oci.schema_plan", "--json"], capture_output=True,
                            text=True, env=init_db_env(mariadb, "mlflow_plan_old", extra_path=LIB), timeout=300)
    assert result.returncode == 0, result.stderr + result.stdout
    assert len(result.stdout.strip()) <= 1000
    steps = {step["revision"]: step for step in read_wire_format(result.stdout)["steps"]}
    assert steps["a5b4c3d2e1f0"]["slow"], steps["a5b4c3d2e1f0"]
    assert steps["a5b4c3d2e1f0"]["tables"] == ["metrics"]
    assert "slow: CREATE INDEX index_metrics_run_uuid_key_step ON metrics" in result.stderr  # the whole plan, logged
    assert revision_of(older) == "c3d6457b6d8a"


# The indexes the project adds to MLflow's tables for the UI's queries on large experiments (mlflow_oci.indexes;
# benchmarks/bench_large_data_runs.py measures them): table, index -> columns.
PROJECT_INDEXES = {
    ("runs", "mlflow_oci_runs_experiment_stage_start"): ("experiment_id", "lifecycle_stage", "start_time"),
    ("model_versions", "mlflow_oci_model_versions_run_id"): ("run_id",),
}


def project_indexes(engine) -> dict[tuple[str, str], tuple[str, ...]]:
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT TABLE_NAME, INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS "
            "WHERE TABLE_SCHEMA = DATABASE() AND INDEX_NAME LIKE 'mlflow\\_oci\\_%%' "
            "ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX").fetchall()
    found: dict[tuple[str, str], tuple[str, ...]] = {}
    for table, index, column in rows:
        found[(table, index)] = (*found.get((table, index), ()), column)
    return found


def journal_details(engine) -> list[str]:
    with engine.connect() as connection:
        return [row[0] for row in connection.exec_driver_sql("SELECT detail FROM mlflow_oci_upgrades ORDER BY id")]


def test_a_fresh_install_and_an_upgrade_get_the_project_indexes(mariadb, capsys):
    """init_db.py adds the indexes after MLflow's migrations: on an empty database (the start's own process), on one
    upgraded from 3.16, and on one already at MLflow's head without them (a deployment of an earlier release of this
    project); once. The last two in this process, to keep the test short."""
    fresh = _fresh(mariadb, "mlflow_idx_fresh")
    made = run_init_db(init_db_env(mariadb, "mlflow_idx_fresh"))
    assert made.returncode == 0, made.stderr
    assert project_indexes(fresh) == PROJECT_INDEXES
    assert journal(fresh) == [(None, head(), "DONE")]
    assert "indexes added: runs.mlflow_oci_runs_experiment_stage_start" in journal_details(fresh)[-1]

    lib_on_path()
    from mlflow_oci import indexes

    sys.path.insert(0, str(INIT_DB.parent))
    try:
        import init_db
    finally:
        sys.path.remove(str(INIT_DB.parent))
    upgraded = database_at(mariadb, "mlflow_idx_upgrade", HEAD_316)
    assert project_indexes(upgraded) == {}
    capsys.readouterr()
    assert init_db.bring_schema_to_head(uri(mariadb, "mlflow_idx_upgrade")) == head()
    assert project_indexes(upgraded) == PROJECT_INDEXES
    assert journal(upgraded) == [(HEAD_316, head(), "DONE")]
    assert "adding index mlflow_oci_model_versions_run_id on model_versions" in capsys.readouterr().err

    with fresh.connect() as connection:
        for index in indexes.INDEXES:
            assert indexes.drop(connection, "mlflow_idx_fresh", index)
    assert project_indexes(fresh) == {}
    assert init_db.bring_schema_to_head(uri(mariadb, "mlflow_idx_fresh")) == head()
    assert project_indexes(fresh) == PROJECT_INDEXES
    assert journal(fresh) == [(None, head(), "DONE"), (head(), head(), "DONE")]
    assert init_db.bring_schema_to_head(uri(mariadb, "mlflow_idx_fresh")) == head()
    assert len(journal(fresh)) == 2
