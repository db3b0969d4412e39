"""The runtime's OCI identity against loopback fakes of the instance metadata service, federation,
Vault's Secrets API and Object Storage (tests/ocifakes): secrets and artifacts reached with the
instance principal only, and a refusal turned into one line at start.

OCI rules the fakes enforce (Vault and IAM docs): a secret bundle is readable only by a principal a
policy grants `read secret-bundles` on it, and answers 404 NotAuthorizedOrNotFound otherwise (the same
as a secret that does not exist); Object Storage answers 404 BucketNotFound to a principal without a
grant; service calls carry a session token signed with the key sent at federation.
"""
import hashlib
import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ocifakes.server import VAULT, InstanceCloud

from harness import ocids

VAULTSECRET_A = "ocid1.vaultsecret.oc1.iad.amaaaaaa2wffplfyziif7sobvzpww5hcwzngzjnimcvmdy2rzdge5twd5fba"

REPO = Path(__file__).resolve().parents[1]
LIB = REPO / "docker" / "lib"


@pytest.fixture
def cloud():
    server = InstanceCloud().start()
    yield server
    server.stop()


def runtime_env(cloud: InstanceCloud, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_SECRET_OCID", "_SECRET_NAME"))}
    env.update(cloud.runtime_env(), PYTHONPATH=str(LIB), **extra)
    return env


def test_secret_ocids_become_values_through_the_instance_principal(cloud):
    password = "p&ss w/ 'quotes' \"and\" $dollars"
    ocid = cloud.add_secret("mlflow-db", password)
    cloud.grant(secrets=[ocid])
    result = subprocess.run(
        [sys.executable, "-m", "mlflow_oci.secrets", "exec", "--", sys.executable, "-c",
         "import os; print(repr(os.environ['MLFLOW_DB_PASSWORD'])); "
         "print(sorted(k for k in os.environ if k.endswith('_SECRET_OCID')))"],
        env=runtime_env(cloud, MLFLOW_DB_PASSWORD_SECRET_OCID=ocid, UNUSED_SECRET_OCID=""),
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [repr(password), "[]"]
    assert password not in result.stderr
    kinds = [kind for _, _, kind, _ in cloud.requests]
    assert "certificate" in kinds and kinds.count("session-token") == 1, cloud.requests


@pytest.mark.parametrize("case", ["not granted", "does not exist"])
def test_a_secret_the_instance_cannot_read_stops_the_start_with_one_line(cloud, case):
    ocid = cloud.add_secret("mysql-admin", "x")
    if case == "does not exist":
        cloud.grant(secrets=[ocid])
        ocid = ocid[:-4] + "0000"
    result = subprocess.run([sys.executable, "-m", "mlflow_oci.secrets", "exec", "--", "true"],
                            env=runtime_env(cloud, MYSQL_ADMIN_PASSWORD_SECRET_OCID=ocid),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 3
    assert result.stderr.splitlines() == [
        f"mlflow-secrets: error: cannot read MYSQL_ADMIN_PASSWORD_SECRET_OCID ({ocid}): 404 NotAuthorizedOrNotFound: "
        "check that the secret exists and that a policy lets this instance's dynamic group 'read secret-bundles' on it"]


def test_a_secret_named_by_its_name_in_a_vault_becomes_its_value(cloud):
    # GetSecretBundleByName: a name is unique within one vault, so the vault is part of the lookup.
    ocid = cloud.add_secret("mlflow-oidc-client-secret", "s3cr3t")
    cloud.add_secret("mlflow-oidc-client-secret", "another vault's", vault=ocids.mint("vault", "another vault"))
    cloud.grant(secrets=[ocid])
    result = subprocess.run(
        [sys.executable, "-m", "mlflow_oci.secrets", "exec", "--", sys.executable, "-c",
         "import os; print(os.environ['MLFLOW_OIDC_CLIENT_SECRET']); "
         "print(sorted(k for k in os.environ if k.endswith('_SECRET_NAME')))"],
        env=runtime_env(cloud, MLFLOW_OIDC_CLIENT_SECRET_SECRET_NAME="mlflow-oidc-client-secret", MLFLOW_VAULT_OCID=VAULT),
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["s3cr3t", "[]"]


def test_a_secret_by_name_that_does_not_exist_yet_says_the_start_is_tried_again(cloud):
    result = subprocess.run(
        [sys.executable, "-m", "mlflow_oci.secrets", "exec", "--", "true"],
        env=runtime_env(cloud, MLFLOW_OIDC_CLIENT_ID_SECRET_NAME="mlflow-oidc-client-id", MLFLOW_VAULT_OCID=VAULT),
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 3
    assert result.stderr.splitlines() == [
        f"mlflow-secrets: error: cannot read MLFLOW_OIDC_CLIENT_ID_SECRET_NAME (mlflow-oidc-client-id in {VAULT}): "
        "404 NotAuthorizedOrNotFound: it is created after this machine by the stack, so until then the start fails "
        "and the service tries again; if it stays, check that the secret exists and that a policy lets this "
        "instance's dynamic group 'read secret-bundles' on it"]


@pytest.mark.parametrize("extra, message", [
    ({}, "MLFLOW_OIDC_CLIENT_ID_SECRET_NAME names a secret by name: set MLFLOW_VAULT_OCID to its vault's OCID (ocid1.vault.…)"),
    ({"MLFLOW_VAULT_OCID": VAULT, "MLFLOW_OIDC_CLIENT_ID_SECRET_OCID": VAULTSECRET_A},
     "set MLFLOW_OIDC_CLIENT_ID_SECRET_OCID or MLFLOW_OIDC_CLIENT_ID_SECRET_NAME, not both"),
])
def test_a_secret_name_without_its_vault_or_with_an_ocid_too_is_refused(cloud, extra, message):
    result = subprocess.run(
        [sys.executable, "-m", "mlflow_oci.secrets", "exec", "--", "true"],
        env=runtime_env(cloud, MLFLOW_OIDC_CLIENT_ID_SECRET_NAME="mlflow-oidc-client-id", **extra),
        capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stderr.strip()) == (3, f"mlflow-secrets: error: {message}")


def test_without_the_metadata_service_the_start_names_the_instance_principal(cloud):
    ocid = cloud.add_secret("mlflow-login", "x")
    env = runtime_env(cloud, MLFLOW_TRACKING_PASSWORD_SECRET_OCID=ocid)
    env["OCI_METADATA_BASE_URL"] = "http://127.0.0.1:9/opc/v2"  # discard port: nothing answers
    result = subprocess.run([sys.executable, "-m", "mlflow_oci.secrets", "print", ocid], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 3, result
    [line] = result.stderr.splitlines()
    assert line.startswith("mlflow-secrets: error: cannot read secret: the instance principal is not available")
    assert "MLFLOW_OCI_AUTH=api_key" in line


def test_a_value_and_its_secret_ocid_together_are_refused(cloud):
    result = subprocess.run([sys.executable, "-m", "mlflow_oci.secrets", "exec", "--", "true"],
                            env=runtime_env(cloud, MLFLOW_DB_PASSWORD="typed",
                                            MLFLOW_DB_PASSWORD_SECRET_OCID=cloud.add_secret("db", "x")),
                            capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stderr.strip()) == (
        3, "mlflow-secrets: error: set MLFLOW_DB_PASSWORD or MLFLOW_DB_PASSWORD_SECRET_OCID, not both")


def test_the_artifact_store_uploads_in_parts_lists_downloads_and_deletes(cloud, tmp_path, monkeypatch):
    """In-process, as the tracking server's workers use it: a 12 MiB file in 5 MiB parts."""
    for name, value in runtime_env(cloud, MLFLOW_OCI_PART_SIZE_MB="5").items():
        monkeypatch.setenv(name, value)
    monkeypatch.syspath_prepend(str(LIB))
    cloud.create_bucket("artifacts-bucket")
    cloud.grant(buckets=["artifacts-bucket"])
    for module in [m for m in sys.modules if m.startswith("mlflow_oci")]:
        monkeypatch.delitem(sys.modules, module)
    # MLflow finds the store through the dist-info's entry point (read here directly: MLflow's own
    # registry is filled once per process, maybe before docker/lib was on the path).
    [entry_point] = [ep for dist in importlib.metadata.distributions(path=[str(LIB)])
                     for ep in dist.entry_points if ep.group == "mlflow.artifact_repository"]
    assert entry_point.name == "oci"
    repository = entry_point.load()("oci://artifacts-bucket@fakens/runs/1")
    data = os.urandom(12 * 2**20)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.bin").write_bytes(data)
    (tmp_path / "model" / "MLmodel").write_text("flavors: {}\n")
    repository.log_artifacts(str(tmp_path / "model"), "model")
    assert sorted(cloud.buckets["artifacts-bucket"]) == ["runs/1/model/MLmodel", "runs/1/model/weights.bin"]
    assert cloud.commits == [("runs/1/model/weights.bin", 3)]
    assert [(i.path, i.is_dir) for i in repository.list_artifacts()] == [("model", True)]
    assert [(i.path, i.file_size) for i in repository.list_artifacts("model")] == [
        ("model/MLmodel", 12), ("model/weights.bin", len(data))]
    assert repository.list_artifacts("model/MLmodel") == []
    (tmp_path / "back").mkdir()
    local = repository.download_artifacts("model/weights.bin", str(tmp_path / "back"))
    assert hashlib.sha256(Path(local).read_bytes()).digest() == hashlib.sha256(data).digest()
    repository.delete_artifacts("model")
    assert cloud.buckets["artifacts-bucket"] == {}
    assert {kind for _, _, kind, _ in cloud.requests} == {"imds", "certificate", "session-token"}


@pytest.mark.parametrize("grant", [False, True])
def test_the_artifact_check_at_start_names_a_missing_grant(cloud, grant):
    cloud.create_bucket("artifacts-bucket")
    if grant:
        cloud.grant(buckets=["artifacts-bucket"])
    result = subprocess.run([sys.executable, "-m", "mlflow_oci.artifacts", "check", "oci://artifacts-bucket@fakens/a"],
                            env=runtime_env(cloud), capture_output=True, text=True, timeout=60)
    if grant:
        assert (result.returncode, result.stderr) == (0, "")
    else:
        assert (result.returncode, result.stderr.strip()) == (
            3, "cannot list oci://artifacts-bucket@fakens/a: 404 BucketNotFound: check that the bucket exists and "
               "that a policy lets this instance's dynamic group 'manage objects' in it")


# ------------------------------------------------------------------------------------------- certificates
def install_certificate(cloud: InstanceCloud, tmp_path: Path, certificate: str, authority: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mlflow_oci.certificates", "install", certificate, str(tmp_path / "tls" / "proxy.crt"),
         str(tmp_path / "tls" / "private" / "proxy.key"), "--ca", authority, str(tmp_path / "tls" / "ca.pem")],
        env=runtime_env(cloud), capture_output=True, text=True, timeout=120)


def handshake(tmp_path: Path) -> dict:
    """A TLS server on 127.0.0.1 with the installed pair, and a client verifying it with the installed CA."""
    import socket
    import ssl
    import threading

    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(tmp_path / "tls" / "proxy.crt", tmp_path / "tls" / "private" / "proxy.key")
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = threading.Thread(target=lambda: server_context.wrap_socket(listener.accept()[0], server_side=True).close(),
                                daemon=True)
    accepted.start()
    client_context = ssl.create_default_context(cafile=str(tmp_path / "tls" / "ca.pem"))
    with socket.create_connection(listener.getsockname()) as raw, \
            client_context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        peer = tls.getpeercert()
    accepted.join(5)
    listener.close()
    return peer


def test_the_vm_installs_its_certificate_from_the_private_ca_and_takes_each_renewal(cloud, tmp_path):
    ca = cloud.add_private_ca("mlflow-ca-x1y2")
    certificate = ca.issue("mlflow-tracking-x1y2", ("203.0.113.10", "10.0.1.10", "127.0.0.1"))
    cloud.grant_certificate(certificate, authorities=[ca.ocid])
    first = install_certificate(cloud, tmp_path, certificate, ca.ocid)
    assert first.returncode == 10, first.stderr   # installed: the caller reloads nginx
    assert f"installed certificate {certificate} version 1" in first.stderr and "PRIVATE KEY" not in first.stderr
    assert (tmp_path / "tls" / "private" / "proxy.key").stat().st_mode & 0o777 == 0o600
    peer = handshake(tmp_path)   # the pair serves TLS that a client verifies with the CA, for the address
    assert ("IP Address", "203.0.113.10") in peer["subjectAltName"]
    again = install_certificate(cloud, tmp_path, certificate, ca.ocid)
    assert again.returncode == 0 and "unchanged: certificate" in again.stderr   # the timer's usual run
    ca.renew(certificate)
    renewed = install_certificate(cloud, tmp_path, certificate, ca.ocid)
    assert renewed.returncode == 10 and "version 2" in renewed.stderr
    assert handshake(tmp_path)["serialNumber"] != peer["serialNumber"]


def test_without_the_grant_for_the_private_key_the_install_stops_with_one_line_and_writes_nothing(cloud, tmp_path):
    ca = cloud.add_private_ca("mlflow-ca-x1y2")
    certificate = ca.issue("mlflow-serving-x1y2", ("203.0.113.11",))
    cloud.grant_certificate(certificate, bundle_types=["CERTIFICATE_CONTENT_PUBLIC_ONLY"], authorities=[ca.ocid])
    result = install_certificate(cloud, tmp_path, certificate, ca.ocid)
    assert result.returncode == 3
    assert result.stderr.strip().splitlines() == [
        f"mlflow-certificates: error: cannot read the TLS certificate ({certificate}): 404 NotAuthorizedOrNotFound: "
        "check that it exists and that a policy lets this instance's dynamic group 'read leaf-certificate-bundles' "
        "on it with bundle type CERTIFICATE_CONTENT_WITH_PRIVATE_KEY"]
    assert not (tmp_path / "tls").exists()
