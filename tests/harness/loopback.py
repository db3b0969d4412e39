"""HTTP on the loopback interface for tests: serve a handler in the background, wait for a URL."""
import ssl
import threading
import time
import urllib.request
from http.server import ThreadingHTTPServer


class _Server(ThreadingHTTPServer):
    # The servers these stand in for queue bursts of connections (uvicorn listens with a backlog of
    # 2048); socketserver's default of 5 refuses some of a burst on a busy machine.
    request_queue_size = 128


def serve(handler, port: int = 0) -> ThreadingHTTPServer:
    """Serves `handler` on 127.0.0.1:`port` (0: any free port) from a daemon thread; stop() ends it."""
    server = _Server(("127.0.0.1", port), handler)
    server.daemon_threads = True
    # A short poll lets stop() return at once instead of after serve_forever's default 0.5 s.
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def stop(server: ThreadingHTTPServer) -> None:
    server.shutdown()
    server.server_close()


def wait_healthy(url: str, seconds: float = 300) -> int:
    """The status of the first answer from `url` (a self-signed certificate is fine), retrying
    connection errors for up to `seconds`."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, context=context, timeout=5) as response:
                return response.status
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
