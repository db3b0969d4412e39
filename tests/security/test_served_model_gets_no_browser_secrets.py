"""The code of a served model gets nothing a person's browser holds: the serving proxy passes no Cookie
(browsers send a host's cookies to every port of it, the tracking server's session cookie too), no Origin
and no login to the model server, whichever way the endpoint checks logins. Driven as a browser would,
through the real nginx with the project's template, in front of an upstream that records what reaches it.
"""
import base64
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from dataplane.servers import ProcessTracker
from dataplane.stacks import start_proxy
from orm_pack.local import credentials

pytestmark = [pytest.mark.dataplane, pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")]

LOGIN = credentials.Credentials("mlflow", "correct-horse-battery")


class RecordingServer:
    """127.0.0.1 HTTP server answering 200 to everything and keeping each request's headers."""

    def __init__(self):
        self.seen: list[dict] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                recorder.seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def tracker():
    tracker = ProcessTracker()
    yield tracker
    tracker.stop_all()


@pytest.mark.parametrize("auth", ["proxy", "tracking"])
def test_a_served_model_gets_no_cookie_origin_or_login(tracker, tmp_path, auth):
    model, tracking = RecordingServer(), RecordingServer()  # the model server; the tracking server that says yes
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
            basic = "Basic " + base64.b64encode(f"{LOGIN.username}:{LOGIN.password}".encode()).decode()
            assert [seen["authorization"] for seen in tracking.seen] == [basic]
    finally:
        model.close()
        tracking.close()
