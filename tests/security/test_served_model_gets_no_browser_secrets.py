"""The code of a served model gets nothing a person's browser holds: the serving proxy passes no Cookie
(browsers send a host's cookies to every port of it, the tracking server's session cookie too), no Origin
and no login to the model server, whichever way the endpoint checks logins. Driven as a browser would,
through the real nginx with the project's template, in front of an upstream that records what reaches it.
"""
import base64

import pytest
import requests

from dataplane.servers import ProcessTracker
from dataplane.stacks import start_proxy
from orm_pack.local import credentials
from security.recording import RecordingServer

pytestmark = [pytest.mark.dataplane, pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")]

LOGIN = credentials.Credentials("mlflow", "correct-horse-battery")


@pytest.fixture
def tracker():
    tracker = ProcessTracker()
    yield tracker
    tracker.stop_all()


@pytest.mark.parametrize("auth", ["proxy", "tracking"])
def test_a_served_model_gets_no_cookie_origin_or_login(tracker, tmp_path, auth):
    basic = "Basic " + base64.b64encode(f"{LOGIN.username}:{LOGIN.password}".encode()).decode()
    model, tracking = RecordingServer(), RecordingServer(good_login=basic)  # the model; the server that says yes
    try:
        _, url = start_proxy(tracker, tmp_path / "proxy", model.port, LOGIN, auth=auth,
                             auth_url=f"http://127.0.0.1:{tracking.port}", fronts="serving")
        answer = requests.post(f"{url}/invocations", json={"inputs": [[1.0]]}, auth=(LOGIN.username, LOGIN.password),
                               headers={"Origin": url, "Cookie": "mlflow_oidc_session=a-signed-session; other=1"},
                               verify=False, timeout=30)
        assert answer.status_code == 200, answer.text
        calls = [seen for seen in model.seen if seen["path"] == "/invocations"]
        assert len(calls) == 1
        assert not {"cookie", "origin", "authorization"} & set(calls[0]), calls[0]
        if auth == "tracking":  # the tracking server, which checks the login, still gets it
            assert [seen["authorization"] for seen in tracking.seen] == [basic]
    finally:
        model.close()
        tracking.close()
