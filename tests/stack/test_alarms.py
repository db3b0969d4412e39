"""The stack's alarms (stack/alarms.tf) evaluated against what the tracking VM's metrics pass posts: its queries
are read from the applied plan, parsed in a subset of Monitoring's query language (harness/mql.py, which refuses
anything outside it) and evaluated over the datapoints a fake of PostMetricData accepted (tests/ocifakes), with the
server up, down, and silent."""
import time

import pytest
from ocifakes.server import InstanceCloud

from harness import metrics_run
from harness.mql import Query

from .conftest import BASE_TFVARS

pytestmark = pytest.mark.terraform


def _alarms(d) -> dict:
    return {change["address"].split('"')[1]: change["change"]["after"] for change in d.replan["resource_changes"]
            if change["type"] == "oci_monitoring_alarm"}


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    return metrics_run.fill(tmp_path_factory.mktemp("alarms"))


def test_each_alarm_watches_this_deployment_goes_to_the_topic_and_carries_its_runbook(deployed):
    d = deployed("default")
    alarms = _alarms(d)
    assert set(alarms) == {"down", "silent", "errors", "disk", "database", "serving_silent", "serving_alias"}
    (topic,) = [c["change"]["after"] for c in d.replan["resource_changes"] if c["type"] == "oci_ons_notification_topic"]
    for name, alarm in alarms.items():
        query = Query.parse(alarm["query"])
        # down is the tracking server's (the endpoint answers 503, by design, until a model has its alias); each
        # VM has its silent alarm
        role = {"down": {"role": "tracking"}, "silent": {"role": "tracking"}, "serving_silent": {"role": "serving"}}
        role = role.get(name, {})
        assert query.filters == {"deployment": "mlflow", **role} and alarm["namespace"] == "mlflow"
        assert alarm["destinations"] == [topic["id"]] and alarm["is_enabled"]
        assert alarm["metric_compartment_id"] == BASE_TFVARS["compartment_ocid"]
        assert "Runbook:" in alarm["body"] and alarm["severity"] in ("CRITICAL", "WARNING")
    # MySQL.2's 50 GB: the database alarm fires past 80 % of it
    assert Query.parse(alarms["database"]["query"]).threshold == 40_000_000_000
    # no address given (the default): the topic has no subscription
    assert not [c for c in d.replan["resource_changes"] if c["type"] == "oci_ons_subscription"]
    assert "Confirm the subscription" not in d.outputs["observability"]


def test_an_alarm_address_gets_a_subscription_and_is_told_to_confirm_it(deployed):
    d = deployed("per-person")  # its inventory sets alarm_email
    (subscription,) = [c["change"]["after"] for c in d.replan["resource_changes"] if c["type"] == "oci_ons_subscription"]
    (topic,) = [c["change"]["after"] for c in d.replan["resource_changes"] if c["type"] == "oci_ons_notification_topic"]
    assert (subscription["protocol"], subscription["endpoint"], subscription["topic_id"]) == (
        "EMAIL", "mlflow-ops@example.com", topic["id"])
    assert ("Confirm the subscription: OCI sent mlflow-ops@example.com a confirmation link; no alarm arrives until "
            "it is followed.") in d.outputs["observability"]


def test_the_down_and_silent_alarms_fire_on_an_outage_and_stay_quiet_while_it_works(deployed, database):
    alarms = {name: Query.parse(alarm["query"]) for name, alarm in _alarms(deployed("default")).items()}
    cloud = InstanceCloud().start()
    try:
        cloud.grants[cloud.instance.instance_ocid].metric_namespaces.add("mlflow")
        assert alarms["silent"].fires(cloud.metrics, time.time())  # nothing posted yet
        with metrics_run.health_endpoint() as healthy:
            working = metrics_run.post(cloud, database, healthy)
        assert working.returncode == 0, working.stderr
        now = time.time()
        assert not any(alarm.fires(cloud.metrics, now) for alarm in (alarms["down"], alarms["silent"]))
        assert alarms["serving_silent"].fires(cloud.metrics, now)  # only the tracking VM posted
        outage = metrics_run.post(cloud, database, "http://127.0.0.1:9/health")  # nothing answers there
        assert outage.returncode == 0, outage.stderr
        assert alarms["down"].fires(cloud.metrics, time.time())
        # another deployment's metrics are not this one's
        assert not alarms["down"].fires([dict(m, dimensions={"deployment": "other", "role": "tracking"})
                                         for m in cloud.metrics], time.time())
        assert alarms["silent"].fires(cloud.metrics, time.time() + 600)  # ten minutes without a pass
    finally:
        cloud.stop()


def test_without_a_model_endpoint_there_is_no_alarm_on_it(deployed):
    assert set(_alarms(deployed("no-serving"))) == {"down", "silent", "errors", "disk", "database"}


def test_the_errors_alarm_fires_on_a_run_of_5xx_and_the_alias_alarm_on_an_endpoint_left_behind(deployed, database):
    alarms = {name: Query.parse(alarm["query"]) for name, alarm in _alarms(deployed("default")).items()}
    line = metrics_run.request_line
    fine = "\n".join([line("api", 200, 0.02)] * 40 + [line("api", 503, 0.001)])  # 1 of 41: under 5 %
    failing = "\n".join([line("serving", 200, 0.05)] * 15 + [line("serving", 502, 0.001)] * 5)
    with metrics_run.health_endpoint("models:/wine/2") as serving_v2:  # the version `champion` names
        working = metrics_run.posted_by(
            lambda cloud: metrics_run.post(cloud, database, serving_v2, args=["--requests", "-"], stdin=fine),
            lambda cloud: metrics_run.serving_pass(cloud, database, serving_v2))
    assert not any(alarm.fires(working, time.time()) for alarm in alarms.values())
    with metrics_run.health_endpoint() as tracking, metrics_run.health_endpoint("models:/wine/1") as serving_v1:
        broken = metrics_run.posted_by(lambda cloud: metrics_run.post(cloud, database, tracking),
                            lambda cloud: metrics_run.serving_pass(cloud, database, serving_v1, stdin=failing))
    now = time.time()
    assert alarms["errors"].fires(broken, now) and alarms["serving_alias"].fires(broken, now)
    assert not alarms["down"].fires(broken, now)


def test_the_subset_refuses_what_it_cannot_evaluate():
    for query in ('mlflow.up[1m]{deployment = "x"}.max()', 'mlflow.up[1m].grouping().max() < 1',
                  'mlflow.up[1m]{deployment = x}.max() < 1', 'mlflow.up[1m]{deployment = "x"}.absent() > 1'):
        with pytest.raises(ValueError):
            Query.parse(query)


def test_on_oke_the_alarms_are_those_the_metrics_pods_feed(deployed):
    """OKE's metrics pod (oke/base/metrics.yaml) posts the tracking VM's own figures as role tracking, and the proxy
    pods' sidecar their requests (proxy.yaml), but nothing posts a disk (a pod's is the node's): the stack makes the
    alarms they can feed, and says where the values are."""
    d = deployed("oke")
    alarms = _alarms(d)
    assert set(alarms) == {"down", "silent", "errors", "database"}
    fed_by_the_pods = {"mlflow.up", "mlflow.database_bytes", "mlflow.server_error_percent"}
    for alarm in alarms.values():
        query = Query.parse(alarm["query"])
        assert query.metric in fed_by_the_pods and query.filters.get("role", "tracking") == "tracking", query
    assert "Prometheus: the mlflow-metrics pod's :9464/metrics" in d.outputs["observability"]
    assert ("Alarms: mlflow-database, mlflow-down, mlflow-errors, mlflow-silent > topic mlflow-alarms"
            in d.outputs["observability"])
