"""The oci:// store's direct transfers (MLflow's multipart upload and presigned download interfaces)
against the Object Storage fake, in process, signed with a laptop's API key as `orm-pack local up` does:
the server makes a per-upload pre-authenticated request (PAR) and the parts go from the client straight to
the fake; commit, abort, expiry and the PAR rules as tests/ocifakes/server.py models them from OCI's docs.
"""
import hashlib
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import oci
import pytest
import requests
from mlflow.entities.multipart_upload import MultipartUploadPart
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repo import MultipartDownloadMixin, MultipartUploadMixin
from ocifakes.server import InstanceCloud

from ormfake.keys import ApiKey, write_oci_config

REPO = Path(__file__).resolve().parents[1]
LIB = REPO / "docker" / "lib"
BUCKET = "artifacts"
PART = 1 << 20


@pytest.fixture(scope="module")
def laptop(tmp_path_factory):
    """The fake, a user's API key it knows, and an OCI config file with that key."""
    cloud = InstanceCloud().start()
    key = ApiKey.generate()
    cloud.add_api_key(key.key_id, key.public_key, key.user)
    cloud.create_bucket(BUCKET)
    cloud.create_bucket("other")
    cloud.grant(buckets=[BUCKET, "other"], par_buckets=[BUCKET], instance=key.user)
    config = write_oci_config(tmp_path_factory.mktemp("oci"), key)
    yield cloud, config
    cloud.stop()


@pytest.fixture(scope="module")
def artifacts(laptop):
    sys.path.insert(0, str(LIB))
    try:
        from mlflow_oci import artifacts
    finally:
        sys.path.remove(str(LIB))
    return artifacts


def store(laptop, artifacts, uri=f"oci://{BUCKET}@fakens/runs/1"):
    cloud, config = laptop
    client = oci.object_storage.ObjectStorageClient(oci.config.from_file(str(config)), service_endpoint=cloud.url)
    return artifacts.repository(uri, client=client)


def parts_of(data: bytes) -> list[bytes]:
    return [data[i:i + PART] for i in range(0, len(data), PART)]


def put_parts(created, chunks) -> list[MultipartUploadPart]:
    uploaded = []
    for credential, chunk in zip(created.credentials, chunks, strict=False):
        response = requests.put(credential.url, data=chunk, headers=credential.headers, timeout=30)
        assert response.status_code == 200, response.text
        uploaded.append(MultipartUploadPart(credential.part_number, response.headers["ETag"], credential.url))
    return uploaded


def test_parts_go_straight_to_object_storage_through_the_uploads_par(laptop, artifacts, tmp_path):
    cloud, _ = laptop
    repository = store(laptop, artifacts)
    assert isinstance(repository, MultipartUploadMixin) and isinstance(repository, MultipartDownloadMixin)
    data = os.urandom(3 * PART + 1234)
    local = tmp_path / "weights.bin"
    local.write_bytes(data)
    created = repository.create_multipart_upload(str(local), 4, "model")
    assert [c.part_number for c in created.credentials] == [1, 2, 3, 4]
    assert all(c.url.startswith(f"{cloud.url}/p/") and "/u/runs/1/model/weights.bin/id/" in c.url
               for c in created.credentials)
    before = len(cloud.transfers)
    parts = put_parts(created, parts_of(data))
    part_puts = [t for t in cloud.transfers[before:] if t[0] == "PUT"]
    assert [(kind, size) for _, _, kind, _, size, _ in part_puts] == [("par", len(c)) for c in parts_of(data)]
    repository.complete_multipart_upload(str(local), created.upload_id, parts, "model")
    assert hashlib.sha256(cloud.stored(BUCKET, "runs/1/model/weights.bin")).digest() == hashlib.sha256(data).digest()
    assert ("runs/1/model/weights.bin", 4) in cloud.commits
    assert cloud.pars == {} and cloud.part_files() == []  # the PAR is deleted with the upload
    late = requests.put(created.credentials[0].url, data=b"x", timeout=30)
    assert late.status_code == 404 and late.json()["code"] == "NotAuthorizedOrNotFound"


def test_an_interrupted_upload_is_aborted_and_leaves_no_parts(laptop, artifacts, tmp_path):
    cloud, _ = laptop
    repository = store(laptop, artifacts)
    local = tmp_path / "big.bin"
    local.write_bytes(os.urandom(3 * PART))
    created = repository.create_multipart_upload(str(local), 3)
    put_parts(created, parts_of(local.read_bytes())[:2])
    assert len(cloud.part_files()) == 2 and len(cloud.uploads) == 1
    # the upload started through the PAR is an ordinary one: the API lists it and its parts
    [listed] = repository.client.list_multipart_uploads("fakens", BUCKET).data
    assert listed.object == "runs/1/big.bin" and created.upload_id.startswith(listed.upload_id)
    listed_parts = repository.client.list_multipart_upload_parts("fakens", BUCKET, "runs/1/big.bin",
                                                                 listed.upload_id).data
    assert [(p.part_number, p.size) for p in listed_parts] == [(1, PART), (2, PART)]
    repository.abort_multipart_upload(str(local), created.upload_id)
    assert cloud.uploads == {} and cloud.part_files() == [] and cloud.pars == {}
    assert repository.client.list_multipart_uploads("fakens", BUCKET).data == []
    assert "runs/1/big.bin" not in cloud.buckets[BUCKET] and "runs/1/big.bin" in cloud.aborts
    assert requests.put(created.credentials[2].url, data=b"x", timeout=30).status_code == 404


def test_a_commit_with_a_part_missing_or_another_etag_is_refused(laptop, artifacts, tmp_path):
    cloud, _ = laptop
    repository = store(laptop, artifacts)
    local = tmp_path / "two.bin"
    local.write_bytes(os.urandom(2 * PART))
    created = repository.create_multipart_upload(str(local), 2)
    first, second = put_parts(created, parts_of(local.read_bytes()))
    wrong = MultipartUploadPart(2, hashlib.md5(b"other bytes").hexdigest())
    with pytest.raises(MlflowException, match="part 2 is missing or its etag differs"):
        repository.complete_multipart_upload(str(local), created.upload_id, [first, wrong])
    assert "runs/1/two.bin" not in cloud.buckets[BUCKET]
    repository.abort_multipart_upload(str(local), created.upload_id)  # the failed commit deleted the PAR
    assert cloud.uploads == {} and cloud.pars == {}


def test_part_numbers_run_from_1_to_10000_and_a_part_sent_again_replaces_it(laptop, artifacts, tmp_path):
    cloud, _ = laptop
    repository = store(laptop, artifacts)
    local = tmp_path / "again.bin"
    local.write_bytes(b"final bytes")
    created = repository.create_multipart_upload(str(local), 1)
    base = created.credentials[0].url[:-1]
    for number in ("0", "10001"):
        refused = requests.put(base + number, data=b"x", timeout=30)
        assert (refused.status_code, refused.json()["code"]) == (400, "InvalidParameter")
    assert requests.put(base + "10000", data=b"last", timeout=30).status_code == 200
    requests.put(base + "1", data=b"first try", timeout=30)
    [part] = put_parts(created, [b"final bytes"])
    repository.complete_multipart_upload(str(local), created.upload_id, [part])
    assert cloud.stored(BUCKET, "runs/1/again.bin") == b"final bytes"
    with pytest.raises(MlflowException, match="1 to 10000 parts"):
        repository.create_multipart_upload(str(local), 10001)


def test_an_expired_upload_par_is_refused(laptop, artifacts, tmp_path, monkeypatch):
    cloud, _ = laptop
    monkeypatch.setenv("MLFLOW_OCI_UPLOAD_PAR_SECONDS", "1")
    repository = store(laptop, artifacts)
    local = tmp_path / "slow.bin"
    local.write_bytes(b"late")
    created = repository.create_multipart_upload(str(local), 1)
    time.sleep(1.2)
    refused = requests.put(created.credentials[0].url, data=b"late", timeout=30)
    assert (refused.status_code, refused.json()["code"]) == (404, "NotAuthorizedOrNotFound")
    repository.abort_multipart_upload(str(local), created.upload_id)
    assert cloud.uploads == {} and cloud.part_files() == []


def test_a_download_par_reads_that_object_in_ranges_until_it_expires(laptop, artifacts, tmp_path):
    cloud, _ = laptop
    repository = store(laptop, artifacts)
    data = os.urandom(PART + 7)
    (tmp_path / "read.bin").write_bytes(data)
    repository.log_artifact(str(tmp_path / "read.bin"))
    presigned = repository.get_download_presigned_url("read.bin", expiration=1)
    assert presigned.file_size == len(data) and presigned.url.startswith(f"{cloud.url}/p/")
    ranged = requests.get(presigned.url, headers={"Range": "bytes=10-1048579"}, timeout=30)
    assert ranged.status_code == 206 and ranged.content == data[10:1048580]
    assert ranged.headers["content-range"] == f"bytes 10-1048579/{len(data)}"
    assert requests.get(presigned.url, timeout=30).content == data
    assert requests.put(presigned.url, data=b"overwrite", timeout=30).status_code == 404  # read only
    elsewhere = presigned.url.replace("/o/runs/1/read.bin", "/o/runs/1/other.bin")
    assert requests.get(elsewhere, timeout=30).status_code == 404  # that object only
    with pytest.raises(MlflowException, match="no artifact missing.bin"):
        repository.get_download_presigned_url("missing.bin")
    time.sleep(1.2)
    assert requests.get(presigned.url, timeout=30).status_code == 404


def test_creating_a_par_needs_par_manage_and_valid_details(laptop):
    cloud, config = laptop
    client = oci.object_storage.ObjectStorageClient(oci.config.from_file(str(config)), service_endpoint=cloud.url)
    details = oci.object_storage.models.CreatePreauthenticatedRequestDetails
    soon = datetime.now(timezone.utc) + timedelta(minutes=5)

    def refused(bucket, **fields):
        with pytest.raises(oci.exceptions.ServiceError) as caught:
            client.create_preauthenticated_request("fakens", bucket, details(name="p", **fields))
        return caught.value.status, caught.value.code

    assert refused("other", access_type="ObjectRead", object_name="a", time_expires=soon) == (
        404, "NotAuthorizedOrNotFound")  # objects granted, PAR_MANAGE not
    assert refused(BUCKET, access_type="ObjectRead", time_expires=soon) == (400, "InvalidParameter")
    unknown = details(name="p", object_name="a", time_expires=soon)
    unknown._access_type = "BucketWrite"  # the SDK checks the value itself: past it, as another client could
    with pytest.raises(oci.exceptions.ServiceError) as caught:
        client.create_preauthenticated_request("fakens", BUCKET, unknown)
    assert (caught.value.status, caught.value.code) == (400, "InvalidParameter")
    assert refused(BUCKET, access_type="AnyObjectWrite", object_name="a", time_expires=soon) == (
        400, "InvalidParameter")
    assert refused(BUCKET, access_type="ObjectRead", object_name="a",
                   time_expires=datetime.now(timezone.utc) - timedelta(seconds=1)) == (400, "InvalidParameter")
    par = client.create_preauthenticated_request("fakens", BUCKET, details(
        name="p", access_type="AnyObjectWrite", time_expires=soon)).data
    assert requests.put(f"{cloud.url}{par.access_uri}x/y.txt", data=b"any", timeout=30).status_code == 200
    assert requests.get(f"{cloud.url}{par.access_uri}x/y.txt", timeout=30).status_code == 404  # write only
    client.delete_preauthenticated_request("fakens", BUCKET, par.id)
    assert requests.put(f"{cloud.url}{par.access_uri}x/z.txt", data=b"any", timeout=30).status_code == 404


def test_without_par_manage_the_store_offers_no_direct_transfers(laptop, artifacts, monkeypatch):
    cloud, config = laptop
    env = dict(os.environ, PYTHONPATH=str(LIB), MLFLOW_OCI_AUTH="api_key", OCI_CONFIG_FILE=str(config),
               MLFLOW_OCI_OBJECT_STORAGE_ENDPOINT=cloud.url, NO_PROXY="127.0.0.1")
    checks = {uri: subprocess.run([sys.executable, "-m", "mlflow_oci.artifacts", "check", uri], env=env,
                                  capture_output=True, text=True, timeout=60)
              for uri in (f"oci://{BUCKET}@fakens/a", "oci://other@fakens/a")}
    assert [(r.returncode, r.stdout.strip(), r.stderr) for r in checks.values()] == [
        (0, "direct", ""),
        (0, "proxied: cannot create a pre-authenticated request in other: 404 NotAuthorizedOrNotFound (the policy "
            "lacks PAR_MANAGE on the bucket)", "")]
    assert not [p for p in cloud.pars.values() if p.object_name == "a/.mlflow-par-check"]  # deleted again
    assert ("POST", "/n/fakens/b/artifacts/p", "api-key", 200) in cloud.requests
    monkeypatch.setenv("MLFLOW_OCI_DIRECT_TRANSFERS", "false")
    plain = store(laptop, artifacts)
    assert not isinstance(plain, MultipartUploadMixin) and not isinstance(plain, MultipartDownloadMixin)
