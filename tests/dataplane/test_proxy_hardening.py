"""The auth proxy in front of a real MLflow server: writes from the page's own origin reach MLflow
(which on its own refuses them), writes from any other origin do not; modern TLS only, no version in
the Server header, the security headers once each, and a budget for failed logins per client."""
import socket
import ssl

import pytest
import requests

from dataplane.stacks import start_proxy
from orm_pack.local import credentials

pytestmark = [pytest.mark.dataplane, pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")]

CREATE = "/api/2.0/mlflow/experiments/create"
# The tracking fixture's MLflow accepts this Host (as a VM's accepts its public address).
PUBLIC_NAME = "mlflow.example.test"


def _create(url: str, name: str, login=None, **headers):
    return requests.post(url + CREATE, json={"name": name}, headers=headers, verify=False, timeout=30,
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
    answer = requests.get(tracking_stack.url + "/api/2.0/mlflow/experiments/search?max_results=1", verify=False,
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
    answer = requests.get(tracking_stack.url + "/", verify=False, timeout=30,
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
    assert requests.get(tracking_stack.url + "/health", verify=False, timeout=30).status_code == 200
    posted = requests.post(tracking_stack.url + "/health", data=b"{}", verify=False, timeout=30)
    assert posted.status_code == 405 and posted.headers["Allow"] == "GET, HEAD"
    big = requests.get(tracking_stack.url + "/health", data=b"x" * 4096, verify=False, timeout=30)
    assert big.status_code == 413


def test_failed_logins_are_limited_per_client(tracker, tracking_stack, tmp_path):
    """A proxy of its own: its budget of failed logins is not shared with the other tests."""
    login = credentials.generate("limited")
    proxy, url = start_proxy(tracker, tmp_path / "proxy", int(tracking_stack.direct_url.rsplit(":", 1)[1]), login)
    try:
        session = requests.Session()
        answers = [session.get(url + "/", auth=(login.username, "wrong-password-1"), verify=False, timeout=30)
                   for _ in range(14)]
        codes = [a.status_code for a in answers]
        assert codes[:10] == [401] * 10 and codes[-1] == 429, codes
        assert all(a.headers.get("WWW-Authenticate") == 'Basic realm="MLflow"' for a in answers[:10])
        right = session.get(url + "/health", verify=False, timeout=30)
        assert right.status_code == 200
        assert session.get(url + "/", auth=(login.username, login.password), verify=False, timeout=30).status_code == 200
    finally:
        tracker.stop(proxy)
