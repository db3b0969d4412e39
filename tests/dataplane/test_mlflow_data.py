"""The upgrade journeys' data: tests/harness/mlflow_data.py fills a MariaDB prepared as a deployment prepares it
(docker/tracking/init_db.py) with runs, registered models and users that MLflow's own APIs then find, with the
pinned MLflow in this process; its fingerprint counts what is there and changes when one value does. The
journeys (test_upgrade_journeys.py) run it as a script with MLflow 3.15.2 and 3.16.1."""
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from dataplane.stacks import RUNTIME
from harness import mlflow_data
from orm_pack.local.services import python_env

pytestmark = pytest.mark.dataplane

SCRIPT = Path(mlflow_data.__file__)
INIT_DB = RUNTIME.root / "docker" / "tracking" / "init_db.py"
SHAPE = mlflow_data.Shape(runs=2000, experiments=4, metrics_per_run=3, steps_per_metric=2, params_per_run=4,
                          tags_per_run=2, models=3, versions_per_model=3, users=4, seed=7)


def database_uri(mariadb, database: str) -> str:
    return (f"mysql+pymysql://{quote(mariadb.admin_user, safe='')}:{quote(mariadb.admin_password, safe='')}@"
            f"{mariadb.host}:{mariadb.port}/{database}?charset=utf8mb4&ssl_check_hostname=false")


def fresh_databases(mariadb, name: str) -> tuple[str, str]:
    """An empty tracking database and users' database, with the collations init_db.py gives them."""
    with mariadb.admin() as connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        cursor.execute(f"CREATE DATABASE `{name}_auth` CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin")
    return database_uri(mariadb, name), database_uri(mariadb, f"{name}_auth")


def prepare(tracking_uri: str, auth_uri: str, pythonpath: Path | None = None) -> None:
    """The tables as a deployment's first boot makes them (init_db.py), by the MLflow on `pythonpath` or the pinned one."""
    env = {**python_env(), "MLFLOW_BACKEND_STORE_URI": tracking_uri, "MLFLOW_AUTH_DATABASE_URI": auth_uri}
    if pythonpath:
        env["PYTHONPATH"] = str(pythonpath)
    done = subprocess.run([sys.executable, str(INIT_DB)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def counts(fingerprint: mlflow_data.Fingerprint, shape: mlflow_data.Shape) -> dict[str, int]:
    """The rows of each table the shape says how many rows it has."""
    return {name: fingerprint.tables[name].rows for name in shape.rows()}


def test_a_fill_by_the_pinned_mlflow_is_what_mlflow_finds(mariadb):
    from mlflow import MlflowClient
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore as UsersStore

    tracking_uri, auth_uri = fresh_databases(mariadb, "data_pinned")
    prepare(tracking_uri, auth_uri)

    filled = mlflow_data.fill(tracking_uri, SHAPE, auth_uri)

    after = mlflow_data.fingerprint(tracking_uri, auth_uri)
    assert counts(after, SHAPE) == SHAPE.rows()
    assert filled.seconds["runs"] < 60, filled.seconds
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    runs = client.search_runs(filled.experiment_ids, max_results=5000)
    assert len(runs) == SHAPE.runs
    assert len(client.search_runs(filled.experiment_ids, "metrics.metric_0 >= 0", max_results=5000)) > SHAPE.runs * 0.9
    one = client.get_run(runs[0].info.run_id)
    assert (len(one.data.metrics), len(one.data.params), len(one.data.tags)) == (3, 4, 2)
    assert len(client.get_metric_history(one.info.run_id, "metric_1")) == SHAPE.steps_per_metric
    assert one.info.user_id in filled.users
    assert sorted(model.name for model in client.search_registered_models()) == filled.models
    for name in filled.models:
        champion = client.get_model_version_by_alias(name, "champion")
        assert (str(champion.version), str(client.get_model_version_by_alias(name, "challenger").version)) == ("3", "2")
        assert client.get_run(champion.run_id).info.experiment_id in filled.experiment_ids
    users = UsersStore()
    users.init_db(auth_uri)
    assert sorted(user.username for user in users.list_users()) == sorted(filled.users)
    for username, password in filled.users.items():
        assert users.authenticate_user(username, password)
        assert len(users.list_experiment_permissions(username)) == 1
    users.engine.dispose()

    again = mlflow_data.fingerprint(tracking_uri, auth_uri)
    assert again == after  # nothing changed, nothing differs
    assert after.differences(again) == []


def test_the_fingerprint_changes_when_one_metric_value_does(mariadb):
    tracking_uri, auth_uri = fresh_databases(mariadb, "data_changed")
    prepare(tracking_uri, auth_uri)
    shape = mlflow_data.Shape(runs=50, experiments=2, models=1, users=0)
    mlflow_data.fill(tracking_uri, shape)
    before = mlflow_data.fingerprint(tracking_uri)
    with mariadb.admin("data_changed") as connection, connection.cursor() as cursor:
        cursor.execute("UPDATE metrics SET value = value + 1e-9 ORDER BY run_uuid, `key`, step LIMIT 1")
        assert cursor.rowcount == 1

    after = mlflow_data.fingerprint(tracking_uri)

    assert [line.split(":")[0] for line in before.differences(after)] == ["metrics"]
    assert after.tables["metrics"].rows == before.tables["metrics"].rows

