"""examples/wine/train.ipynb runs top to bottom, unedited, against `orm-pack local up` (nbclient, a real
IPython kernel): it trains and logs three runs, registers the best, moves `champion` to it, and the
serving endpoint answers with that version. The kernel gets only the settings a notebook session
created by the stack has (tracking URI, user, password, serving URL, the CA: local up's file stands for
the stack's CA that the session reads by its OCID), and verifies the server with them."""
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from mlflow import MlflowClient
from nbclient import NotebookClient

from dataplane.stacks import CLIENT_ENV
from orm_pack.local.ports import free_port
from orm_pack.local.services import python_env

pytestmark = [pytest.mark.dataplane,
              pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")]

WINE = Path(__file__).resolve().parents[2] / "examples" / "wine"


def local(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orm_pack.cli", "local", *args], env=python_env(),
                          capture_output=True, text=True, timeout=600)


@pytest.fixture
def local_up(tmp_path):
    state = str(tmp_path / "state")
    up = local("up", "--json", "--state-dir", state, "--port", str(free_port()),
               "--serving-port", str(free_port()), "--poll-seconds", "1")
    assert up.returncode == 0, up.stderr + up.stdout
    try:
        yield json.loads(up.stdout)
    finally:
        down = local("down", "--state-dir", state)
        assert down.returncode == 0, down.stderr


def test_the_wine_notebook_runs_top_to_bottom_against_local_up(local_up, monkeypatch, tmp_path):
    session = {"MLFLOW_TRACKING_URI": local_up["tracking_url"], "MLFLOW_TRACKING_USERNAME": local_up["username"],
               "MLFLOW_TRACKING_PASSWORD": local_up["password"], "MLFLOW_SERVING_URL": local_up["serving_url"],
               "MLFLOW_TRACKING_SERVER_CERT_PATH": str(tmp_path / "state" / "ca.pem"),
               "MLFLOW_HTTP_REQUEST_MAX_RETRIES": CLIENT_ENV["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]}
    for name in [n for n in os.environ if n.startswith("MLFLOW_")]:
        monkeypatch.delenv(name)  # no TLS or tracking setting from the test run: the notebook's helper sets them
    for name, value in session.items():
        monkeypatch.setenv(name, value)

    notebook = nbformat.read(WINE / "train.ipynb", as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(WINE)}}).execute()

    outputs = "".join(json.dumps(cell.get("outputs", [])) for cell in notebook.cells)
    assert local_up["password"] not in outputs
    assert "predicted quality" in outputs and "Traceback" not in outputs

    client = MlflowClient(tracking_uri=local_up["tracking_url"])  # not the process-wide URI other tests use
    experiment = client.get_experiment_by_name("wine-quality-notebook")
    runs = client.search_runs([experiment.experiment_id], order_by=["metrics.rmse ASC"])
    assert len(runs) == 3
    champion = client.get_model_version_by_alias("wine-quality", "champion")
    assert champion.run_id == runs[0].info.run_id  # the best run became the champion
    last = notebook.cells[-1].outputs[0]["text"]
    assert "predicted quality" in last and len(last.strip().splitlines()) == 4  # a header and 3 predictions
