"""The stack's Management Dashboard (stack/dashboard.tf): what the provider's import resource sends to ImportDashboard
is read from the applied plan and checked against the API's models as the oci SDK has them (fields, types, required
fields, enums: harness/sdk_models.py); its OCIDs have the service's shape and are the ones the outputs name for
`orm-pack destroy`; and every widget's Monitoring query, evaluated by the MQL subset (harness/mql.py) over what a
deployment's metrics passes post (the tracking and serving VMs' with their request logs and units), returns the
series its chart binds, so no widget of the dashboard is empty on a working deployment."""
import json
import time

import oci.management_dashboard.models as dashboard_models
import pytest

from dataplane.servers import ProcessTracker, start_mariadb
from harness import metrics_run, ocids
from harness.mql import STATISTICS, Query
from harness.sdk_models import problems
from harness.tools import require_binary

from .conftest import BASE_TFVARS

# What each kind of deployment posts (docker/lib/mlflow_oci/metrics.py): OKE's metrics pod the tracking VM's figures
# but its disk, the proxy pods' sidecar the request metrics; memory and restarts come from a VM's systemd.
OKE_POSTS = {"mlflow.up", "mlflow.runs", "mlflow.experiments", "mlflow.registered_models", "mlflow.model_versions",
             "mlflow.database_bytes", "mlflow.requests", "mlflow.latency_p50_ms", "mlflow.latency_p95_ms",
             "mlflow.latency_p99_ms", "mlflow.server_error_percent", "mlflow.login_failures", "mlflow.login_throttled"}


def _import_details(d) -> dict:
    (change,) = [c["change"]["after"] for c in d.replan["resource_changes"]
                 if c["type"] == "oci_management_dashboard_management_dashboards_import"]
    # no OCID: the provider's ID() is a prefix and a hash of the arguments (GenerateDataSourceHashID)
    prefix, digits = change["id"].split("-")
    assert prefix == "ManagementDashboardManagementDashboardsImportResource" and digits.isdigit()
    return json.loads(change["import_details"])


def _widgets(dashboard: dict) -> list[tuple[str, Query, str]]:
    """(title, query, the dimension its chart draws a line a value of) of each saved search."""
    found = []
    for search in dashboard["savedSearches"]:
        (source,) = search["dataConfig"]
        series = search["uiConfig"]["chartInfo"]["series"]
        found.append((search["displayName"], Query.parse(source["parameters"]["mql"], alarm=False),
                      series.removeprefix("dimensions.")))
    return found


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    """MLflow's database on MariaDB, as a deployment's is on MySQL: the database's size is a figure only MySQL gives
    (information_schema)."""
    tracker = ProcessTracker()
    binaries = {name: require_binary(name, how="apt-get install mariadb-server")
                for name in ("mariadbd", "mariadb-install-db")}
    workdir = tmp_path_factory.mktemp("dashboard")
    server = start_mariadb(tracker, binaries, workdir / "mariadb")
    try:
        yield metrics_run.fill(workdir, server.empty_database("mlflow"))
    finally:
        tracker.stop_all()


def test_the_sdk_model_check_finds_what_the_service_would_refuse():
    """The check itself: a missing required field, an unknown field, a wrong type and a value outside an enum."""
    tile = {"displayName": "t", "savedSearchId": "s", "row": 0, "column": 0, "height": 4, "width": 6, "nls": {},
            "uiConfig": {}, "dataConfig": [], "state": "DEFAULT", "drilldownConfig": []}
    assert problems(tile, "ManagementDashboardTileDetails", dashboard_models) == []
    assert problems({**tile, "state": "SHOWN", "row": "0", "colour": 1}, "ManagementDashboardTileDetails",
                    dashboard_models) == [
        "$.colour: not a field of ManagementDashboardTileDetails", "$.row: int expected, not '0'",
        "$.state: 'SHOWN' is not one of ['DEFAULT', 'DELETED', 'UNAUTHORIZED']"]
    assert problems({"dashboards": [{"tiles": [tile]}]}, "ManagementDashboardImportDetails", dashboard_models)[0] == (
        "$.dashboards[0].dashboardId: required by ManagementDashboardForImportExportDetails")


@pytest.mark.terraform
@pytest.mark.parametrize("profile", ["default", "oke", "no-serving"])
def test_the_import_is_what_import_dashboard_takes_with_ids_the_outputs_name(deployed, profile):
    d = deployed(profile)
    details = _import_details(d)
    assert problems(details, "ManagementDashboardImportDetails", dashboard_models) == []
    (dashboard,) = details["dashboards"]
    searches = {search["id"]: search for search in dashboard["savedSearches"]}
    # OCIDs of the service's shape (tests/test_ocid_shapes.py has real ones), one a widget, named by the outputs
    assert dashboard["dashboardId"].startswith("ocid1.managementdashboard.oc1..")
    assert all(ocid.startswith("ocid1.managementsavedsearch.oc1..") for ocid in searches)
    assert [ocids.shape_problem(ocid) for ocid in [dashboard["dashboardId"], *searches]] == [None] * (1 + len(searches))
    assert d.outputs["dashboard_id"] == dashboard["dashboardId"]
    assert d.outputs["dashboard_saved_search_ids"].split() == list(searches)
    assert len(searches) == len(dashboard["savedSearches"]) == len(dashboard["tiles"])
    # everything in the deployment's compartment; each tile shows one of the import's saved searches
    compartment = BASE_TFVARS["compartment_ocid"]
    assert {dashboard["compartmentId"], *(s["compartmentId"] for s in searches.values())} == {compartment}
    assert sorted(tile["savedSearchId"] for tile in dashboard["tiles"]) == sorted(searches)
    # the tiles fit the dashboard's 12 columns without covering one another
    cells = [(tile["row"] + r, tile["column"] + c) for tile in dashboard["tiles"]
             for r in range(tile["height"]) for c in range(tile["width"])]
    assert len(cells) == len(set(cells)) and all(0 <= column < 12 for _, column in cells)
    # each widget queries Monitoring for this deployment's namespace and streams, and draws a line a group
    for search in searches.values():
        (source,) = search["dataConfig"]
        assert source["type"] == "monitoringDataSource" and source["parameters"]["namespace"] == "mlflow"
        assert source["parameters"]["compartmentId"] == compartment
        query = Query.parse(source["parameters"]["mql"], alarm=False)
        assert query.filters == {"deployment": "mlflow"}  # the profiles' name_prefix
        assert search["uiConfig"]["chartInfo"]["series"] == f"dimensions.{query.group}"
        assert search["uiConfig"]["defaultDataSource"] == source["name"]
    assert "Observability & Management > Dashboards > mlflow MLflow" in d.outputs["observability"]
    assert f"region={BASE_TFVARS['region']}" in d.outputs["observability"]


@pytest.mark.terraform
def test_without_create_dashboard_there_is_no_import_and_no_dashboard_to_delete(deployed):
    d = deployed("existing-vcn")  # its inventory sets create_dashboard = false
    assert not [c for c in d.replan["resource_changes"]
                if c["type"] == "oci_management_dashboard_management_dashboards_import"]
    assert d.outputs["dashboard_id"] == d.outputs["dashboard_saved_search_ids"] == ""
    assert "Dashboard:" not in d.outputs["observability"]


@pytest.mark.terraform
def test_each_kind_of_deployment_gets_the_widgets_its_metrics_feed(deployed):
    metrics = {profile: {query.metric for _, query, _ in _widgets(_import_details(deployed(profile))["dashboards"][0])}
               for profile in ("default", "no-serving", "oke")}
    assert metrics["default"] - metrics["no-serving"] == {"mlflow.served_model_version"}
    assert {"mlflow.disk_used_percent", "mlflow.memory_bytes", "mlflow.restarts"} <= metrics["no-serving"]
    assert metrics["oke"] <= OKE_POSTS and metrics["no-serving"] - metrics["oke"] == {
        "mlflow.disk_used_percent", "mlflow.memory_bytes", "mlflow.restarts"}


@pytest.mark.terraform
@pytest.mark.dataplane
def test_every_widget_charts_what_a_working_deployment_posts(deployed, database):
    line = metrics_run.request_line
    tracking_log = "\n".join([line("api", 200, 0.02)] * 12 + [line("ui", 200, 0.1)] * 3 + [line("api", 401, 0.0)]
                             + [line("artifacts", 502, 0.001)] + [line("api", 429, 0.0)])
    serving_log = "\n".join([line("serving", 200, 0.05)] * 5)
    units = "Id=mlflow-tracking.service\nMemoryCurrent=31457280\nNRestarts=1\n\nId=nginx.service\nMemoryCurrent=8388608\nNRestarts=0\n"
    with metrics_run.health_endpoint() as tracking, metrics_run.health_endpoint("models:/wine/2") as serving:
        posted = metrics_run.posted_by(
            lambda cloud: metrics_run.post(cloud, database, tracking, args=["--requests", "-"], stdin=tracking_log,
                                           MLFLOW_METRICS_UNITS=units,
                                           MLFLOW_METRICS_CONTAINER_MEMORY="245.3MB / 1.02GB"),
            lambda cloud: metrics_run.serving_pass(cloud, database, serving, stdin=serving_log))
    now = time.time()
    widgets = _widgets(_import_details(deployed("default"))["dashboards"][0])
    charts = {}
    for title, query, by in widgets:
        answer = query.series(posted, now - 3600, now + 60)  # the dashboard's last hour, as SummarizeMetricsData
        assert answer, f"{title}: {query} returns nothing"
        for stream in answer:  # what the chart binds: a line a value of `by`, its points' timestamps and values
            assert stream["dimensions"].get(by) is not None and stream["aggregatedDatapoints"], (title, stream)
        # the passes may fall in two minutes: a line's figure is the query's statistic over its points
        charts[title.split(": ", 1)[1]] = {
            s["dimensions"][by]: STATISTICS[query.function]([p["value"] for p in s["aggregatedDatapoints"]])
            for s in answer}
    assert charts["MLflow answers (1) or not (0)"] == {"tracking": 1, "serving": 1}
    assert charts["Requests a minute, by status class"] == {"2xx": 20, "4xx": 2, "5xx": 1}
    assert charts["Active runs"] == {"tracking": 2} and charts["Model versions"] == {"tracking": 2}
    assert charts["Refused logins a minute"] == {"tracking": 1, "serving": 0}
    assert charts["Throttled logins a minute"] == {"tracking": 1, "serving": 0}
    assert charts["Memory (bytes), by process"] == {"mlflow-tracking": 245_300_000, "nginx": 8388608}
    assert charts["Served model version"] == {"serving": 2}
    assert charts["Database size (bytes)"]["tracking"] > 100_000  # MySQL's figure for MLflow's schema
