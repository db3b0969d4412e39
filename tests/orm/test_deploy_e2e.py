"""A user deploys MLflow from a terminal: `orm-pack apply` against Resource Manager (the fake, with the
real oci SDK, real Terraform and the provider double), then re-applies, reads outputs, destroys."""
import json

import pytest

from ormfake.testing import COMPARTMENT, FIXTURE_SOURCE

pytestmark = pytest.mark.terraform

STACK = "mlflow-e2e"


@pytest.fixture
def orm_pack(orm_pack_process):
    """The user's path end to end: orm-pack in a process of its own, as a terminal runs it."""
    return orm_pack_process


def test_apply_reapply_outputs_destroy(orm_pack, fake):
    common = ("--compartment", COMPARTMENT, "--stack-name", STACK, "--source", str(FIXTURE_SOURCE))

    # 1. first apply: the stack is created (tagged as ours), planned, applied; outputs printed
    first = orm_pack("apply", *common, "--auto-approve", "--var", "allowed_ingress_cidrs=[\"10.0.0.0/8\"]")
    assert first.code == 0, first
    stacks = [s for s in fake.stacks.values() if s["displayName"] == STACK]
    assert len(stacks) == 1, fake.stacks
    stack = stacks[0]
    assert stack["freeformTags"]["managed-by"] == "orm-pack"
    assert stack["terraformVersion"] == "1.5.x"  # the only version Resource Manager runs
    assert len(stack["freeformTags"]["orm-pack-zip-sha256"]) == 64
    assert stack["variables"]["compartment_ocid"] == COMPARTMENT            # filled like the console does
    assert stack["variables"]["tenancy_ocid"].startswith("ocid1.tenancy.")
    assert stack["variables"]["current_user_ocid"].startswith("ocid1.user.")
    assert stack["variables"]["region"] == "us-phoenix-1"
    assert stack["variables"]["allowed_ingress_cidrs"] == '["10.0.0.0/8"]'  # lists go as JSON
    assert f"Stack {STACK} {stack['id']}: created" in first.stderr + first.stdout
    assert "Plan: 3 to add, 0 to change, 0 to destroy." in first.stdout
    jobs = sorted(fake.jobs.values(), key=lambda j: j["timeCreated"])
    assert [(j["operation"], j["lifecycleState"]) for j in jobs] == [("PLAN", "SUCCEEDED"), ("APPLY", "SUCCEEDED")]
    plan_job, apply_job = jobs
    assert apply_job["jobOperationDetails"] == {"operation": "APPLY", "executionPlanStrategy": "FROM_PLAN_JOB_ID",
                                                "executionPlanJobId": plan_job["id"]}
    # live logs: Terraform's own lines were streamed, each once
    assert "Apply complete! Resources: 3 added, 0 changed, 0 destroyed." in first.stdout
    assert first.stdout.count("Apply complete!") == 1
    assert first.stdout.count("Plan: 3 to add") == 2  # Terraform's plan line + our summary line
    outputs = {o["outputName"]: o["outputValue"] for o in fake.job_outputs[apply_job["id"]]}
    assert f"MLflow: {outputs['mlflow_url']}" in first.stdout
    assert outputs["tracking_public_ip"] in first.stdout and outputs["serving_public_ip"] in first.stdout
    assert "commands.txt on the tracking VM" in first.stdout and "commands.txt on the serving VM" in first.stdout
    assert "sudo journalctl -u mlflow-tracking -f" in first.stdout
    assert "sudo journalctl -u mlflow-serving -f" in first.stdout

    # 2. the same inputs again: nothing uploaded, no changes, no apply job, same outputs
    second = orm_pack("apply", *common, "--auto-approve")
    assert second.code == 0, second
    assert f"Stack {STACK} {stack['id']}: unchanged" in second.stdout
    assert "No changes" in second.stdout
    assert [j["operation"] for j in fake.jobs.values()].count("APPLY") == 1
    assert f"MLflow: {outputs['mlflow_url']}" in second.stdout

    # 3. outputs --json for scripts
    result = orm_pack("outputs", "--compartment", COMPARTMENT, "--stack-name", STACK, "--json")
    assert result.code == 0, result
    document = json.loads(result.stdout)
    assert document["job_id"] == apply_job["id"]
    assert document["outputs"]["mlflow_url"] == outputs["mlflow_url"]
    assert document["outputs"]["commands_serving"].startswith("# serving VM")

    # 4. status and logs are read-only views
    status = orm_pack("status", "--compartment", COMPARTMENT, "--stack-name", STACK, "--json")
    assert status.code == 0, status
    status_doc = json.loads(status.stdout)
    assert status_doc["stack"]["id"] == stack["id"]
    assert [j["operation"] for j in status_doc["jobs"]][:3] == ["PLAN", "APPLY", "PLAN"]
    logs = orm_pack("logs", apply_job["id"])
    assert logs.code == 0, logs
    assert logs.stdout.splitlines() == [e["message"] for e in fake.job_logs[apply_job["id"]]]

    # 5. destroy: resources destroyed, then the stack deleted
    gone = orm_pack("destroy", "--compartment", COMPARTMENT, "--stack-name", STACK, "--auto-approve", "--json")
    assert gone.code == 0, gone
    gone_doc = json.loads(gone.stdout)
    assert sorted(gone_doc["destroyed"]) == ["oci_core_instance.serving[0]", "oci_core_instance.tracking",
                                              "oci_core_vcn.mlflow"]
    assert "Destroy complete! Resources: 3 destroyed." in gone.stderr
    state = json.loads(fake.stack_state_file(stack["id"]).read_text())
    assert state["resources"] == []
    assert fake.stacks[stack["id"]]["lifecycleState"] == "DELETED"
    after = orm_pack("status", "--compartment", COMPARTMENT, "--stack-name", STACK)
    assert after.code == 4, after
    assert f"no orm-pack stack named '{STACK}'" in after.stderr
