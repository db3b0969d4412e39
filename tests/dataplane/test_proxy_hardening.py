"""The auth proxy in front of a real MLflow server: writes from the page's own origin reach MLflow
(which on its own refuses them), writes from any other origin do not; modern TLS only, no version in
the Server header, the security headers once each, and a budget for failed logins per client."""
import os
import socket
import ssl
import sys
import time

import pytest
import requests

from dataplane.stacks import start_proxy
from dataplane.trust import CA_FILE
from orm_pack.local import credentials

pytestmark = [pytest.mark.dataplane, pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")]

CREATE = "/api/2.0/mlflow/experiments/create"
# The tracking fixture's MLflow accepts this Host (as a VM's accepts its public address).
PUBLIC_NAME = "mlflow.example.test"


def _create(url: str, name: str, login=None, **headers):
    return requests.post(url + CREATE, json={"name": name}, headers=headers, verify=CA_FILE, timeout=30,
                         auth=(login.username, login.password) if login else None)


def test_mlflow_alone_refuses_a_browser_write_from_its_public_address(tracking_stack):
    """The rule the proxy works around (MLflow 3: security_utils.should_block_cors_request)."""
    answer = _create(tracking_stack.direct_url, "refused-direct", Host=PUBLIC_NAME, Origin=f"https://{PUBLIC_NAME}")
    assert answer.status_code == 403 and "Cross-origin request blocked" in answer.text


def test_a_write_from_the_pages_own_origin_goes_through_the_proxy(tracking_stack):
    answer = _create(tracking_stack.url, "same-origin-write", tracking_stack.login, Host=PUBLIC_NAME,
                     Origin=f"https://{PUBLIC_NAME}")
    assert answer.status_code == 200, answer.text
    assert answer.json()["experiment_id"]


@pytest.mark.parametrize("origin", ["https://evil.example", "null", f"http://{PUBLIC_NAME}",
                                    f"https://{PUBLIC_NAME}:8443", f"https://{PUBLIC_NAME}.evil.example"])
def test_a_write_from_any_other_origin_is_refused(tracking_stack, origin):
    answer = _create(tracking_stack.url, "cross-origin-write", tracking_stack.login, Host=PUBLIC_NAME, Origin=origin)
    assert answer.status_code == 403
    assert answer.text.startswith("Cross-origin request blocked")


def test_reads_from_other_origins_get_no_cors_grant(tracking_stack):
    answer = requests.get(tracking_stack.url + "/api/2.0/mlflow/experiments/search?max_results=1", verify=CA_FILE,
                          auth=(tracking_stack.login.username, tracking_stack.login.password),
                          headers={"Origin": "https://evil.example"}, timeout=30)
    assert answer.status_code == 200
    assert "Access-Control-Allow-Origin" not in answer.headers


def _handshake(url: str, ciphers: str | None = None, version=None) -> str:
    host, port = url.removeprefix("https://").split(":")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if ciphers:
        context.set_ciphers(ciphers)
    if version:
        context.minimum_version = context.maximum_version = version
    with socket.create_connection((host, int(port)), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=host) as tls:
        return f"{tls.version()} {tls.cipher()[0]}"


def test_tls_is_modern_only(tracking_stack):
    assert _handshake(tracking_stack.url).startswith("TLSv1.3")
    assert "GCM" in _handshake(tracking_stack.url, version=ssl.TLSVersion.TLSv1_2)
    for ciphers in ("AES128-SHA", "ECDHE-RSA-AES128-SHA", "AES256-SHA256"):  # CBC and non-forward-secret suites
        with pytest.raises(ssl.SSLError):
            _handshake(tracking_stack.url, ciphers=f"{ciphers}:@SECLEVEL=0", version=ssl.TLSVersion.TLSv1_2)


def test_one_set_of_security_headers_and_no_version(tracking_stack):
    answer = requests.get(tracking_stack.url + "/", verify=CA_FILE, timeout=30,
                          auth=(tracking_stack.login.username, tracking_stack.login.password))
    assert answer.status_code == 200
    raw = answer.raw.headers
    assert raw.getlist("Server") == ["nginx"]
    assert raw.getlist("Strict-Transport-Security") == ["max-age=31536000"]
    assert raw.getlist("X-Content-Type-Options") == ["nosniff"]
    assert raw.getlist("X-Frame-Options") == ["SAMEORIGIN"]
    assert raw.getlist("Content-Security-Policy") == ["frame-ancestors 'self'"]
    assert raw.getlist("Referrer-Policy") == ["same-origin"]


def test_health_is_get_only(tracking_stack):
    assert requests.get(tracking_stack.url + "/health", verify=CA_FILE, timeout=30).status_code == 200
    posted = requests.post(tracking_stack.url + "/health", data=b"{}", verify=CA_FILE, timeout=30)
    assert posted.status_code == 405 and posted.headers["Allow"] == "GET, HEAD"
    big = requests.get(tracking_stack.url + "/health", data=b"x" * 4096, verify=CA_FILE, timeout=30)
    assert big.status_code == 413


def test_failed_logins_are_limited_per_client(tracker, tracking_stack, tmp_path):
    """A proxy of its own: its budget of failed logins is not shared with the other tests."""
    login = credentials.generate("limited")
    proxy, url = start_proxy(tracker, tmp_path / "proxy", int(tracking_stack.direct_url.rsplit(":", 1)[1]), login)
    try:
        session = requests.Session()
        answers = [session.get(url + "/", auth=(login.username, "wrong-password-1"), verify=CA_FILE, timeout=30)
                   for _ in range(14)]
        codes = [a.status_code for a in answers]
        assert codes[:10] == [401] * 10 and codes[-1] == 429, codes
        assert all(a.headers.get("WWW-Authenticate") == 'Basic realm="MLflow"' for a in answers[:10])
        right = session.get(url + "/health", verify=CA_FILE, timeout=30)
        assert right.status_code == 200
        assert session.get(url + "/", auth=(login.username, login.password), verify=CA_FILE, timeout=30).status_code == 200
    finally:
        tracker.stop(proxy)


# --- The serving proxy verifies the tracking server it asks (PROXY_AUTH_TLS_CA, set on the serving VM) ---

TRACKING_STAND_IN = r"""
import http.server, ssl, sys
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # any login is a user: what is under test is whether nginx asks at all
        self.send_response(200 if self.path.startswith("/api/2.0/mlflow/users/current") else 404)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")
server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[2], sys.argv[3])
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
"""


def _certificate(subject: str, key, issuer: str, issuer_key, ca: bool, path_prefix, san: str | None = None):
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(san or subject))]),
                                        critical=False)
    certificate = builder.sign(issuer_key, hashes.SHA256())
    cert_file, key_file = path_prefix.with_suffix(".crt"), path_prefix.with_suffix(".key")
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


@pytest.fixture(scope="module")
def stack_ca(tmp_path_factory):
    """The stack's CA (as OCI Certificates issues them: the tracking certificate names the private IP, here
    127.0.0.1, in its common name and an IP SAN), and a stand-in with the same names that another CA signed."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    directory = tmp_path_factory.mktemp("stack-ca")
    new_key = lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)  # noqa: E731
    ca_key, other_key = new_key(), new_key()
    ca_file, _ = _certificate("MLflow test CA", ca_key, "MLflow test CA", ca_key, True, directory / "ca")
    leaf_key = new_key()
    good = _certificate("127.0.0.1", leaf_key, "MLflow test CA", ca_key, False, directory / "tracking")
    # the same names and the same issuer name, signed by another key: it does not chain to the CA
    rogue = _certificate("127.0.0.1", leaf_key, "MLflow test CA", other_key, False, directory / "rogue")
    # from the CA, for 127.0.0.1 as an IP SAN alone: nginx checks proxy_ssl_name against DNS names and the
    # common name only, so the stack's certificates carry the private IP as their common name too
    san_only = _certificate("MLflow tracking", leaf_key, "MLflow test CA", ca_key, False, directory / "san-only",
                            san="127.0.0.1")
    return ca_file, {"good": good, "rogue": rogue, "san-only": san_only}


@pytest.mark.parametrize("tracking_certificate, expected", [("good", 200), ("rogue", 500), ("san-only", 500)])
def test_the_serving_proxy_asks_only_a_tracking_server_whose_certificate_chains_to_the_ca(
        tracker, tmp_path, monkeypatch, stack_ca, tracking_certificate, expected):
    """With the CA's certificate (PROXY_AUTH_TLS_CA) the serving proxy's login check reaches the tracking
    server only when its certificate chains to the CA: a stand-in with another CA's certificate never sees the
    caller's password, and the call is refused."""
    from dataplane.stacks import serving_proxy_asking
    from orm_pack.local.ports import free_port

    ca_file, certificates = stack_ca
    cert, key = certificates[tracking_certificate]
    port = free_port()
    stand_in = tracker.start("tracking-stand-in", [sys.executable, "-c", TRACKING_STAND_IN, str(port), str(cert), str(key)],
                             dict(os.environ), tmp_path / "stand-in.log")
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline and stand_in.alive(), (tmp_path / "stand-in.log").read_text()
            time.sleep(0.1)
    monkeypatch.setenv("PROXY_AUTH_TLS_CA", str(ca_file))
    login = credentials.Credentials("alice", "a-password-of-alice")
    with serving_proxy_asking(tracker, tmp_path, f"https://127.0.0.1:{port}", login) as url:
        answer = requests.get(url + "/invocations", auth=("alice", "a-password-of-alice"), verify=CA_FILE, timeout=30)
    assert answer.status_code == expected, answer.text
    if expected == 200:
        assert answer.text == "a prediction\n"
    else:
        log = (tmp_path / "serving-proxy" / "error.log").read_text()
        assert ("upstream SSL certificate verify error" in log if tracking_certificate == "rogue"
                else "upstream SSL certificate does not match" in log), log
    tracker.stop(stand_in)
