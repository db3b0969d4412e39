"""The tracking VM's metrics pass (docker/lib/mlflow_oci/metrics.py) run as its timer runs it, against a fake of OCI
Monitoring (tests/ocifakes), on an MLflow database this module fills."""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

LIB = Path(__file__).resolve().parents[2] / "docker" / "lib"
COMPARTMENT = "ocid1.compartment.oc1..aaaaaaaa3a5v7wcfmtcuqkx6owozoyddmkvggpmlxpy7rkbkwpjqndjwuoxq"


def fill(path: Path, uri: str | None = None) -> str:
    """An MLflow database (SQLite in `path` unless `uri` names another, e.g. MySQL's): 2 active experiments (with
    Default) and 1 deleted, 3 runs of which 1 deleted, 1 registered model with 2 versions, its alias `champion` on
    version 2. Its URI."""
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    uri = uri or f"sqlite:///{path / 'mlflow.db'}"
    store, registry = SqlAlchemyStore(uri, str(path / "artifacts")), RegistryStore(uri)
    try:
        kept, gone = store.create_experiment("kept"), store.create_experiment("gone")
        runs = [store.create_run(kept, "u", 0, [], f"r{i}").info.run_id for i in range(3)]
        store.delete_run(runs[2])
        store.delete_experiment(gone)
        registry.create_registered_model("wine")
        for run in runs[:2]:
            registry.create_model_version("wine", f"runs:/{run}/model", run_id=run)
        registry.set_registered_model_alias("wine", "champion", "2")
    finally:
        store.engine.dispose()
        registry.engine.dispose()
    return uri


def post(cloud, database_uri: str, health_url: str, deployment: str = "mlflow", args=(), stdin: str = "",
         compartment: str = COMPARTMENT, **extra) -> subprocess.CompletedProcess:
    """One pass of the metrics module as the VM's image runs it (tracking role unless `args` says otherwise)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(cloud.runtime_env(), PYTHONPATH=str(LIB), MLFLOW_BACKEND_STORE_URI=database_uri,
               MLFLOW_METRICS_COMPARTMENT_OCID=compartment, MLFLOW_METRICS_DEPLOYMENT=deployment,
               MLFLOW_METRICS_HEALTH_URL=health_url, **extra)
    return subprocess.run([sys.executable, "-m", "mlflow_oci.metrics", *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=120)


def serving_pass(cloud, database_uri: str, health_url: str, stdin: str = "", deployment: str = "mlflow",
                 compartment: str = COMPARTMENT, **extra) -> subprocess.CompletedProcess:
    """The serving VM's pass (with stdin: its request log lines too): the registry is the tracking server's (here
    its database, as MLflow reads a sqlite URI), the endpoint's model `wine` at alias `champion`."""
    settings = {"MLFLOW_TRACKING_URI": database_uri, "SERVING_MODEL_NAME": "wine", "SERVING_MODEL_ALIAS": "champion",
                **extra}
    args = ["--role", "serving", "--requests", "-"] if stdin else ["--role", "serving"]
    return post(cloud, "", health_url, deployment, args, stdin, compartment, **settings)


def request_line(route: str, status: int, seconds: float, login: bool = True) -> str:
    """A line of the proxy's request log, in the shape docker/nginx/mlflow-proxy.conf.template's log_format has."""
    return json.dumps({"time": time.time(), "route": route, "status": status, "seconds": seconds,
                       "login": int(login), "client": "10.0.0.9", "user": "mlflow", "method": "GET",
                       "path": "/api/2.0/mlflow/experiments/search", "bytes": 120})


@contextlib.contextmanager
def health_endpoint(served_model: str | None = None):
    """A server that answers GET /health with 200, as a running tracking server does; with `served_model`, also
    /ping with the X-MLflow-Model-URI the serving endpoint adds. Its /health URL."""
    class Health(BaseHTTPRequestHandler):
        def do_GET(self):
            known = self.path == "/health" or (served_model and self.path == "/ping")
            self.send_response(200 if known else 404)
            if served_model and self.path == "/ping":
                self.send_header("X-MLflow-Model-URI", served_model)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/health"
    finally:
        server.shutdown()
        server.server_close()


def posted_by(*passes) -> list[dict]:
    """What a fake of PostMetricData (tests/ocifakes) accepted from these passes, each a function of the fake that
    runs one (e.g. `lambda cloud: post(cloud, ...)`) and must succeed."""
    from ocifakes.server import InstanceCloud

    cloud = InstanceCloud().start()
    try:
        cloud.grants[cloud.instance.instance_ocid].metric_namespaces.add("mlflow")
        for run in passes:
            result = run(cloud)
            assert result.returncode == 0, result.stderr
        return list(cloud.metrics)
    finally:
        cloud.stop()
