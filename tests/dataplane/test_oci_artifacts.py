"""The tracking server as a VM runs it, with no static key: the entrypoint reads the MySQL and MLflow
database passwords from Vault and writes artifacts to Object Storage (oci://), both through the
instance principal, against the loopback fakes in tests/ocifakes. A client logs a model over 100 MB,
gets it back byte for byte, and the fake shows the multipart upload and only token-signed calls.
The serving image, laid out as Dockerfile-serving copies it, logs in with the login it read from Vault.
"""
import base64
import hashlib
import os
import shutil
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import mlflow
import pytest
from mlflow.pyfunc import PythonModel
from ocifakes.server import InstanceCloud

from dataplane.stacks import RUNTIME
from harness import dockerfiles, loopback
from orm_pack.local import processes
from orm_pack.local.ports import free_port
from orm_pack.local.services import TrackingConfig, tracking_argv, tracking_env

pytestmark = pytest.mark.dataplane

REPO = Path(__file__).resolve().parents[2]
BUCKET = "mlflow-artifacts"
MODEL_MB = 101


class Weights(PythonModel):
    def predict(self, context, model_input):
        return model_input


def vm_settings(cloud: InstanceCloud, mariadb, database: str, port: int) -> dict:
    """tracking.env as the stack writes it: secret OCIDs, no password, no key."""
    admin = cloud.add_secret(f"{database}-admin", mariadb.admin_password)
    db_password = cloud.add_secret(f"{database}-db", f"Db1-{database}-p&ss/w'rd")
    cloud.create_bucket(BUCKET)
    cloud.grant(secrets=[admin, db_password], buckets=[BUCKET])
    config = TrackingConfig(port=port, artifacts_destination=f"oci://{BUCKET}@{cloud.namespace}/{database}", workers=1,
                            extra_env=(*mariadb.client_env(), ("MLFLOW_DB_NAME", database), ("MLFLOW_DB_USER", database),
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
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", "")  # set_experiment sets it for child processes: undone after
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


def serving_image(root) -> Path:
    """The files Dockerfile-serving copies into the image, at their image paths under `root` (its COPY lines
    with several sources into a directory): the supervisor with only the Vault reader of docker/lib."""
    for sources, destination in dockerfiles.copies(REPO / "docker" / "Dockerfile-serving"):
        if destination.endswith("/"):
            for source in sources:
                target = root / destination.lstrip("/") / Path(source).name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(REPO / source, target)
    return root / "opt/mlflow/serving/supervisor.py"


def test_the_serving_image_logs_in_to_the_tracking_server_with_the_login_from_vault(cloud, tmp_path):
    login = "Ab3_Xy9#Qr7-Lm2_Np8#Tv4-Gh6_Kd"  # shaped like Vault's generated passwords
    ocid = cloud.add_secret("serving-login", login)
    cloud.grant(secrets=[ocid])
    seen = []

    class Registry(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers.get("Authorization"))
            body = b'{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no such alias"}'
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    registry = loopback.serve(Registry)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")}
    env.update(cloud.runtime_env(), MLFLOW_TRACKING_URI=f"http://127.0.0.1:{registry.server_address[1]}",
               MLFLOW_TRACKING_USERNAME="mlflow", MLFLOW_TRACKING_PASSWORD_SECRET_OCID=ocid,
               MLFLOW_OCI_AUTH="instance_principal", SERVING_MODEL_NAME="wine-quality", SERVING_PORT=str(free_port()),
               SERVING_POLL_SECONDS="0.5", MLFLOW_HTTP_REQUEST_MAX_RETRIES="0")
    env.pop("PYTHONPATH", None)  # the image has no docker/lib on the path: the supervisor finds its copy
    supervisor = subprocess.Popen([sys.executable, str(serving_image(tmp_path / "image"))], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not seen and supervisor.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        supervisor.terminate()
        output = supervisor.communicate(timeout=60)[0]
        loopback.stop(registry)
    assert seen, output
    assert seen[0] == "Basic " + base64.b64encode(f"mlflow:{login}".encode()).decode()
    assert login not in output


def test_a_serving_login_the_vm_may_not_read_stops_the_supervisor_with_one_line(cloud, tmp_path):
    ocid = cloud.add_secret("serving-login-denied", "never-read-pw")
    env = dict(os.environ, **cloud.runtime_env(), MLFLOW_TRACKING_URI="http://127.0.0.1:9",
               MLFLOW_TRACKING_PASSWORD_SECRET_OCID=ocid, SERVING_MODEL_NAME="wine-quality", SERVING_PORT=str(free_port()))
    env.pop("PYTHONPATH", None)
    result = subprocess.run([sys.executable, str(serving_image(tmp_path / "image"))], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2, result
    [error] = [line for line in (result.stdout + result.stderr).splitlines() if "ERROR" in line]
    assert f"cannot read MLFLOW_TRACKING_PASSWORD_SECRET_OCID ({ocid}): 404 NotAuthorizedOrNotFound" in error
