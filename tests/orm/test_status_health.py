"""`orm-pack status --health`: the metrics the VMs posted (the real metrics module, against the fake of
PostMetricData in tests/ocifakes) read back from OCI Monitoring with the user's key (SummarizeMetricsData, the fake
beside the Resource Manager one), shown as a table and judged by the alarms' thresholds."""
import json

import pytest

from harness import metrics_run
from orm_pack.cloud.resource_manager import MANAGED_BY, TAG_MANAGED_BY
from ormfake.testing import COMPARTMENT

STACK = "team-a-mlflow"
DEPLOYMENT = "team-a"


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    return metrics_run.fill(tmp_path_factory.mktemp("health"))


@pytest.fixture
def deployed(fake):
    fake.add_applied_stack(COMPARTMENT, STACK, {"mlflow_url": "https://10.0.0.5"}, {TAG_MANAGED_BY: MANAGED_BY},
                           variables={"name_prefix": DEPLOYMENT})
    return fake


def _post(fake, *passes) -> None:
    """The VMs' metrics passes; what they posted is what Monitoring's read side has."""
    fake.metrics.extend(metrics_run.posted_by(*passes))


def _status(run, fake, *extra):
    return run("status", "--compartment", COMPARTMENT, "--stack-name", STACK, "--health",
               "--monitoring-endpoint", fake.url, *extra)


def test_a_working_deployment_reads_healthy_with_its_figures(deployed, database, orm_pack_process):
    lines = "\n".join([metrics_run.request_line("api", 200, 0.03)] * 12 + [metrics_run.request_line("ui", 200, 0.2)])
    with metrics_run.health_endpoint("models:/wine/2") as endpoint:
        _post(deployed,
              lambda cloud: metrics_run.post(cloud, database, endpoint, DEPLOYMENT, ["--requests", "-"], lines,
                                             compartment=COMPARTMENT),
              lambda cloud: metrics_run.serving_pass(cloud, database, endpoint, deployment=DEPLOYMENT,
                                                     compartment=COMPARTMENT))
    shown = _status(orm_pack_process, deployed)
    assert shown.code == 0, shown
    assert "Deployment team-a in OCI Monitoring" in shown.stdout and "Healthy" in shown.stdout
    document = json.loads(_status(orm_pack_process, deployed, "--json").stdout)["health"]
    readings = {(r["role"], r["metric"], r["detail"]): r["value"] for r in document["readings"]}
    assert readings[("tracking", "mlflow.up", "")] == 1 and readings[("serving", "mlflow.up", "")] == 1
    assert readings[("tracking", "mlflow.runs", "")] == 2
    assert readings[("tracking", "mlflow.requests", "route=api status=2xx")] == 12
    assert readings[("serving", "mlflow.served_model_version", "")] == 2
    assert document["healthy"] and document["problems"] == []


def test_an_outage_and_an_endpoint_behind_its_alias_exit_1_and_say_so(deployed, database, orm_pack):
    with metrics_run.health_endpoint("models:/wine/1") as old_version:
        _post(deployed,
              lambda cloud: metrics_run.post(cloud, database, "http://127.0.0.1:9/health", DEPLOYMENT,
                                             compartment=COMPARTMENT),
              lambda cloud: metrics_run.serving_pass(cloud, database, old_version, deployment=DEPLOYMENT,
                                                     compartment=COMPARTMENT))
    shown = _status(orm_pack, deployed)
    assert shown.code == 1, shown
    assert "PROBLEM: the tracking server does not answer or cannot reach its database" in shown.stdout
    assert "PROBLEM: the model endpoint does not serve the version its alias names" in shown.stdout


def test_another_deployments_metrics_leave_this_one_silent(deployed, database, orm_pack):
    with metrics_run.health_endpoint() as healthy:
        _post(deployed, lambda cloud: metrics_run.post(cloud, database, healthy, "team-b", compartment=COMPARTMENT))
    shown = _status(orm_pack, deployed, "--minutes", "15")
    assert shown.code == 1, shown
    assert "the tracking VM posted no metrics in the last 15 minutes" in shown.stdout


def test_a_bad_window_is_refused_before_anything_is_read(deployed, orm_pack):
    shown = _status(orm_pack, deployed, "--minutes", "0")
    assert shown.code == 2 and "--minutes takes a whole number of minutes from 1 to 1440" in shown.stderr


def test_a_stack_without_name_prefix_is_read_as_the_stacks_default():
    """A stack that leaves name_prefix unset runs with stack/variables.tf's default, which status --health uses."""
    import re
    from pathlib import Path

    from orm_pack.cloud import health

    text = (Path(__file__).resolve().parents[2] / "stack" / "variables.tf").read_text()
    block = text[text.index('variable "name_prefix"'):]
    assert re.search(r'default\s*=\s*"([^"]+)"', block)[1] == health.DEFAULT_NAME_PREFIX
