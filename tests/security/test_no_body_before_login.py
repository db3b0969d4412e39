"""Nobody streams a body into MLflow without a login: MLflow reads a request's whole body (and copies it)
before it checks the login, so the auth proxy caps bodies (PROXY_MAX_BODY_MB, 64 MiB by default: 413
beyond), and lets artifact uploads, which may be of any size, through only after the login is checked.
Driven as an attacker would, through the real nginx with the project's template, in both of the tracking
VM's login modes (the proxy's one login; MLflow's own users, asked without the body), in front of a
stand-in for MLflow that records what reaches it."""
import base64

import pytest
import requests

from dataplane.servers import ProcessTracker
from dataplane.stacks import start_proxy
from orm_pack.local import credentials
from security.recording import CURRENT_USER, RecordingServer

pytestmark = [pytest.mark.dataplane, pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")]

LOGIN = credentials.Credentials("mlflow", "correct-horse-battery")
GOOD = (LOGIN.username, LOGIN.password)
BAD = (LOGIN.username, "a guess")
MIB = 1 << 20
ARTIFACT = "/api/2.0/mlflow-artifacts/artifacts/1/run/artifacts/model/model.pkl"


class _Body:
    """`size` bytes with a known length, read as they are sent (the test never holds the whole body)."""

    def __init__(self, size: int):
        self.left = size
        self.size = size

    def __len__(self):
        return self.size

    def read(self, amount: int = -1) -> bytes:
        amount = self.left if amount is None or amount < 0 else min(amount, self.left)
        self.left -= amount
        return b"x" * amount


def _send(method: str, url: str, size: int, auth) -> int:
    try:
        return requests.request(method, url, data=_Body(size), auth=auth, verify=False, timeout=120,
                                headers={"Content-Type": "application/json"}).status_code
    except requests.ConnectionError:  # nginx may answer 413 and close before the body is all sent
        return 413


@pytest.fixture
def site(tracker, tmp_path, request):
    basic = "Basic " + base64.b64encode(f"{LOGIN.username}:{LOGIN.password}".encode()).decode()
    mlflow = RecordingServer(good_login=basic)
    _, url = start_proxy(tracker, tmp_path / "proxy", mlflow.port, LOGIN, auth=request.param)
    yield url, mlflow
    mlflow.close()


@pytest.fixture
def tracker():
    tracker = ProcessTracker()
    yield tracker
    tracker.stop_all()


@pytest.mark.parametrize("site", ["proxy", "upstream"], indirect=True)
def test_an_unauthenticated_256_mb_body_never_reaches_mlflow(site):
    url, mlflow = site
    assert _send("POST", f"{url}/api/2.0/mlflow/runs/create", 256 * MIB, None) == 413
    assert _send("POST", f"{url}/api/2.0/mlflow/runs/create", 256 * MIB, BAD) == 413
    assert _send("PUT", f"{url}{ARTIFACT}", 256 * MIB, None) == 401
    assert _send("PUT", f"{url}{ARTIFACT}", 256 * MIB, BAD) == 401
    assert mlflow.requests_to("/api/2.0/mlflow/runs") == [] and mlflow.requests_to("/api/2.0/mlflow-artifacts") == []
    # with MLflow's own users, the login check reached MLflow without the body
    assert all(seen["body_bytes"] == 0 for seen in mlflow.requests_to(CURRENT_USER))


@pytest.mark.parametrize("site", ["proxy", "upstream"], indirect=True)
def test_a_signed_in_user_uploads_artifacts_of_any_size_and_api_bodies_up_to_the_cap(site):
    url, mlflow = site
    assert _send("PUT", f"{url}{ARTIFACT}", 100 * MIB, GOOD) == 200
    assert [seen["body_bytes"] for seen in mlflow.requests_to("/api/2.0/mlflow-artifacts")] == [100 * MIB]
    assert _send("POST", f"{url}/api/2.0/mlflow/runs/log-batch", 8 * MIB, GOOD) == 200
    assert _send("POST", f"{url}/api/2.0/mlflow/runs/log-batch", 65 * MIB, GOOD) == 413
    assert [seen["body_bytes"] for seen in mlflow.requests_to("/api/2.0/mlflow/runs")] == [8 * MIB]
