"""What the upgrade journeys share: the fixture stack, the data generator run as a process (with an older MLflow
when asked) and the database's URI for it."""
import json
import subprocess
import sys
from urllib.parse import quote

from dataplane.stacks import DB_PASSWORD
from dataplane.trust import CA_FILE
from harness.tools import older_mlflow
from ormfake import ApiKey, ResourceManagerFake, write_oci_config
from ormfake.testing import COMPARTMENT, REGION, TESTS_DIR, cli_env

SOURCE = TESTS_DIR / "orm" / "fixtures" / "stack-upgrade"
ADMIN_PASSWORD = "Upgrade-Admin-Passw0rd#1"
MLFLOW_DATA = TESTS_DIR / "harness" / "mlflow_data.py"


def database_uri(backend) -> str:
    return (f"mysql+pymysql://mlflow:{quote(DB_PASSWORD, safe='')}@{backend.host}:{backend.port}/mlflow"
            f"?charset=utf8mb4&ssl_ca={quote(CA_FILE, safe='')}&ssl_check_hostname=false")


def mlflow_data(*args: str, version: str | None = None) -> dict:
    env = cli_env(TESTS_DIR, {"PYTHONPATH": str(older_mlflow(version))} if version else None)
    made = subprocess.run([sys.executable, str(MLFLOW_DATA), *args], env=env, capture_output=True, text=True,
                          timeout=600)
    assert made.returncode == 0, made.stderr[-3000:]
    return json.loads(made.stdout)


def forget_the_health_gates_scratch(backend) -> None:
    """The health gate runs doctor, which makes an experiment (and a run) and deletes it; MLflow keeps deleted
    rows until `mlflow gc`. They are not the user's data: gone before the comparison."""
    scratch = "SELECT experiment_id FROM experiments WHERE name LIKE 'orm-pack-doctor-%%'"
    runs = f"SELECT run_uuid FROM runs WHERE experiment_id IN ({scratch})"
    with backend.connect("mlflow") as connection, connection.cursor() as cursor:
        for table in ("tags", "params", "metrics", "latest_metrics"):
            cursor.execute(f"DELETE FROM {table} WHERE run_uuid IN ({runs})")
        cursor.execute(f"DELETE FROM runs WHERE experiment_id IN ({scratch})")
        cursor.execute(f"DELETE FROM experiment_tags WHERE experiment_id IN ({scratch})")
        cursor.execute("DELETE FROM experiments WHERE name LIKE 'orm-pack-doctor-%%'")


def start_cloud(tmp_path):
    """The Resource Manager fake (with the MySQL, Run Command, Container Engine and Vault APIs beside it) and an OCI
    config whose key it trusts: (fake, config file)."""
    key = ApiKey.generate()
    config = write_oci_config(tmp_path / "oci", key, region=REGION)
    fake = ResourceManagerFake(tmp_path / "fake", {key.key_id: key.public_key},
                               compartments={COMPARTMENT, key.tenancy}).start()
    return fake, config
