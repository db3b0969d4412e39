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


def _values(cloud) -> dict:
    """Posted values by name and the dimensions beyond deployment and role."""
    return {(m["name"], tuple(sorted((k, v) for k, v in m["dimensions"].items() if k not in ("deployment", "role")))):
            m["datapoints"][-1]["value"] for m in cloud.metrics}


def test_the_request_log_becomes_rates_latencies_errors_and_logins_per_route(cloud, database, healthy):
    cloud.grants[cloud.instance.instance_ocid].metric_namespaces.add("mlflow")
    line = metrics_run.request_line
    lines = ([line("api", 200, 0.010 * n) for n in range(1, 19)] + [line("api", 502, 0.001)] * 2
             + [line("ui", 200, 0.2), line("ui", 304, 0.1)]
             + [line("api", 401, 0.001, login=False)]  # a first challenge: no login was sent
             + [line("api", 401, 0.002)] * 3 + [line("api", 429, 0.0)] * 4
             + ["a line cut by a rotation", '{"route": "api"}'])
    result = post(cloud, database, healthy, args=["--requests", "-"], stdin="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr
    values = _values(cloud)
    api = (("route", "api"),)
    assert {status: values[("mlflow.requests", (("route", "api"), ("status", status)))]
            for status in ("2xx", "4xx", "5xx")} == {"2xx": 18, "4xx": 8, "5xx": 2}
    assert values[("mlflow.requests", (("route", "ui"), ("status", "3xx")))] == 1
    # nearest rank over the 28 api requests: 18 of 10..180 ms and 10 of 0..2 ms
    assert (values[("mlflow.latency_p50_ms", api)], values[("mlflow.latency_p95_ms", api)],
            values[("mlflow.latency_p99_ms", api)]) == (40.0, 170.0, 180.0)
    assert values[("mlflow.server_error_percent", api)] == round(100 * 2 / 28, 2)
    assert ("mlflow.server_error_percent", (("route", "ui"),)) not in values  # 2 requests say nothing
    assert values[("mlflow.login_failures", ())] == 3 and values[("mlflow.login_throttled", ())] == 4


def test_memory_and_restarts_come_from_systemd_and_the_containers_own_figure(cloud, database, healthy):
    cloud.grants[cloud.instance.instance_ocid].metric_namespaces.add("mlflow")
    # `systemctl show -p Id -p MemoryCurrent -p NRestarts mlflow-tracking.service nginx.service`, as systemd
    # prints it: properties in its own order, a blank line between units
    shown = ("NRestarts=2\nMemoryCurrent=31457280\nId=mlflow-tracking.service\n\n"
             "NRestarts=0\nMemoryCurrent=8388608\nId=nginx.service\n")
    result = post(cloud, database, healthy, MLFLOW_METRICS_UNITS=shown,
                  MLFLOW_METRICS_CONTAINER_MEMORY="245.3MB / 1.02GB")
    assert result.returncode == 0, result.stderr
    values = _values(cloud)
    # the container's memory is podman's figure, not the unit's (podman's client alone)
    assert values[("mlflow.memory_bytes", (("process", "mlflow-tracking"),))] == 245_300_000
    assert values[("mlflow.memory_bytes", (("process", "nginx"),))] == 8388608
    assert values[("mlflow.restarts", (("process", "mlflow-tracking"),))] == 2
    # without memory accounting systemd says [not set]; podman in binary units
    cloud.metrics.clear()
    result = post(cloud, database, healthy, MLFLOW_METRICS_UNITS="Id=nginx.service\nMemoryCurrent=[not set]\n"
                  "NRestarts=1\n", MLFLOW_METRICS_CONTAINER_MEMORY="1.5GiB / 3.8GiB")
    values = _values(cloud)
    assert ("mlflow.memory_bytes", (("process", "nginx"),)) not in values
    assert values[("mlflow.restarts", (("process", "nginx"),))] == 1
    assert values[("mlflow.memory_bytes", (("process", "mlflow-tracking"),))] == 1.5 * 2**30


def test_more_streams_than_one_call_takes_are_posted_in_several(cloud, database, healthy):
    cloud.grants[cloud.instance.instance_ocid].metric_namespaces.add("mlflow")
    lines = [metrics_run.request_line(f"route{n}", 200, 0.01) for n in range(20)]  # 20 x 4 streams
    result = post(cloud, database, healthy, args=["--requests", "-"], stdin="\n".join(lines))
    assert result.returncode == 0, result.stderr
    assert len({("mlflow.requests", (("route", f"route{n}"), ("status", "2xx"))) for n in range(20)}
               & set(_values(cloud))) == 20


@pytest.mark.parametrize("served, follows", [("models:/wine/2", 1), ("models:/wine/1", 0), (None, 0)],
                         ids=["the-aliased-version", "an-older-version", "no-model-loaded"])
def test_the_serving_pass_says_which_version_it_serves_and_whether_the_alias_names_it(
        cloud, database, served, follows):
    """`champion` names version 2 in the registry (metrics_run.fill)."""
    cloud.grants[cloud.instance.instance_ocid].metric_namespaces.add("mlflow")
    with metrics_run.health_endpoint(served) as health:
        result = metrics_run.serving_pass(cloud, database, health)
    assert result.returncode == 0, result.stderr
    values = posted(cloud)
    assert values["mlflow.serving_follows_alias"] == follows and values["mlflow.up"] == 1
    assert values.get("mlflow.served_model_version") == (int(served.rsplit("/", 1)[1]) if served else None)
    assert "mlflow.runs" not in values  # the serving VM has no database
    assert {m["dimensions"]["role"] for m in cloud.metrics} == {"serving"}


def test_an_alias_the_registry_does_not_name_is_nothing_to_follow(cloud, database):
    cloud.grants[cloud.instance.instance_ocid].metric_namespaces.add("mlflow")
    with metrics_run.health_endpoint("models:/wine/2") as health:
        result = metrics_run.serving_pass(cloud, database, health, SERVING_MODEL_ALIAS="not-set-yet")
    assert result.returncode == 0, result.stderr
    assert "the registry did not say which version the alias names" in result.stderr
    assert "mlflow.serving_follows_alias" not in posted(cloud)


def test_a_registry_that_does_not_answer_costs_the_pass_one_short_wait(cloud, database):
    """The timer stops a pass after 120 s (mlflow-metrics.service): MLflow's client defaults (a 120 s timeout,
    retries with backoff) would lose every figure of the minute, the endpoint's health included."""
    import socket

    cloud.grants[cloud.instance.instance_ocid].metric_namespaces.add("mlflow")
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # connections are taken into the backlog and never answered
    try:
        with metrics_run.health_endpoint("models:/wine/2") as health:
            started = time.monotonic()
            result = metrics_run.serving_pass(cloud, f"http://127.0.0.1:{silent.getsockname()[1]}", health)
            took = time.monotonic() - started
    finally:
        silent.close()
    assert result.returncode == 0, result.stderr
    assert took < 60, took
    values = posted(cloud)
    assert values["mlflow.up"] == 1 and values["mlflow.served_model_version"] == 2
    assert "mlflow.serving_follows_alias" not in values


@pytest.mark.parametrize("args, says", [
    (["--prometheus-port", "9464"], "--prometheus-port needs --every"),
    (["--every", "5"], "--every must be at least 10 seconds"),
    (["--every", "60", "--requests", "-"], "--requests reads one pass's lines"),
    (["--requests-syslog", "5140"], "--requests-syslog needs --every"),
])
def test_a_loop_that_cannot_work_is_refused_before_any_pass(cloud, database, args, says):
    result = post(cloud, database, "http://127.0.0.1:9/health", args=args)
    assert result.returncode == 2 and says in result.stderr, result.stderr
    assert not cloud.metrics


def test_prometheus_sees_the_same_values_until_the_passes_stop():
    """The exposition (OKE's metrics pod): names with `_`, dimensions as labels with Prometheus's escapes; 503
    before the first pass and once the last one is too old, so the pod's probes see a stuck loop."""
    import sys
    import urllib.error
    import urllib.request

    sys.path.insert(0, str(metrics_run.LIB))
    from mlflow_oci import metrics, metrics_loop

    from orm_pack.local.ports import free_port

    samples = [metrics.Sample("mlflow.runs", 3), metrics.Sample("mlflow.requests", 2, {"route": 'a"b\\c\nd'})]
    text = metrics_loop.exposition(samples, "mlflow", "tracking")
    assert text.splitlines() == [
        "# TYPE mlflow_runs gauge", 'mlflow_runs{deployment="mlflow",role="tracking"} 3',
        "# TYPE mlflow_requests gauge", 'mlflow_requests{deployment="mlflow",role="tracking",route="a\\"b\\\\c\\nd"} 2']
    port = free_port()
    exposed = metrics_loop.Exposition(port, stale_after=0.5)

    def status() -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
                return answer.status
        except urllib.error.HTTPError as refused:
            return refused.code

    try:
        assert status() == 503  # no pass yet
        exposed.show(text)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            assert answer.read().decode() == text and answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        time.sleep(0.7)
        assert status() == 503  # the loop stopped passing
    finally:
        exposed.server.shutdown()
        exposed.server.server_close()
