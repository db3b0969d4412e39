"""`orm-pack destroy` with artifacts in the bucket: Object Storage refuses to delete a bucket that holds
any object version (409 BucketNotEmpty), after the DESTROY job has already removed the database. So
orm-pack looks first: it says what the bucket holds and how to copy it out, and destroys only when told
to delete the artifacts, which it then does, every version, before the DESTROY job."""
import json

import oci
import pytest

from ormfake.testing import COMPARTMENT, TESTS_DIR

pytestmark = pytest.mark.terraform

DATA_SOURCE = TESTS_DIR / "orm" / "fixtures" / "stack-data"
STACK = "mlflow-destroy"
ENV = {"ORM_PACK_VAR_mysql_admin_password": "Sup3r-Secret-pw"}
BUCKET, NAMESPACE = "data-artifacts", "testnamespace"


@pytest.fixture
def deployed_with_artifacts(orm_pack, fake, oci_config):
    applied = orm_pack("apply", "--compartment", COMPARTMENT, "--stack-name", STACK, "--source", str(DATA_SOURCE),
                       "--auto-approve", env=ENV)
    assert applied.code == 0, applied
    config = oci.config.from_file(str(oci_config))
    storage = oci.object_storage.ObjectStorageClient(config, service_endpoint=fake.url,
                                                     retry_strategy=oci.retry.NoneRetryStrategy())
    # what MLflow leaves: artifacts, one of them written twice, one deleted (a delete marker remains)
    for name, data in [("1/run-a/artifacts/model.pkl", b"x" * 3000), ("1/run-a/artifacts/model.pkl", b"y" * 3000),
                       ("1/run-b/artifacts/metrics.json", b"{}"), ("1/run-c/artifacts/old.txt", b"old")]:
        storage.put_object(NAMESPACE, BUCKET, name, data)
    storage.delete_object(NAMESPACE, BUCKET, "1/run-c/artifacts/old.txt")
    return storage


def _common(fake):
    return ("--compartment", COMPARTMENT, "--stack-name", STACK, "--object-storage-endpoint", fake.url)


def test_destroy_stops_and_says_how_to_keep_the_artifacts(orm_pack, fake, deployed_with_artifacts):
    result = orm_pack("destroy", *_common(fake), "--auto-approve")
    assert result.code == 5, result
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("orm-pack: error: bucket data-artifacts holds 2 artifact file(s) in 5 object version(s)")
    assert f"oci os object bulk-download --namespace {NAMESPACE} --bucket-name {BUCKET}" in line
    assert "orm-pack destroy --delete-artifacts" in line
    assert [j["operation"] for j in fake.jobs.values()].count("DESTROY") == 0
    assert len(fake.object_store.versions(NAMESPACE, BUCKET)) == 5


def test_the_fake_refuses_to_delete_a_bucket_that_is_not_empty(fake, deployed_with_artifacts, oci_config):
    """What a DESTROY job does without orm-pack's look first: the database goes, the bucket stays."""
    from orm_pack.cloud import ociconfig
    from orm_pack.cloud.resource_manager import ResourceManager

    context = ociconfig.load(ociconfig.AuthOptions(config_file=str(oci_config), endpoint=fake.url), {})
    rm = ResourceManager(ociconfig.client("resource_manager", context, ociconfig.retry_strategy(1), context.endpoint), poll_seconds=0.1)
    (stack,) = [s for s in fake.stacks.values() if s["displayName"] == STACK]
    job = rm.follow_job(rm.start_job(stack["id"], "DESTROY").id)
    assert job.state == "FAILED"
    log = "\n".join(rm.log_tail(job.id, 40))
    assert "409-BucketNotEmpty, Bucket named 'data-artifacts' is not empty. Delete all object versions first." in log
    left = [r["type"] for r in json.loads(fake.stack_state_file(stack["id"]).read_text())["resources"]
            if r["mode"] == "managed"]
    assert left == ["oci_objectstorage_bucket"]  # the database is gone, the artifacts are orphaned


def test_delete_artifacts_empties_every_version_then_destroys(orm_pack, fake, deployed_with_artifacts):
    result = orm_pack("destroy", *_common(fake), "--auto-approve", "--delete-artifacts", "--json")
    assert result.code == 0, result
    document = json.loads(result.stdout)
    assert document["artifacts"] == {"bucket": BUCKET, "namespace": NAMESPACE, "objects": 2, "versions": 5,
                                     "bytes": 6005}
    assert document["artifact_versions_deleted"] == 5
    assert "WARNING: bucket data-artifacts holds 2 artifact file(s)" in result.stderr
    assert "deleting artifacts: 5 of 5 object versions" in result.stderr
    assert not fake.object_store.has_bucket(NAMESPACE, BUCKET)
    (stack,) = [s for s in fake.stacks.values() if s["displayName"] == STACK]
    assert stack["lifecycleState"] == "DELETED"


def test_an_unreachable_object_storage_stops_the_destroy_before_it_starts(orm_pack, fake, deployed_with_artifacts):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    result = orm_pack("destroy", "--compartment", COMPARTMENT, "--stack-name", STACK, "--auto-approve",
                      "--object-storage-endpoint", closed)
    assert result.code == 6, result
    assert result.stderr.strip().splitlines()[-1] == (
        f"orm-pack: error: cannot reach Object Storage ({closed}) to look at bucket {BUCKET} before the destroy: "
        "RequestException; check your network, or pass --object-storage-endpoint; nothing was destroyed")
    assert [j["operation"] for j in fake.jobs.values()].count("DESTROY") == 0
