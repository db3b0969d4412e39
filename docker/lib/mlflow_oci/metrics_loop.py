"""The metrics pass in a loop, for OKE's pods (oke/base/metrics.yaml, proxy.yaml): `python3 -m mlflow_oci.metrics
--every SECONDS` runs a pass every SECONDS until stopped, a pass OCI refused logged and not fatal, and
  --prometheus-port PORT   serves the last pass on GET /metrics in Prometheus's text format (0.0.4): the same names
                           with `_` for `.` (mlflow_runs), the dimensions as labels; 503 before the first pass and
                           once the last is STALE_PASSES periods old, so the pod's probes see a stuck loop;
  --requests-syslog PORT   makes each pass of nginx's request log alone, received as syslog datagrams on
                           127.0.0.1:PORT (render.sh's PROXY_REQUEST_LOG=syslog:server=127.0.0.1:PORT).
"""
from __future__ import annotations

import collections
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STALE_PASSES = 5


class SyslogIntake:
    """nginx's request log as syslog datagrams on 127.0.0.1:PORT (`access_log syslog:server=…`), kept until the next
    pass takes them. UDP: nginx never waits for this reader, and a line it drops while the sidecar restarts is one
    request fewer in a minute. At most MAX_LINES_A_PASS lines are kept, the newest."""

    MAX_LINES_A_PASS = 200_000

    def __init__(self, port: int):
        self.lines = collections.deque(maxlen=self.MAX_LINES_A_PASS)
        self.lock = threading.Lock()
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", port))
        threading.Thread(target=self._receive, daemon=True).start()

    def _receive(self) -> None:
        while True:
            datagram = self.socket.recv(65535).decode("utf-8", errors="replace")
            start = datagram.find("{")  # after the syslog header: <PRI>TIMESTAMP TAG:
            if start >= 0:
                with self.lock:
                    self.lines.append(datagram[start:])

    def take(self) -> list[str]:
        with self.lock:
            taken = list(self.lines)
            self.lines.clear()
        return taken


# ------------------------------------------------------------------------------------------------- Prometheus
def _label(value) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def exposition(samples, deployment: str, role: str) -> str:
    """Prometheus's text format (0.0.4): one gauge per name, a line per dimension set."""
    lines, typed = [], set()
    for sample in samples:
        name = sample.name.replace(".", "_")
        if name not in typed:
            typed.add(name)
            lines.append(f"# TYPE {name} gauge")
        labels = {"deployment": deployment, "role": role, **sample.dimensions}
        text = ",".join(f'{key}="{_label(value)}"' for key, value in labels.items())
        lines.append(f"{name}{{{text}}} {float(sample.value):g}")
    return "\n".join(lines) + "\n"


class Exposition:
    """The last pass's values on GET /metrics; 503 before the first pass and when the last one is older than
    `stale_after` seconds (a pass stuck on a database that does not answer: the pod's probes see it)."""

    def __init__(self, port: int, stale_after: float):
        latest = self
        self.text, self.when, self.stale_after = None, 0.0, stale_after

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                fresh = latest.text is not None and time.monotonic() - latest.when <= latest.stale_after
                code = 404 if self.path.split("?")[0] != "/metrics" else 200 if fresh else 503
                body = latest.text.encode() if code == 200 else b""
                self.send_response(code)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # Prometheus scrapes every few seconds: no line each
                pass

        self.server = ThreadingHTTPServer(("0.0.0.0", port), Handler)  # noqa: S104 - the pod's own address
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def show(self, text: str) -> None:
        self.text, self.when = text, time.monotonic()


def run(env, args, one_pass):
    """Passes until stopped; `one_pass(env, args, request_lines, show)` is mlflow_oci.metrics'."""
    exposed = Exposition(args.prometheus_port, STALE_PASSES * args.every) if args.prometheus_port is not None else None
    intake = SyslogIntake(args.requests_syslog) if args.requests_syslog is not None else None

    def show(samples) -> None:
        exposed.show(exposition(samples, env["MLFLOW_METRICS_DEPLOYMENT"], args.role))

    while True:
        started = time.monotonic()
        if one_pass(env, args, intake.take() if intake else None, show if exposed else None):
            print("metrics: this pass was not posted in full; the next one follows", file=sys.stderr, flush=True)
        time.sleep(max(1.0, args.every - (time.monotonic() - started)))
