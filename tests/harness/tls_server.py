"""A loopback HTTPS server for the tests of what clients verify: it presents the certificate and key a test
gives; /health answers 200, the users API an empty list with a login (and 401 without one)."""
import contextlib
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import serialization


class _Handler(BaseHTTPRequestHandler):
    """/health answers 200, the users API an empty list with the login (and 401 without one)."""

    def do_GET(self):  # noqa: N802
        if self.path == "/health":
            body, status = b"OK", 200
        elif not self.headers.get("Authorization"):
            body, status = b"Login required", 401
        else:
            body, status = json.dumps({"users": [{"username": "mlflow", "is_admin": True}]}).encode(), 200
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def tls_server(tmp_path, cert, key):
    cert_file, key_file = tmp_path / "server.pem", tmp_path / "server-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)  # a refused handshake ends in accept()
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
