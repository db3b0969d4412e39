"""A stand-in for MLflow or a model server behind the auth proxy: a 127.0.0.1 HTTP server that keeps what
reached it (each request's path, headers and body size). Its /api/2.0/mlflow/users/current answers 200 to
the one `good_login` (an Authorization header value) and 401 to anything else, as MLflow's does."""
from http.server import BaseHTTPRequestHandler

from harness import loopback

CURRENT_USER = "/api/2.0/mlflow/users/current"


class RecordingServer:
    def __init__(self, good_login: str | None = None):
        self.seen: list[dict] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self):
                received = 0
                length = int(self.headers.get("Content-Length") or 0)
                while received < length:
                    chunk = self.rfile.read(min(1 << 20, length - received))
                    if not chunk:
                        break
                    received += len(chunk)
                recorder.seen.append({"method": self.command, "path": self.path, "body_bytes": received,
                                      **{k.lower(): v for k, v in self.headers.items()}})
                refused = self.path == CURRENT_USER and self.headers.get("Authorization") != good_login
                self.send_response(401 if refused else 200)
                if refused:
                    self.send_header("WWW-Authenticate", 'Basic realm="mlflow"')
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            do_GET = do_POST = do_PUT = _answer

            def log_message(self, *args):
                pass

        self.server = loopback.serve(Handler)
        self.port = self.server.server_address[1]

    def requests_to(self, prefix: str) -> list[dict]:
        return [seen for seen in self.seen if seen["path"].startswith(prefix)]

    def close(self):
        loopback.stop(self.server)
