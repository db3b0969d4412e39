"""A user trains the wine example through the proxy, promotes it with the `champion` alias, and gets
predictions from the serving endpoint in the MLflow 1.x and current formats; moving the alias to a
new version is picked up while requests keep flowing."""
import json
import subprocess
import threading
import time

import pytest
import requests
from mlflow import MlflowClient

from dataplane.stacks import MODEL_NAME, RUNTIME, healthcheck_command, train_wine
from dataplane.trust import CA_FILE
from orm_pack.local.services import python_env

pytestmark = [pytest.mark.dataplane,
              pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")]

COLUMNS = ["fixed acidity", "volatile acidity", "citric acid", "residual sugar", "chlorides",
           "free sulfur dioxide", "total sulfur dioxide", "density", "pH", "sulphates", "alcohol"]
ROW = [6.2, 0.66, 0.48, 1.2, 0.029, 29, 75, 0.98, 3.33, 0.39, 12.8]
LEGACY_SPLIT = json.dumps({"columns": COLUMNS, "data": [ROW]})
MODEL_HEADER = "X-MLflow-Model-URI"


def client_for(tracking_stack, monkeypatch) -> MlflowClient:
    for name, value in tracking_stack.client_env().items():
        if name.startswith("MLFLOW_"):
            monkeypatch.setenv(name, value)
    return MlflowClient(tracking_uri=tracking_stack.url)


def invoke(serving_stack, body: str, content_type: str, session=None):
    return (session or requests).post(f"{serving_stack.url}/invocations", data=body, verify=CA_FILE, timeout=60,
                                      headers={"Content-Type": content_type},
                                      auth=(serving_stack.login.username, serving_stack.login.password))


def wait_until_serving(serving_stack, model_uri: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    response = None
    while time.monotonic() < deadline:
        response = invoke(serving_stack, LEGACY_SPLIT, "application/json; format=pandas-split")
        if response.status_code == 200 and response.headers.get(MODEL_HEADER) == model_uri:
            return
        assert serving_stack.supervisor.alive(), serving_stack.log.read_text()[-3000:]
        time.sleep(1)
    pytest.fail(f"{model_uri} not served after {timeout}s; last answer {response.status_code}: {response.text}\n"
                f"{serving_stack.log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def champion_v1(tracking_stack, serving_stack, wine_v1):
    with pytest.MonkeyPatch.context() as monkeypatch:
        client = client_for(tracking_stack, monkeypatch)
        client.set_registered_model_alias(MODEL_NAME, "champion", wine_v1["version"])
        wait_until_serving(serving_stack, f"models:/{MODEL_NAME}/1")
    return wine_v1


def test_training_through_the_proxy_registers_version_1(tracking_stack, wine_v1, monkeypatch):
    assert wine_v1["version"] == "1"
    client = client_for(tracking_stack, monkeypatch)
    run = client.get_run(wine_v1["run_id"])
    assert run.data.params == {"alpha": "0.5", "l1_ratio": "0.5"}
    assert set(run.data.metrics) == {"rmse", "mae", "r2"} and 0 < run.data.metrics["rmse"] < 2
    version = client.get_model_version(MODEL_NAME, "1")
    assert version.run_id == wine_v1["run_id"]
    from mlflow.models import get_model_info

    info = get_model_info(f"models:/{MODEL_NAME}/1")
    assert [spec["name"] for spec in info.signature.inputs.to_dict()] == COLUMNS
    assert info.saved_input_example_info is not None


def test_serving_waits_for_the_alias_before_serving(serving_stack, tracking_stack, wine_v1, monkeypatch):
    client = client_for(tracking_stack, monkeypatch)
    assert client.get_registered_model(MODEL_NAME).aliases == {}, "runs before the champion alias is set"
    response = invoke(serving_stack, LEGACY_SPLIT, "application/json; format=pandas-split")
    assert response.status_code == 503
    assert f"models:/{MODEL_NAME}@champion" in response.json()["message"]
    healthcheck = subprocess.run(healthcheck_command(RUNTIME.root / "docker" / "Dockerfile-serving"),
                                 env=dict(python_env(), SERVING_PORT=str(serving_stack.port)), capture_output=True,
                                 timeout=30)
    assert healthcheck.returncode != 0, "the container must not report healthy before a model is loaded"


def test_the_image_healthcheck_passes_once_a_model_is_loaded(champion_v1, serving_stack):
    command = healthcheck_command(RUNTIME.root / "docker" / "Dockerfile-serving")
    result = subprocess.run(command, env=dict(python_env(), SERVING_PORT=str(serving_stack.port)),
                            capture_output=True, timeout=30)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("content_type, body", [
    ("application/json; format=pandas-split", LEGACY_SPLIT),
    ("application/json; format=pandas-records", json.dumps([dict(zip(COLUMNS, ROW, strict=False))])),
    ("application/json", LEGACY_SPLIT),
], ids=["legacy-pandas-split", "legacy-pandas-records", "legacy-without-format"])
def test_legacy_request_gets_a_legacy_answer(champion_v1, serving_stack, content_type, body):
    response = invoke(serving_stack, body, content_type)
    assert response.status_code == 200, response.text
    predictions = response.json()
    assert isinstance(predictions, list) and len(predictions) == 1
    assert 3 < predictions[0] < 9


@pytest.mark.parametrize("content_type, body", [
    ("application/json", json.dumps({"dataframe_split": {"columns": COLUMNS, "data": [ROW]}})),
    ("application/json", json.dumps({"dataframe_records": [dict(zip(COLUMNS, ROW, strict=False))]})),
    ("text/csv", ",".join(COLUMNS) + "\n" + ",".join(map(str, ROW)) + "\n"),
], ids=["dataframe_split", "dataframe_records", "csv"])
def test_current_formats_pass_through(champion_v1, serving_stack, content_type, body):
    response = invoke(serving_stack, body, content_type)
    assert response.status_code == 200, response.text
    (prediction,) = response.json()["predictions"]
    assert 3 < prediction < 9


def test_a_bad_legacy_body_gets_an_actionable_400(champion_v1, serving_stack):
    response = invoke(serving_stack, json.dumps({"rows": [ROW]}), "application/json; format=pandas-split")
    assert response.status_code == 400
    assert '{"columns": [...], "data": [[...], ...]}' in response.json()["message"]
    unknown = invoke(serving_stack, LEGACY_SPLIT, "application/json; format=tf-serving")
    assert unknown.status_code == 400 and "format=pandas-split" in unknown.json()["message"]


def test_scoring_needs_the_password_but_health_does_not(champion_v1, serving_stack):
    anonymous = requests.post(f"{serving_stack.url}/invocations", data=LEGACY_SPLIT, verify=CA_FILE, timeout=30,
                              headers={"Content-Type": "application/json; format=pandas-split"})
    health = requests.get(f"{serving_stack.url}/health", verify=CA_FILE, timeout=30)
    assert (anonymous.status_code, health.status_code) == (401, 200)


def test_moving_the_alias_to_version_2_is_picked_up_without_dropping_requests(
        champion_v1, tracking_stack, serving_stack, monkeypatch):
    client = client_for(tracking_stack, monkeypatch)
    v2 = train_wine(tracking_stack, "--alpha", "0.05", "--l1-ratio", "0.1")
    assert v2["version"] == "2"
    supervisor_pid = serving_stack.supervisor.pid

    answers: list[tuple[int, str]] = []
    stop = threading.Event()

    def keep_predicting():
        with requests.Session() as session:
            while not stop.is_set():
                response = invoke(serving_stack, LEGACY_SPLIT, "application/json; format=pandas-split", session)
                answers.append((response.status_code, response.headers.get(MODEL_HEADER, "")))

    worker = threading.Thread(target=keep_predicting)
    worker.start()
    try:
        client.set_registered_model_alias(MODEL_NAME, "champion", "2")
        wait_until_serving(serving_stack, f"models:/{MODEL_NAME}/2")
        time.sleep(2)  # requests keep flowing while the old model server drains and stops
    finally:
        stop.set()
        worker.join(timeout=120)

    served = [uri for status, uri in answers]
    assert {status for status, _ in answers} == {200}, [a for a in answers if a[0] != 200][:5]
    assert served[0] == f"models:/{MODEL_NAME}/1" and served[-1] == f"models:/{MODEL_NAME}/2"
    assert serving_stack.supervisor.pid == supervisor_pid and serving_stack.supervisor.alive()


def test_serving_log_holds_no_password(champion_v1, serving_stack):
    assert serving_stack.login.password not in serving_stack.log.read_text()
