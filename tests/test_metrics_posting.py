"""docker/lib/mlflow_oci/metrics.py against a loopback fake of OCI Monitoring's PostMetricData (tests/ocifakes),
which enforces the API reference's rules: at most 50 metric streams a call, 1 to 20 dimensions, the namespace and
name patterns, a timestamp less than two hours old and less than 10 minutes ahead."""
import json
import time

import pytest
from ocifakes.server import InstanceCloud, Refused

from harness import metrics_run
from harness.metrics_run import COMPARTMENT


@pytest.fixture
def cloud():
    server = InstanceCloud().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    return metrics_run.fill(tmp_path_factory.mktemp("metrics"))


@pytest.fixture
def healthy():
    with metrics_run.health_endpoint() as url:
        yield url


def post(cloud, database, health_url, **extra):
    return metrics_run.post(cloud, database, health_url, **extra)


def posted(cloud) -> dict:
    return {m["name"]: m["datapoints"][-1]["value"] for m in cloud.metrics}


def test_every_metric_is_posted_with_the_deployments_values(cloud, database, healthy):
    cloud.grants[cloud.instance.instance_ocid].metric_namespaces.add("mlflow")
    result = post(cloud, database, healthy)
    assert result.returncode == 0, result.stderr
    values = posted(cloud)
    assert {k: values[k] for k in ("mlflow.up", "mlflow.runs", "mlflow.experiments", "mlflow.registered_models",
                                   "mlflow.model_versions")} == {
        "mlflow.up": 1, "mlflow.runs": 2, "mlflow.experiments": 2, "mlflow.registered_models": 1,
        "mlflow.model_versions": 2}
    assert 0 < values["mlflow.disk_used_percent"] < 100
    assert all(m["dimensions"] == {"deployment": "mlflow", "role": "tracking"} and m["namespace"] == "mlflow"
               and m["compartmentId"] == COMPARTMENT for m in cloud.metrics)
    assert {kind for method, path, kind, _ in cloud.requests if path == "/20180401/metrics"} == {"session-token"}


def test_a_server_that_does_not_answer_is_posted_as_down(cloud, database):
    cloud.grants[cloud.instance.instance_ocid].metric_namespaces.add("mlflow")
    result = post(cloud, database, "http://127.0.0.1:9/health")
    assert result.returncode == 0, result.stderr
    assert posted(cloud)["mlflow.up"] == 0


def test_a_namespace_it_may_not_post_to_is_reported(cloud, database, healthy):
    result = post(cloud, database, healthy)
    assert result.returncode == 3 and "not authorized to post metrics in this namespace" in result.stderr
    assert cloud.metrics == []


def _metric(name="mlflow.up", when=None, dimensions=None, namespace="mlflow"):
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if when is None else when))
    return {"namespace": namespace, "compartmentId": COMPARTMENT, "name": name,
            "dimensions": {"deployment": "mlflow"} if dimensions is None else dimensions,
            "datapoints": [{"timestamp": stamp, "value": 1.0}]}


def test_the_fake_keeps_monitorings_rules(cloud):
    instance = cloud.instance.instance_ocid
    cloud.grants[instance].metric_namespaces.add("mlflow")

    def call(*metrics):
        return cloud.post_metric_data(instance, json.dumps({"metricData": list(metrics)}).encode())

    with pytest.raises(Refused, match="at most 50 unique metric streams"):
        call(*(_metric(f"m{i}") for i in range(51)))
    with pytest.raises(Refused, match="1 to 20 dimensions"):
        call(_metric(dimensions={}))
    answer = call(_metric("9starts-with-a-digit"), _metric(when=time.time() - 7300), _metric(when=time.time() + 900),
                  _metric(namespace="has-hyphen"), _metric(dimensions={"has space": "x"}), _metric())
    assert answer["failedMetricsCount"] == 5
    assert [f["message"] for f in answer["failedMetrics"]] == [
        "invalid metric name", *["a datapoint's timestamp must be less than two hours in the past and 10 minutes in "
                                 "the future"] * 2, "invalid namespace", "invalid dimension 'has space'"]
    assert len(cloud.metrics) == 1
