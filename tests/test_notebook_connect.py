"""examples/wine/mlflow_connect.py, the notebook's one-line setup: the MLflow login read from Vault as
the notebook session itself (resource principal 2.2) against the loopback Secrets fake, and one clear
error for each thing that can be missing.

OCI rules the fake enforces (Vault and IAM docs): the call is signed with the session key of the
resource principal token; a secret bundle is readable only by a principal that a policy grants
`read secret-bundles` on it, and answers 404 NotAuthorizedOrNotFound otherwise."""
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from ocifakes.server import InstanceCloud

from harness.certificates import Authority
from orm_pack.local.ports import free_port

REPO = Path(__file__).resolve().parents[1]
WINE = REPO / "examples" / "wine"
NOTEBOOK_SESSION = "ocid1.datasciencenotebooksession.oc1.iad.amaaaaaalpicn2foywk7vwcurjmw75frvrupmddkbnla7y74tinfmabtnnvq"
PROBE = ("import json, os; from mlflow_connect import mlflow_server as server; "
         "print(json.dumps({'password': os.environ['MLFLOW_TRACKING_PASSWORD'], 'tls': os.environ.get("
         "'MLFLOW_TRACKING_INSECURE_TLS'), 'ca': os.environ.get('MLFLOW_TRACKING_SERVER_CERT_PATH'), "
         "'serving': server.serving_url}))")


@pytest.fixture
def cloud():
    server = InstanceCloud().start()
    yield server
    server.stop()


def connect_in_a_session(extra: dict) -> subprocess.CompletedProcess:
    """connect() in a fresh interpreter, as a notebook's first cell runs, with only the session's settings
    (the tracking URI a closed port, where no certificate can be checked, unless given)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "OCI_"))}
    env.update({"MLFLOW_TRACKING_URI": f"https://127.0.0.1:{free_port()}", "MLFLOW_TRACKING_USERNAME": "mlflow",
                **extra})
    return subprocess.run([sys.executable, "-c", PROBE], cwd=WINE, env=env, capture_output=True, text=True,
                          timeout=120)


def test_the_password_comes_from_vault_through_the_resource_principal(cloud, tmp_path):
    ocid = cloud.add_secret("mlflow-login", "Ab3_Xy9#Qr7-Lm2_Np8#Tv4-Gh6_Kd")
    cloud.grant(secrets=[ocid], instance=NOTEBOOK_SESSION)
    result = connect_in_a_session({**cloud.resource_principal_env(tmp_path, NOTEBOOK_SESSION),
                                   "MLFLOW_TRACKING_PASSWORD_SECRET_OCID": ocid,
                                   "MLFLOW_SERVING_URL": "https://10.0.1.11:1234"})
    assert result.returncode == 0, result.stderr
    # no CA given: verification stays on, with the system's CAs (before: MLFLOW_TRACKING_INSECURE_TLS=true)
    assert json.loads(result.stdout) == {"password": "Ab3_Xy9#Qr7-Lm2_Np8#Tv4-Gh6_Kd", "tls": None, "ca": None,
                                         "serving": "https://10.0.1.11:1234"}
    assert [kind for _, _, kind, _ in cloud.requests] == ["session-token"]  # no federation, no other key


def test_the_servers_ca_comes_from_oci_certificates_and_verification_stays_on(cloud, tmp_path):
    """The stack's CA (OCI Certificates) read as the notebook session: MLflow then verifies the servers."""
    from cryptography import x509

    ca = cloud.add_private_ca("mlflow-ca-x1y2")
    secret = cloud.add_secret("mlflow-notebook-login", "Ab3_Xy9#Qr7-Lm2_Np8#Tv4-Gh6_Kd")
    cloud.grant(secrets=[secret], authorities=[ca.ocid], instance=NOTEBOOK_SESSION)
    result = connect_in_a_session({**cloud.resource_principal_env(tmp_path, NOTEBOOK_SESSION), "HOME": str(tmp_path),
                                   "MLFLOW_TRACKING_PASSWORD_SECRET_OCID": secret, "MLFLOW_TRACKING_CA_OCID": ca.ocid})
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["tls"] is None and found["ca"] == str(tmp_path / ".mlflow" / "tracking-ca.pem")
    assert x509.load_pem_x509_certificate(Path(found["ca"]).read_bytes()) == ca.certificate


def test_without_a_ca_a_server_the_systems_cas_do_not_verify_is_one_clear_error(tmp_path):
    """No CA set and a server whose certificate chains to a private CA: connect() refuses, naming the settings
    that give the stack's CA; it never turns verification off."""
    from test_tls_verification import tls_server

    with tls_server(tmp_path, *Authority("the stack's CA").issue()) as url:
        result = connect_in_a_session({"MLFLOW_TRACKING_URI": url, "MLFLOW_TRACKING_PASSWORD": "given"})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"mlflow_connect.ConnectError: the certificate of {url} does not verify with this system's CAs (unable to "
        "get local issuer certificate): set MLFLOW_TRACKING_CA_OCID to the stack's output tls_ca_id (read with OCI "
        "Certificates), or MLFLOW_TRACKING_SERVER_CERT_PATH to the CA certificate its output tls_ca_command saves")


def test_a_ca_the_session_may_not_read_is_one_clear_error(cloud, tmp_path):
    ca = cloud.add_private_ca("mlflow-ca-x1y2")
    result = connect_in_a_session({**cloud.resource_principal_env(tmp_path, NOTEBOOK_SESSION), "HOME": str(tmp_path),
                                   "MLFLOW_TRACKING_PASSWORD": "given", "MLFLOW_TRACKING_CA_OCID": ca.ocid})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"mlflow_connect.ConnectError: cannot read the servers' CA certificate ({ca.ocid}): 404 "
        "NotAuthorizedOrNotFound: check that the notebook session's policy allows 'read certificate-authority-bundles' "
        "on it")


def test_a_secret_the_session_may_not_read_is_one_clear_error(cloud, tmp_path):
    ocid = cloud.add_secret("mlflow-login", "not-for-this-session")
    cloud.grant(secrets=[ocid])  # granted to the instance, not to the notebook session
    result = connect_in_a_session({**cloud.resource_principal_env(tmp_path, NOTEBOOK_SESSION),
                                   "MLFLOW_TRACKING_PASSWORD_SECRET_OCID": ocid})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"mlflow_connect.ConnectError: cannot read the MLflow password from Vault ({ocid}): 404 "
        "NotAuthorizedOrNotFound: check that the notebook session's policy allows 'read secret-bundles' on it")
    assert "not-for-this-session" not in result.stdout + result.stderr


@pytest.mark.parametrize("settings, message", [
    ({"MLFLOW_TRACKING_URI": ""}, "set MLFLOW_TRACKING_URI (the stack's output notebook_setup lists them)"),
    ({}, "set MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_PASSWORD_SECRET_OCID"),
    ({"MLFLOW_TRACKING_PASSWORD_SECRET_OCID": "ocid1.vaultsecret.oc1.iad.amaaaaaajmdl46ycdytl5r5n4ut5c23pd5kzxtxgp3oxjovylc5ktq2tmgxa"},
     "outside a notebook session set MLFLOW_TRACKING_PASSWORD, or MLFLOW_OCI_AUTH=api_key"),
])
def test_a_missing_setting_is_named(settings, message):
    result = connect_in_a_session(settings)
    assert result.returncode == 1 and message in result.stderr.strip().splitlines()[-1], result.stderr


def test_the_notebook_is_kept_without_outputs():
    notebook = nbformat.read(WINE / "train.ipynb", as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.outputs == [] and cell.execution_count is None for cell in code)
    assert code[0].source == "from mlflow_connect import mlflow_server"  # one line


def test_the_notebook_installs_the_mlflow_client_of_the_server():
    notebook = nbformat.read(WINE / "train.ipynb", as_version=4)
    installs = [cell.source for cell in notebook.cells if cell.source.startswith("%pip install")]
    server = next(line for line in (REPO / "docker" / "requirements-tracking.txt").read_text().splitlines()
                  if line.startswith("mlflow"))
    version = server.split("==", 1)[1]  # the client needs no server extras
    assert len(installs) == 1 and f'"mlflow=={version}"' in installs[0]
