"""The proxy's request log (docker/nginx/mlflow-proxy.conf.template, PROXY_REQUEST_LOG) as nginx really writes it,
read by the metrics pass (docker/lib/mlflow_oci/metrics.py): route groups, statuses, latency, failed and throttled
logins, and nothing of a secret. The upstream is a stand-in whose answers the test chooses (a 5xx, a slow call)."""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from ocifakes.server import InstanceCloud

from dataplane.stacks import start_proxy
from dataplane.trust import CA_FILE
from harness import metrics_run
from orm_pack.local import credentials

pytestmark = pytest.mark.dataplane

SLOW_SECONDS = 0.3


class _Upstream(BaseHTTPRequestHandler):
    """200 to everything, but /api/2.0/mlflow/fail (500) and /api/2.0/mlflow/slow (after SLOW_SECONDS)."""
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path.startswith("/api/2.0/mlflow/slow"):
            time.sleep(SLOW_SECONDS)
        status = 500 if self.path.startswith("/api/2.0/mlflow/fail") else 200
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def proxied(tracker, tmp_path_factory):
    """(proxy URL, its login, its request log)."""
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    workdir = tmp_path_factory.mktemp("request-log")
    login = credentials.generate()
    proxy, url = start_proxy(tracker, workdir, upstream.server_port, login)
    yield url, login, workdir / "requests.log"
    tracker.stop(proxy)
    upstream.shutdown()
    upstream.server_close()


def test_the_metrics_pass_counts_what_the_proxy_answered(proxied, tmp_path):
    url, login, log = proxied
    start = log.stat().st_size  # the proxy's start waited for /health
    seen = []

    def get(path, auth=(login.username, login.password)):
        answer = requests.get(f"{url}{path}?token=a-query-secret", auth=auth, verify=CA_FILE, timeout=30)
        seen.append(answer.status_code)
        return answer.status_code

    for _ in range(8):
        get("/api/2.0/mlflow/experiments/search")
    for _ in range(3):
        get("/api/2.0/mlflow/fail")
    get("/api/2.0/mlflow/slow")
    get("/ajax-api/2.0/mlflow-artifacts/artifacts/model/MLmodel")
    get("/get-artifact")
    get("/#/experiments/0")
    get("/health", auth=None)
    assert get("/api/2.0/mlflow/experiments/search", auth=None) == 401  # a first challenge, not a failed login
    wrong = [get("/api/2.0/mlflow/experiments/search", auth=(login.username, "not-the-password")) for _ in range(14)]
    assert set(wrong) == {401, 429} and wrong[0] == 401  # the failed-login limit set in

    text = log.read_bytes()[start:].decode()
    (tmp_path / "since.log").write_text(text)
    lines = text.splitlines()
    assert len(lines) == len(seen)
    assert login.password not in text and "a-query-secret" not in text and "not-the-password" not in text
    assert {json.loads(line)["route"] for line in lines} == {"api", "artifacts", "ui", "health"}

    cloud = InstanceCloud().start()
    try:
        cloud.grants[cloud.instance.instance_ocid].metric_namespaces.add("mlflow")
        with metrics_run.health_endpoint() as healthy:
            result = metrics_run.post(cloud, metrics_run.fill(tmp_path), healthy, args=["--requests", str(tmp_path / "since.log")])
        assert result.returncode == 0, result.stderr
        values = {(m["name"], m["dimensions"].get("route"), m["dimensions"].get("status")): m["datapoints"][0]["value"]
                  for m in cloud.metrics}
    finally:
        cloud.stop()
    api_answers = 8 + 3 + 1 + 1 + len(wrong)
    assert values[("mlflow.requests", "api", "5xx")] == 3
    assert values[("mlflow.requests", "api", "2xx")] == 9
    assert values[("mlflow.requests", "api", "4xx")] == 1 + len(wrong)
    assert values[("mlflow.requests", "artifacts", "2xx")] == 2 and values[("mlflow.requests", "ui", "2xx")] == 1
    assert values[("mlflow.server_error_percent", "api", None)] == round(100 * 3 / api_answers, 2)
    assert values[("mlflow.latency_p99_ms", "api", None)] >= 1000 * SLOW_SECONDS
    assert values[("mlflow.latency_p50_ms", "api", None)] < 1000 * SLOW_SECONDS
    assert values[("mlflow.login_failures", None, None)] == wrong.count(401)
    assert values[("mlflow.login_throttled", None, None)] == wrong.count(429)
