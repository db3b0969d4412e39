"""`orm-pack local up --artifacts-destination oci://… --oci-endpoint …` with a laptop's API key, against the
Object Storage fake (tests/ocifakes): MLflow's client logs a 64 MB artifact in 8 MB parts through the
multipart path, so the parts go from the client straight to the fake through the upload's pre-authenticated
request and the tracking server carries none of the bytes; the download comes back through a read PAR in
ranges; an upload whose part fails is aborted and leaves no parts; a person who may only read an experiment
gets no upload PAR for it. The 5 GB figures are benchmarks/bench_large_data.py's.
"""
import hashlib
import os
import subprocess
import sys

import mlflow
import psutil
import pytest
import requests
from mlflow.tracking import MlflowClient

from dataplane.local_mlflow import local_mlflow
from ormfake.keys import ApiKey, write_oci_config

pytestmark = pytest.mark.dataplane

BUCKET = "laptop-artifacts"
MB = 1 << 20
SIZE = 64 * MB
PART = 8 * MB


@pytest.fixture(scope="module")
def laptop_mlflow(cloud, tmp_path_factory):
    key = ApiKey.generate()
    cloud.add_api_key(key.key_id, key.public_key, key.user)
    cloud.create_bucket(BUCKET)
    cloud.grant(buckets=[BUCKET], par_buckets=[BUCKET], instance=key.user)
    config = write_oci_config(tmp_path_factory.mktemp("oci"), key)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OCI_CONFIG_FILE", str(config))
        patch.setenv("NO_PROXY", "127.0.0.1,localhost")
        # per-person users: the login is their admin, and people may be given READ only
        with local_mlflow(tmp_path_factory.mktemp("state"), "--no-serving", "--users", "per-person",
                          "--artifacts-destination", f"oci://{BUCKET}@{cloud.namespace}/laptop",
                          "--oci-endpoint", cloud.url) as local:
            yield local


@pytest.fixture
def client(laptop_mlflow, monkeypatch):
    for name, value in laptop_mlflow.client_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(MB))
    monkeypatch.setenv("MLFLOW_MULTIPART_DOWNLOAD_MINIMUM_FILE_SIZE", str(MB))
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(PART))
    monkeypatch.setenv("MLFLOW_MULTIPART_DOWNLOAD_CHUNK_SIZE", str(PART))
    # the environment, not mlflow.set_tracking_uri: that would outlive the test in this worker's process
    monkeypatch.setenv("MLFLOW_TRACKING_URI", laptop_mlflow.tracking_url)
    return MlflowClient(laptop_mlflow.tracking_url)


def tracking_reads(local) -> int:
    """Bytes the tracking server's processes have read (files and sockets: /proc/<pid>/io rchar)."""
    port = int(local.direct_tracking_url.rsplit(":", 1)[1])
    server = next(c.pid for c in psutil.net_connections("tcp") if c.laddr and c.laddr.port == port
                  and c.status == psutil.CONN_LISTEN)
    root = psutil.Process(server)
    while root.parent() and "entrypoint" not in " ".join(root.parent().cmdline()) and \
            root.parent().pid != os.getpid() and "mlflow" in " ".join(root.parent().cmdline()):
        root = root.parent()
    return sum(p.io_counters().read_chars for p in [root, *root.children(recursive=True)])


def test_a_large_artifact_goes_from_the_client_to_object_storage_in_parts(laptop_mlflow, client, cloud, tmp_path):
    data = os.urandom(SIZE)
    weights = tmp_path / "weights.bin"
    weights.write_bytes(data)
    run = client.create_run(client.create_experiment("direct")).info.run_id
    before, first = tracking_reads(laptop_mlflow), len(cloud.transfers)
    client.log_artifact(run, str(weights), "model")
    read = tracking_reads(laptop_mlflow) - before
    transfers = cloud.transfers[first:]

    [name] = [n for n in cloud.buckets[BUCKET] if n.endswith("/model/weights.bin")]
    assert hashlib.sha256(cloud.stored(BUCKET, name)).digest() == hashlib.sha256(data).digest()
    assert (name, SIZE // PART) in cloud.commits
    parts = [t for t in transfers if t[0] == "PUT" and t[2] == "par" and "/u/" in t[1]]
    assert sorted(int(path.rsplit("/", 1)[1]) for _, path, *_ in parts) == list(range(1, SIZE // PART + 1))
    assert [size for *_, size, _ in parts] == [PART] * (SIZE // PART)
    signed = [t for t in transfers if t[2] == "api-key"]  # the tracking server's own calls: no part bytes
    assert signed and sum(size for *_, size, _ in signed) < 64 * 1024, signed
    assert read < SIZE // 4, f"the tracking server read {read} bytes for a {SIZE}-byte artifact"
    assert cloud.pars == {} or all(p.access_type == "ObjectRead" for p in cloud.pars.values())

    first = len(cloud.transfers)
    back = mlflow.artifacts.download_artifacts(run_id=run, artifact_path="model/weights.bin",
                                               dst_path=str(tmp_path / "back"))
    assert hashlib.sha256(open(back, "rb").read()).digest() == hashlib.sha256(data).digest()
    ranged = [t for t in cloud.transfers[first:] if t[0] == "GET" and t[2] == "par"]
    assert len(ranged) == SIZE // PART and {status for _, _, _, status, *_ in ranged} == {206}


def test_an_upload_whose_part_fails_is_aborted_and_leaves_no_parts(laptop_mlflow, client, cloud, tmp_path):
    weights = tmp_path / "broken.bin"
    weights.write_bytes(os.urandom(4 * PART))
    run = client.create_run(client.create_experiment("interrupted")).info.run_id
    cloud.cut_parts = {3}
    try:
        with pytest.raises(Exception, match="Failed to upload at least one part"):
            client.log_artifact(run, str(weights))
    finally:
        cloud.cut_parts = set()
    assert [n for n in cloud.aborts if n.endswith("/broken.bin")]
    assert not [n for n in cloud.buckets[BUCKET] if n.endswith("/broken.bin")]
    assert cloud.uploads == {} and cloud.part_files() == []
    assert not [p for p in cloud.pars.values() if p.access_type == "ObjectWrite"]  # its PAR is deleted


def test_a_person_who_may_only_read_gets_no_upload_par(laptop_mlflow, client, cloud):
    """The attacker: a user with READ on an experiment asks the tracking server to start a multipart upload into
    one of its runs. MLflow's permission check (UPDATE on the experiment, for mlflow-artifacts/mpu/*) refuses
    it before the store asks Object Storage for a write PAR."""
    local = laptop_mlflow
    added = subprocess.run([sys.executable, "-m", "orm_pack.cli", "users", "add", "reader", "--url", local.tracking_url],
                           env=local.client_env(), capture_output=True, text=True, timeout=120)
    assert added.returncode == 0, added.stderr
    reader = ("reader", added.stdout.strip())
    experiment = client.create_experiment("read-only-for-reader")
    run = client.create_run(experiment).info.run_id
    before = set(cloud.pars)

    def start_upload(login, experiment_id, run_id):
        return requests.post(f"{local.tracking_url}/api/2.0/mlflow-artifacts/mpu/create/{experiment_id}/{run_id}/"
                             "artifacts/weights.bin", json={"path": "weights.bin", "num_parts": 2}, auth=login,
                             verify=str(local.ca_file), timeout=60)

    assert requests.get(f"{local.tracking_url}/api/2.0/mlflow/experiments/get", params={"experiment_id": experiment},
                        auth=reader, verify=str(local.ca_file), timeout=60).status_code == 200  # READ
    refused = start_upload(reader, experiment, run)
    assert refused.status_code == 403, refused.text
    assert set(cloud.pars) == before  # no PAR was made for it
    # the same request by the experiment's owner gets its upload PAR: the refusal is the permission's
    answered = start_upload((local.username, local.password), experiment, run)
    assert answered.status_code == 200, answered.text
    assert [p for token, p in cloud.pars.items() if token not in before and p.access_type == "ObjectWrite"]
    upload = answered.json()
    requests.post(f"{local.tracking_url}/api/2.0/mlflow-artifacts/mpu/abort/{experiment}/{run}/artifacts/weights.bin",
                  json={"path": "weights.bin", "upload_id": upload["upload_id"]}, auth=(local.username, local.password),
                  verify=str(local.ca_file), timeout=60).raise_for_status()
