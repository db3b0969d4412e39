"""Resource Manager's IMPORT_TF_STATE job in the fake, through the real SDK: after a DB system is restored from
a backup, `orm-pack upgrade` makes the stack's Terraform state take the restored system over by importing a
state (CreateJob, jobOperationDetails CreateImportTfStateJobOperationDetails with tfStateBase64Encoded). The
imported state becomes the stack's: GetJobTfState and the stack's state return it, and the next plan starts
from it."""
import base64
import io
import json
import zipfile

import oci
import pytest

from ormfake.testing import COMPARTMENT

CONFIG = 'resource "terraform_data" "database" {\n  input = "restored"\n}\n'


def _client(oci_config, fake):
    config = oci.config.from_file(str(oci_config))
    return oci.resource_manager.ResourceManagerClient(config, service_endpoint=fake.url,
                                                       retry_strategy=oci.retry.NoneRetryStrategy())


def _stack(rm, name: str, main_tf: str = CONFIG) -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("main.tf", main_tf)
    details = oci.resource_manager.models.CreateStackDetails(
        compartment_id=COMPARTMENT, display_name=name, terraform_version="1.5.x",
        config_source=oci.resource_manager.models.CreateZipUploadConfigSourceDetails(
            zip_file_base64_encoded=base64.b64encode(buffer.getvalue()).decode()))
    return rm.create_stack(details).data.id


def _job(rm, stack_id: str, operation_details) -> oci.resource_manager.models.Job:
    job = rm.create_job(oci.resource_manager.models.CreateJobDetails(
        stack_id=stack_id, job_operation_details=operation_details)).data
    return oci.wait_until(rm, rm.get_job(job.id), evaluate_response=lambda r: r.data.lifecycle_state in (
        "SUCCEEDED", "FAILED", "CANCELED"), max_wait_seconds=300, max_interval_seconds=0.2).data


def _import(rm, stack_id: str, state: bytes):
    return _job(rm, stack_id, oci.resource_manager.models.CreateImportTfStateJobOperationDetails(
        tf_state_base64_encoded=base64.b64encode(state).decode()))


def _state(serial: int = 7, resources=None) -> bytes:
    return json.dumps({"version": 4, "terraform_version": "1.5.7", "serial": serial,
                       "lineage": "0b1c3c1e-5c1d-4b8a-9d6e-restored", "outputs": {},
                       "resources": resources or []}, indent=2).encode()


def test_an_imported_state_becomes_the_stacks_state(fake, oci_config):
    rm = _client(oci_config, fake)
    stack_id = _stack(rm, "mlflow-restored")
    job = _import(rm, stack_id, _state())
    assert (job.lifecycle_state, job.operation, job.job_operation_details.operation) == (
        "SUCCEEDED", "IMPORT_TF_STATE", "IMPORT_TF_STATE")
    assert rm.get_job_tf_state(job.id).data.content == _state()
    assert rm.get_stack_tf_state(stack_id).data.content == _state()
    log = rm.get_job_logs_content(job.id).data
    assert "Imported Terraform state: serial 7, lineage 0b1c3c1e-5c1d-4b8a-9d6e-restored, 0 resource(s)" in log
    later = _import(rm, stack_id, _state(serial=8))
    assert rm.get_job_tf_state(later.id).data.content == _state(serial=8)
    assert rm.get_job_tf_state(job.id).data.content == _state()  # each job keeps the state it left


def test_a_file_that_is_not_a_terraform_state_fails_the_job_and_keeps_the_old_state(fake, oci_config):
    rm = _client(oci_config, fake)
    stack_id = _stack(rm, "mlflow-restored")
    _import(rm, stack_id, _state())
    for bad, words in [(b"{not json", "could not be parsed as JSON"),
                       (json.dumps({"serial": 1}).encode(), 'does not have a "version" attribute'),
                       (json.dumps({"version": 3, "serial": 1}).encode(), "format version 3"),
                       (json.dumps({"version": 4, "serial": "one", "lineage": "x", "terraform_version": "1.5.7",
                                    "resources": []}).encode(), "serial")]:
        job = _import(rm, stack_id, bad)
        assert job.lifecycle_state == "FAILED" and job.failure_details.code == "TERRAFORM_EXECUTION_ERROR", bad
        assert words in rm.get_job_logs_content(job.id).data, bad
    assert rm.get_stack_tf_state(stack_id).data.content == _state()


def test_an_import_without_base64_state_is_refused(fake, oci_config):
    rm = _client(oci_config, fake)
    stack_id = _stack(rm, "mlflow-restored")
    with pytest.raises(oci.exceptions.ServiceError) as caught:
        rm.create_job(oci.resource_manager.models.CreateJobDetails(
            stack_id=stack_id, job_operation_details=oci.resource_manager.models.CreateImportTfStateJobOperationDetails(
                tf_state_base64_encoded="not base64 at all!")))
    assert (caught.value.status, caught.value.code) == (400, "InvalidParameter")


@pytest.mark.terraform
def test_the_next_plan_starts_from_the_imported_state(fake, oci_config):
    """A state applied on one stack, imported into a new stack of the same configuration: the new stack's plan
    changes nothing, where a stack without it would create the resource."""
    rm = _client(oci_config, fake)
    applied_stack = _stack(rm, "mlflow-original")
    applied = _job(rm, applied_stack, oci.resource_manager.models.CreateApplyJobOperationDetails(
        execution_plan_strategy="AUTO_APPROVED"))
    assert applied.lifecycle_state == "SUCCEEDED", rm.get_job_logs_content(applied.id).data
    state = rm.get_job_tf_state(applied.id).data.content
    assert json.loads(state)["resources"][0]["type"] == "terraform_data"

    def planned_actions(stack_id):
        plan = _job(rm, stack_id, oci.resource_manager.models.CreatePlanJobOperationDetails())
        assert plan.lifecycle_state == "SUCCEEDED", rm.get_job_logs_content(plan.id).data
        document = json.loads(rm.get_job_tf_plan(plan.id, tf_plan_format="JSON").data.content)
        return [change["change"]["actions"] for change in document.get("resource_changes", [])]

    assert planned_actions(_stack(rm, "mlflow-empty")) == [["create"]]
    taken_over = _stack(rm, "mlflow-restored")
    assert _import(rm, taken_over, state).lifecycle_state == "SUCCEEDED"
    assert planned_actions(taken_over) == [["no-op"]]
