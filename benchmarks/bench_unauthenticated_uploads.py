"""Memory of the tracking server while strangers send it large bodies without a login: 20 uploads of
256 MB (half as API calls, half as artifact uploads) through the auth proxy, as a tracking VM with MLflow's
own users runs it (PROXY_AUTH=upstream), and, for contrast, one such body sent to MLflow directly.
Target: the server's memory stays within 50 MB of where it started.

    .venv/bin/python benchmarks/bench_unauthenticated_uploads.py [--uploads 20] [--megabytes 256]
"""
import argparse
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
import urllib3
from bench_runtime_common import REPO_ROOT, free_port, processes, tree_memory_kib

from orm_pack.local import credentials, nginx
from orm_pack.local.runtime_files import RuntimeFiles
from orm_pack.local.services import TrackingConfig, tracking_argv, tracking_env

ADMIN = credentials.Credentials("admin", "bench-admin-password-1")
MIB = 1 << 20


class Body:
    """`size` bytes with a known length, made as they are sent."""

    def __init__(self, size: int):
        self.size = self.left = size

    def __len__(self):
        return self.size

    def read(self, amount: int = -1) -> bytes:
        amount = self.left if amount is None or amount < 0 else min(amount, self.left)
        self.left -= amount
        return b"x" * amount


def send(method: str, url: str, size: int) -> str:
    try:
        answer = requests.request(method, url, data=Body(size), verify=False, timeout=300,
                                  headers={"Content-Type": "application/json"})
        return str(answer.status_code)
    except requests.ConnectionError:
        return "closed"  # nginx answered and closed before the whole body was sent


class PeakMemory:
    """Samples a process tree's RSS every 0.1 s while in use."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0, threading.Event()

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_memory_kib(self.pid)[0])
            time.sleep(0.1)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uploads", type=int, default=20)
    parser.add_argument("--megabytes", type=int, default=256)
    args = parser.parse_args()
    urllib3.disable_warnings()
    runtime = RuntimeFiles(REPO_ROOT)
    size = args.megabytes * MIB
    with tempfile.TemporaryDirectory(prefix="bench-uploads-") as tmp:
        work = Path(tmp)
        port = free_port()
        config = TrackingConfig(
            port=port, artifacts_destination=str(work / "artifacts"), backend_store_uri=f"sqlite:///{work}/mlflow.db",
            extra_env=(("MLFLOW_AUTH", "mlflow"), ("MLFLOW_AUTH_ADMIN_USERNAME", ADMIN.username),
                       ("MLFLOW_AUTH_ADMIN_PASSWORD", ADMIN.password),
                       ("MLFLOW_FLASK_SERVER_SECRET_KEY", "bench-session-key-of-thirty-chars!"),
                       ("MLFLOW_AUTH_DATABASE_URI", f"sqlite:///{work}/auth.db"), ("HOME", str(work)),
                       ("TMPDIR", str(work))))
        tracking = processes.start("tracking", tracking_argv(runtime), tracking_env(config), work / "tracking.log")
        proxy = None
        try:
            processes.wait_ready(tracking, f"http://127.0.0.1:{port}/health", 300)
            listen = free_port()
            block = nginx.render_proxy(runtime, work / "proxy.conf", listen=f"127.0.0.1:{listen}",
                                       upstream=f"127.0.0.1:{port}", htpasswd=work / "htpasswd",
                                       tls_cert=work / "tls.crt", tls_key=work / "tls.key", auth="upstream")
            conf = nginx.write_main_conf(work / "nginx", [block])
            proxy = processes.start("proxy", nginx.nginx_argv(nginx.require_nginx(), conf), {}, work / "nginx.log")
            url = f"https://127.0.0.1:{listen}"
            processes.wait_ready(proxy, f"{url}/health", 30, accept=(200,))
            time.sleep(2)
            before = tree_memory_kib(tracking.pid)[0]
            targets = [("POST", f"{url}/api/2.0/mlflow/runs/create") if i % 2 == 0 else
                       ("PUT", f"{url}/api/2.0/mlflow-artifacts/artifacts/0/x/artifacts/big-{i}.bin")
                       for i in range(args.uploads)]
            started = time.monotonic()
            with PeakMemory(tracking.pid) as peak, ThreadPoolExecutor(4) as pool:
                answers = list(pool.map(lambda target: send(*target, size), targets))
            seconds = time.monotonic() - started
            after = tree_memory_kib(tracking.pid)[0]
            print(f"through the proxy: {args.uploads} unauthenticated uploads of {args.megabytes} MB in {seconds:.1f} s,"
                  f" answers {sorted(set(answers))}")
            print(f"  tracking server RSS: {before / 1024:.0f} MB before, peak {peak.peak / 1024:.0f} MB "
                  f"(+{(peak.peak - before) / 1024:.0f} MB), {after / 1024:.0f} MB after")

            before = tree_memory_kib(tracking.pid)[0]
            with PeakMemory(tracking.pid) as peak:
                answer = send("POST", f"http://127.0.0.1:{port}/api/2.0/mlflow/runs/create", size)
            print(f"straight to MLflow, for contrast: one {args.megabytes} MB body, answer {answer}; "
                  f"RSS {before / 1024:.0f} MB before, peak {peak.peak / 1024:.0f} MB (+{(peak.peak - before) / 1024:.0f} MB)")
        finally:
            if proxy is not None:
                processes.stop(proxy.pid)
            processes.stop(tracking.pid)


if __name__ == "__main__":
    main()
