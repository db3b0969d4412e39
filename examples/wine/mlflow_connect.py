"""Connects a notebook or script to the stack's MLflow in one line:

    from mlflow_connect import mlflow_server      (connects on first import; connect() does it again)

Settings, from the environment (an OCI Data Science notebook session created by the stack has them;
`orm-pack local up --json` and the stack's output notebook_setup print them):

    MLFLOW_TRACKING_URI                    https://<tracking address>
    MLFLOW_TRACKING_USERNAME               the MLflow user
    MLFLOW_TRACKING_PASSWORD               the password, or instead
    MLFLOW_TRACKING_PASSWORD_SECRET_OCID   the Vault secret that holds it, read with the notebook
                                           session's resource principal (MLFLOW_OCI_AUTH=api_key: with
                                           ~/.oci/config); the value stays in this process
    MLFLOW_SERVING_URL                     optional: the model endpoint's base URL, for predict()
    MLFLOW_TRACKING_SERVER_CERT_PATH       the CA certificate the servers' certificates chain to, or instead
    MLFLOW_TRACKING_CA_OCID                the stack's certificate authority in OCI Certificates, whose
                                           certificate is read like the password and saved to
                                           ~/.mlflow/tracking-ca.pem

Without either, the server's certificate is verified with the system's CAs (a server behind a public
certificate); connect() checks that it does and otherwise names the two settings above. Verification is
never turned off.
"""
import base64
import json
import os
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

CA_FILE = Path.home() / ".mlflow" / "tracking-ca.pem"


class ConnectError(Exception):
    """A setting is missing or the password could not be read; the message says which."""


@dataclass
class MlflowServer:
    tracking_uri: str
    username: str
    serving_url: str

    def predict(self, frame) -> tuple[list, str]:
        """POSTs a pandas DataFrame to the serving endpoint; returns (predictions, served model URI)."""
        if not self.serving_url:
            raise ConnectError("set MLFLOW_SERVING_URL (the serving endpoint's base URL) to call predict()")
        body = json.dumps({"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}).encode()
        request = urllib.request.Request(f"{self.serving_url.rstrip('/')}/invocations", data=body, method="POST",
                                         headers={"Content-Type": "application/json",
                                                  "Authorization": _basic_auth(self.username)})
        with urllib.request.urlopen(request, timeout=60, context=_tls_context()) as response:
            return json.loads(response.read())["predictions"], response.headers.get("X-MLflow-Model-URI", "")

    def wait_until_served(self, model_uri: str, frame, seconds: float = 300) -> list:
        """Predicts until the endpoint answers with `model_uri` (it follows an alias within a poll)."""
        deadline = time.monotonic() + seconds
        served = None
        while True:
            try:
                predictions, served = self.predict(frame)
                if served == model_uri:
                    return predictions
            except (urllib.error.URLError, OSError):
                pass  # 503 while no model is loaded yet, or a restart
            if time.monotonic() > deadline:
                raise TimeoutError(f"the endpoint still serves {served or 'no model'} after {seconds:.0f} s, "
                                   f"not {model_uri}")
            time.sleep(1)


def connect() -> MlflowServer:
    """Checks the settings, resolves the password, and points MLflow's client at the server."""
    env = os.environ
    missing = [name for name in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME") if not env.get(name)]
    if missing:
        raise ConnectError(f"set {' and '.join(missing)} (the stack's output notebook_setup lists them)")
    if not env.get("MLFLOW_TRACKING_PASSWORD"):
        ocid = env.get("MLFLOW_TRACKING_PASSWORD_SECRET_OCID")
        if not ocid:
            raise ConnectError("set MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_PASSWORD_SECRET_OCID")
        env["MLFLOW_TRACKING_PASSWORD"] = read_secret(ocid)
    if not env.get("MLFLOW_TRACKING_SERVER_CERT_PATH") and env.get("MLFLOW_TRACKING_CA_OCID"):
        CA_FILE.parent.mkdir(parents=True, exist_ok=True)
        CA_FILE.write_text(read_ca(env["MLFLOW_TRACKING_CA_OCID"]))
        env["MLFLOW_TRACKING_SERVER_CERT_PATH"] = str(CA_FILE)
    if env.get("MLFLOW_TRACKING_SERVER_CERT_PATH"):
        env.pop("MLFLOW_TRACKING_INSECURE_TLS", None)   # MLflow refuses both
    else:
        check_certificate(env["MLFLOW_TRACKING_URI"])
    return MlflowServer(env["MLFLOW_TRACKING_URI"], env["MLFLOW_TRACKING_USERNAME"], env.get("MLFLOW_SERVING_URL", ""))


def _client(client_class, endpoint_variable: str):
    """An OCI client as the notebook session itself (resource principal), or with ~/.oci/config."""
    import oci

    if os.environ.get("MLFLOW_OCI_AUTH") == "api_key":
        return client_class(oci.config.from_file())
    signer = oci.auth.signers.get_resource_principals_signer()
    return client_class({"region": signer.region}, signer=signer,
                        service_endpoint=os.environ.get(endpoint_variable) or None)


def _read(what: str, ocid: str, grant: str, call):
    import oci

    try:
        return call()
    except oci.exceptions.ServiceError as exc:
        raise ConnectError(f"cannot read {what} ({ocid}): {exc.status} {exc.code}: check that the notebook "
                           f"session's policy allows '{grant}' on it") from None
    except Exception as exc:  # no resource principal here, a missing config, the network
        raise ConnectError(f"cannot read {what} ({ocid}): {type(exc).__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else ''} (outside a notebook session set "
                           "MLFLOW_TRACKING_PASSWORD, or MLFLOW_OCI_AUTH=api_key)") from None


def read_secret(ocid: str) -> str:
    """The current value of a Vault secret, read as the notebook session itself (resource principal)."""
    import oci

    bundle = _read("the MLflow password from Vault", ocid, "read secret-bundles", lambda: _client(
        oci.secrets.SecretsClient, "MLFLOW_OCI_SECRETS_ENDPOINT").get_secret_bundle(
        ocid, retry_strategy=oci.retry.NoneRetryStrategy()).data)
    return base64.b64decode(bundle.secret_bundle_content.content).decode()


def read_ca(ocid: str) -> str:
    """The certificate of the stack's certificate authority (OCI Certificates), read the same way."""
    import oci

    bundle = _read("the servers' CA certificate", ocid, "read certificate-authority-bundles", lambda: _client(
        oci.certificates.CertificatesClient, "MLFLOW_OCI_CERTIFICATES_ENDPOINT").get_certificate_authority_bundle(
        ocid, retry_strategy=oci.retry.NoneRetryStrategy()).data)
    return bundle.certificate_pem.strip() + "\n"


def __getattr__(name: str):
    """`from mlflow_connect import mlflow_server` connects once, when a notebook first asks for it."""
    if name == "mlflow_server":
        globals()["mlflow_server"] = connect()
        return globals()["mlflow_server"]
    raise AttributeError(f"module 'mlflow_connect' has no attribute {name!r}")


def _basic_auth(username: str) -> str:
    token = base64.b64encode(f"{username}:{os.environ['MLFLOW_TRACKING_PASSWORD']}".encode()).decode()
    return f"Basic {token}"


def _tls_context() -> ssl.SSLContext:
    """Verifies with the deployment's CA when one is set, with the system's CAs otherwise."""
    return ssl.create_default_context(cafile=os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or None)


def check_certificate(uri: str, timeout: float = 10) -> None:
    """With no CA set: the server's certificate must verify with the system's CAs, or one error says what to
    set. A server that cannot be reached now is left to MLflow's first call to report."""
    url = urllib.parse.urlsplit(uri)
    if url.scheme != "https" or not url.hostname:
        return
    try:
        with socket.create_connection((url.hostname, url.port or 443), timeout=timeout) as raw, \
                _tls_context().wrap_socket(raw, server_hostname=url.hostname):
            return
    except ssl.SSLCertVerificationError as exc:
        raise ConnectError(
            f"the certificate of {uri} does not verify with this system's CAs ({exc.verify_message}): set "
            "MLFLOW_TRACKING_CA_OCID to the stack's output tls_ca_id (read with OCI Certificates), or "
            "MLFLOW_TRACKING_SERVER_CERT_PATH to the CA certificate its output tls_ca_command saves") from None
    except OSError:
        return
