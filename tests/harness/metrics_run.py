"""The tracking VM's metrics pass (docker/lib/mlflow_oci/metrics.py) run as its timer runs it, against a fake of OCI
Monitoring (tests/ocifakes), on an MLflow database this module fills."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

LIB = Path(__file__).resolve().parents[2] / "docker" / "lib"
COMPARTMENT = "ocid1.compartment.oc1..aaaaaaaa3a5v7wcfmtcuqkx6owozoyddmkvggpmlxpy7rkbkwpjqndjwuoxq"


def fill(path: Path) -> str:
    """An SQLite MLflow database: 2 active experiments (with Default) and 1 deleted, 3 runs of which 1 deleted,
    1 registered model with 2 versions. Its URI."""
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    uri = f"sqlite:///{path / 'mlflow.db'}"
    store, registry = SqlAlchemyStore(uri, str(path / "artifacts")), RegistryStore(uri)
    try:
        kept, gone = store.create_experiment("kept"), store.create_experiment("gone")
        runs = [store.create_run(kept, "u", 0, [], f"r{i}").info.run_id for i in range(3)]
        store.delete_run(runs[2])
        store.delete_experiment(gone)
        registry.create_registered_model("wine")
        for run in runs[:2]:
            registry.create_model_version("wine", f"runs:/{run}/model", run_id=run)
    finally:
        store.engine.dispose()
        registry.engine.dispose()
    return uri


def post(cloud, database_uri: str, health_url: str, deployment: str = "mlflow", **extra) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(cloud.runtime_env(), PYTHONPATH=str(LIB), MLFLOW_BACKEND_STORE_URI=database_uri,
               MLFLOW_METRICS_COMPARTMENT_OCID=COMPARTMENT, MLFLOW_METRICS_DEPLOYMENT=deployment,
               MLFLOW_METRICS_HEALTH_URL=health_url, **extra)
    return subprocess.run([sys.executable, "-m", "mlflow_oci.metrics"], env=env, capture_output=True, text=True,
                          timeout=120)


@contextlib.contextmanager
def health_endpoint():
    """A server that answers GET /health with 200, as a running tracking server does; its URL."""
    class Health(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/health" else 404)
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
