"""The tracking server as a VM runs it, with no static key: the entrypoint reads the MySQL and MLflow
database passwords from Vault and writes artifacts to Object Storage (oci://), both through the
instance principal, against the loopback fakes in tests/ocifakes. A client logs a model over 100 MB,
gets it back byte for byte, and the fake shows the multipart upload and only token-signed calls.
"""
import hashlib
import os
import subprocess

import mlflow
import pytest
from mlflow.pyfunc import PythonModel
from ocifakes.server import InstanceCloud

from dataplane.stacks import RUNTIME
from orm_pack.local import processes
from orm_pack.local.ports import free_port
from orm_pack.local.services import TrackingConfig, tracking_argv, tracking_env

pytestmark = pytest.mark.dataplane

BUCKET = "mlflow-artifacts"
MODEL_MB = 101


class Weights(PythonModel):
    def predict(self, context, model_input):
        return model_input


@pytest.fixture(scope="module")
def cloud():
    server = InstanceCloud().start()
    yield server
    server.stop()


def vm_settings(cloud: InstanceCloud, mariadb, database: str, port: int) -> dict:
    """tracking.env as the stack writes it: secret OCIDs, no password, no key."""
    admin = cloud.add_secret(f"{database}-admin", mariadb.admin_password)
    db_password = cloud.add_secret(f"{database}-db", f"Db1-{database}-p&ss/w'rd")
    cloud.create_bucket(BUCKET)
    cloud.grant(secrets=[admin, db_password], buckets=[BUCKET])
    config = TrackingConfig(port=port, artifacts_destination=f"oci://{BUCKET}@{cloud.namespace}/{database}", workers=1,
                            extra_env=(("MLFLOW_DB_HOST", mariadb.host), ("MLFLOW_DB_PORT", str(mariadb.port)),
                                       ("MLFLOW_DB_NAME", database), ("MLFLOW_DB_USER", database),
                                       ("MLFLOW_DB_PASSWORD_SECRET_OCID", db_password),
                                       ("MYSQL_ADMIN_USER", mariadb.admin_user),
                                       ("MYSQL_ADMIN_PASSWORD_SECRET_OCID", admin),
                                       ("MLFLOW_OCI_PART_SIZE_MB", "32")))
    env = tracking_env(config)
    env.update(cloud.runtime_env())
    for name in ("MLFLOW_BACKEND_STORE_URI", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MLFLOW_DB_PASSWORD"):
        env.pop(name, None)
    return env


@pytest.fixture(scope="module")
def keyless_tracking(tracker, tmp_path_factory, mariadb, cloud):
    port = free_port()
    env = vm_settings(cloud, mariadb, "mlflow_keyless", port)
    log = tmp_path_factory.mktemp("keyless") / "tracking.log"
    server = tracker.start("tracking-keyless", tracking_argv(RUNTIME), env, log)
    processes.wait_ready(server, f"http://127.0.0.1:{port}/health", 300)
    tracker.remember_tree(server)
    yield f"http://127.0.0.1:{port}", log, env
    tracker.stop(server)


def test_a_model_over_100_mb_goes_to_object_storage_in_parts_and_comes_back_identical(keyless_tracking, cloud, mariadb,
                                                                                     tmp_path, monkeypatch):
    url, log, env = keyless_tracking
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    weights = tmp_path / "weights.bin"
    with open(weights, "wb") as out:
        for _ in range(MODEL_MB):
            out.write(os.urandom(2**20))
    mlflow.set_experiment("keyless")
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="model", python_model=Weights(), artifacts={"weights": str(weights)})
    back = mlflow.artifacts.download_artifacts(artifact_uri=info.model_uri, dst_path=str(tmp_path / "back"))
    copies = list((tmp_path / "back").rglob("weights.bin"))
    assert len(copies) == 1, back
    assert hashlib.sha256(copies[0].read_bytes()).digest() == hashlib.sha256(weights.read_bytes()).digest()

    stored = [name for name in cloud.buckets[BUCKET] if name.endswith("/weights.bin")]
    assert len(stored) == 1 and stored[0].startswith("mlflow_keyless/")
    assert (stored[0], 4) in cloud.commits  # 101 MiB in 32 MiB parts
    assert {kind for _, _, kind, _ in cloud.requests} == {"imds", "certificate", "session-token"}

    text = log.read_text()
    assert "artifacts: oci://" in text
    assert mariadb.admin_password not in text and "p&ss/w'rd" not in text  # the secrets' values


def test_a_missing_grant_stops_the_start_with_one_line(tracker, mariadb, cloud, tmp_path):
    env = vm_settings(cloud, mariadb, "mlflow_denied", free_port())
    cloud.grants[cloud.instance.instance_ocid].buckets.discard(BUCKET)
    try:
        result = subprocess.run(tracking_argv(RUNTIME), env=env, capture_output=True, text=True, timeout=120)
    finally:
        cloud.grant(buckets=[BUCKET])
    assert result.returncode == 2, result
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, result.stderr
    assert errors[0].endswith(f"tracking-entrypoint: ERROR: cannot list oci://{BUCKET}@{cloud.namespace}/mlflow_denied: "
                              "404 BucketNotFound: check that the bucket exists and that a policy lets this "
                              "instance's dynamic group 'manage objects' in it")
