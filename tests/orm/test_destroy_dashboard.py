"""`orm-pack destroy` and the dashboard the stack imports (stack/dashboard.tf): the provider's import resource sends
ImportDashboard on create, and its Delete does nothing, so a DESTROY job leaves the dashboard and its saved searches
(the Management Dashboard fake keeps that rule, tests/ormfake/managementdashboard.py). orm-pack deletes them after
the job, by the OCIDs the last apply's outputs name, also after a destroy made from the console; when it cannot, it
keeps the stack so that a second run can.

The stack here is the product's dashboard.tf and its two outputs, on a fixture that supplies what they read (and
the provider pin of the other fixture stacks)."""
import json
import re
import shutil

import oci
import pytest

from ormfake.testing import COMPARTMENT, TESTS_DIR

pytestmark = pytest.mark.terraform

REPO = TESTS_DIR.parent
STACK = "mlflow-dashboard"


@pytest.fixture
def source(tmp_path):
    root = tmp_path / "stack-dashboard"
    shutil.copytree(TESTS_DIR / "orm" / "fixtures" / "stack-dashboard", root)
    shutil.copy(REPO / "stack" / "dashboard.tf", root / "stack" / "dashboard.tf")
    shutil.copy(TESTS_DIR / "orm" / "fixtures" / "stack-data" / "stack" / "versions.tf", root / "stack" / "versions.tf")
    outputs = (REPO / "stack" / "outputs.tf").read_text()
    blocks = [re.search(rf'^output "{name}" {{\n.*?^}}\n', outputs, re.M | re.S).group(0)
              for name in ("dashboard_id", "dashboard_saved_search_ids")]
    (root / "stack" / "outputs.tf").write_text("\n".join(blocks))
    return root


@pytest.fixture
def applied(orm_pack, fake, source):
    result = orm_pack("apply", "--compartment", COMPARTMENT, "--stack-name", STACK, "--source", str(source),
                      "--auto-approve", "--json")
    assert result.code == 0, result
    outputs = json.loads(result.stdout)["outputs"]
    # the apply imported the dashboard and one saved search a widget, by the OCIDs the outputs name
    assert list(fake.dashboards.dashboards) == [outputs["dashboard_id"]]
    assert sorted(fake.dashboards.saved_searches) == sorted(outputs["dashboard_saved_search_ids"].split())
    assert len(fake.dashboards.saved_searches) == 14  # a VM deployment with a model endpoint
    return outputs


def _live_stacks(fake) -> list:
    return [s for s in fake.stacks.values() if s["displayName"] == STACK and s["lifecycleState"] != "DELETED"]


def _destroy(orm_pack, fake, *extra):
    return orm_pack("destroy", "--compartment", COMPARTMENT, "--stack-name", STACK, "--auto-approve",
                    "--management-dashboard-endpoint", fake.url, *extra)


def test_destroy_deletes_the_dashboard_the_destroy_job_leaves(orm_pack, fake, applied):
    result = _destroy(orm_pack, fake, "--json")
    assert result.code == 0, result
    document = json.loads(result.stdout)
    assert document["dashboard"] == {"id": applied["dashboard_id"], "deleted": 15,
                                     "saved_searches": applied["dashboard_saved_search_ids"].split()}
    assert fake.dashboards.dashboards == {} and fake.dashboards.saved_searches == {}
    assert f"Deleted dashboard {applied['dashboard_id']} and its 14 saved search(es)" in result.stderr
    assert document["stack_deleted"] and not _live_stacks(fake)
    # the dashboard went first: its tiles name the saved searches
    deletes = [path for method, path, _ in fake.requests if method == "DELETE" and "/20200901/" in path]
    assert deletes[0] == f"/20200901/managementDashboards/{applied['dashboard_id']}" and len(deletes) == 15


def test_after_a_destroy_from_the_console_orm_pack_destroy_still_deletes_it(orm_pack, fake, applied, oci_config):
    (stack,) = [s for s in fake.stacks.values() if s["displayName"] == STACK]
    rm = oci.resource_manager.ResourceManagerClient(oci.config.from_file(str(oci_config)), service_endpoint=fake.url)
    job = rm.create_job(oci.resource_manager.models.CreateJobDetails(
        stack_id=stack["id"], job_operation_details=oci.resource_manager.models.CreateDestroyJobOperationDetails(
            execution_plan_strategy="AUTO_APPROVED"))).data
    fake.wait_jobs()
    # what the console's destroy leaves: the job succeeded, the dashboard is still there
    assert rm.get_job(job.id).data.lifecycle_state == "SUCCEEDED"
    assert list(fake.dashboards.dashboards) == [applied["dashboard_id"]]
    result = _destroy(orm_pack, fake)
    assert result.code == 0, result
    assert fake.dashboards.dashboards == {} and fake.dashboards.saved_searches == {}


def test_a_refused_delete_keeps_the_stack_so_that_a_second_run_finishes(orm_pack, fake, applied):
    fake.add_fault(403, method="DELETE", path_contains="/managementDashboards/", code="NotAuthorized")
    refused = _destroy(orm_pack, fake)
    assert refused.code == 6, refused
    assert (f"the stack's resources are destroyed, but not its dashboard {applied['dashboard_id']} and its 14 saved "
            f"search(es): Management Dashboard answered 403 NotAuthorized for {applied['dashboard_id']}: ask for "
            "'manage management-dashboard-family' in the compartment. The stack is kept: run orm-pack destroy "
            "again to delete them, or delete the dashboard in the console (Observability & Management > "
            "Dashboards)") in refused.stderr
    assert _live_stacks(fake)
    assert list(fake.dashboards.dashboards) == [applied["dashboard_id"]]
    again = _destroy(orm_pack, fake)
    assert again.code == 0, again
    assert fake.dashboards.dashboards == {} and not _live_stacks(fake)


def test_import_dashboard_refuses_what_is_no_import_and_updates_by_ocid(fake, oci_config, applied):
    """The fake's own rules, through the SDK: a body that lacks what ManagementDashboardImportDetails requires is
    refused; an import of a known OCID updates it in place (a re-apply imports the same dashboard again)."""
    client = oci.management_dashboard.DashxApisClient(oci.config.from_file(str(oci_config)), service_endpoint=fake.url,
                                                      retry_strategy=oci.retry.NoneRetryStrategy())
    dashboard = client.get_management_dashboard(applied["dashboard_id"])
    assert dashboard.status == 200
    with pytest.raises(oci.exceptions.ServiceError) as refused:
        client.import_dashboard({"dashboards": [{"dashboardId": applied["dashboard_id"]}]})
    assert refused.value.status == 400 and "displayName: required" in refused.value.message
    again = {"dashboards": [dict(fake.dashboards.dashboards[applied["dashboard_id"]], displayName="renamed")]}
    client.import_dashboard(again)
    assert list(fake.dashboards.dashboards) == [applied["dashboard_id"]]
    assert client.get_management_dashboard(applied["dashboard_id"]).data.display_name == "renamed"
