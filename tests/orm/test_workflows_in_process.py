"""The deploy workflows (orm_pack/deploy/workflows.py) called in process against a scripted Resource
Manager: the order of the calls, what `confirm` is shown, and what a failed, declined or interrupted job
leaves behind, each in milliseconds. The same paths run end to end, through the real SDK and the Resource
Manager fake, in test_deploy_e2e.py and test_readme_deploy.py; this is the bottom of the pyramid.
"""
import inspect
from dataclasses import replace
from types import SimpleNamespace

import pytest

from harness.ocids import mint
from orm_pack.cloud.resource_manager import Job, LogLine, ResourceManager, Stack, StackOutput, StackResult
from orm_pack.deploy import workflows
from orm_pack.errors import ExitCode, UserError
from orm_pack.stack.archive import StackArtifact
from orm_pack.stack.declarations import Variable

COMPARTMENT = mint("compartment", "workflows")
AUTO = {"tenancy_ocid": mint("tenancy", "workflows"), "region": "us-ashburn-1", "compartment_ocid": COMPARTMENT,
        "current_user_ocid": mint("user", "workflows")}
DECLARED = {name: Variable(name, "string") for name in AUTO} | {
    "name_prefix": Variable("name_prefix", "string", "mlflow", True)}
ARTIFACT = StackArtifact(b"PK stack", "0" * 64, ("main.tf", "schema.yaml"), DECLARED, "test")
REQUEST = workflows.DeployRequest(COMPARTMENT, "mlflow", ARTIFACT, {"name_prefix": "team-a"}, AUTO)

CREATE_DB = {"address": "oci_mysql_mysql_db_system.mlflow", "type": "oci_mysql_mysql_db_system", "mode": "managed",
             "change": {"actions": ["create"]}}
REPLACE_DB = {**CREATE_DB, "change": {"actions": ["delete", "create"]}, "action_reason": "replace_because_cannot_update"}
NO_OP = {**CREATE_DB, "change": {"actions": ["no-op"]}}
DB_VALUES = {"shape_name": "MySQL.2", "data_storage_size_in_gb": 50}


class ScriptedResourceManager:
    """ResourceManager's methods the workflows call, answering from a script: the plan each PLAN job
    makes, how each operation's jobs end and what they log, the stack's state and outputs. Every call is
    recorded as (method, first argument or operation)."""

    def __init__(self, plan=(CREATE_DB,), ends=None, resources=(), outputs=(), interrupt=None):
        self.plan = {"resource_changes": list(plan), "planned_values": {"root_module": {"resources": [
            {"address": rc["address"], "type": rc["type"], "mode": "managed", "values": DB_VALUES}
            for rc in plan if rc["type"] == "oci_mysql_mysql_db_system" and "create" in rc["change"]["actions"]]}}}
        self.ends = {"PLAN": "SUCCEEDED", "APPLY": "SUCCEEDED", "DESTROY": "SUCCEEDED", **(ends or {})}
        self.resources = list(resources)
        self.output_values = [StackOutput(name, "string", value) for name, value in dict(outputs).items()]
        self.interrupt = interrupt          # the operation whose follow gets Ctrl-C
        self.stacks: dict[str, Stack] = {}
        self.jobs: list[Job] = []
        self.calls: list[tuple] = []

    # ---------------------------------------------------------------- stacks
    def find_stack(self, compartment_id, name):
        self.calls.append(("find_stack", name))
        return self.stacks.get(name)

    def ensure_stack(self, compartment_id, name, zip_data, zip_sha256, variables, terraform_version=None,
                     description=None, existing=None):
        self.calls.append(("ensure_stack", dict(variables)))
        stack = Stack(mint("ormstack", name), name, compartment_id, "ACTIVE", terraform_version, dict(variables))
        self.stacks[name] = stack
        return StackResult(stack, "updated" if existing else "created")

    def delete_stack(self, stack_id):
        self.calls.append(("delete_stack", stack_id))
        self.stacks = {name: s for name, s in self.stacks.items() if s.id != stack_id}

    def state_resources(self, stack_id):
        self.calls.append(("state_resources", stack_id))
        return list(self.resources)

    # ---------------------------------------------------------------- jobs
    def start_job(self, stack_id, operation, plan_job_id=None, display_name=None):
        self.calls.append(("start_job", operation, plan_job_id))
        job = Job(mint("ormjob", f"{operation}-{len(self.jobs)}"), stack_id, operation, "ACCEPTED")
        self.jobs.append(job)
        return job

    def follow_job(self, job_id, on_log=None, on_state=None, cursor=None):
        job = self.get_job(job_id)
        self.calls.append(("follow_job", job.operation))
        if self.interrupt == job.operation:
            raise KeyboardInterrupt
        for line in self._log(job):
            on_log(line)
        ended = replace(job, state=self.ends[job.operation],
                        failure="terraform exited 1" if self.ends[job.operation] == "FAILED" else None)
        self.jobs[self.jobs.index(job)] = ended
        on_state(ended)
        return ended

    def _log(self, job):
        return [LogLine(None, "INFO", f"{job.operation} line {n}") for n in range(1, 41)]

    def get_job(self, job_id):
        return next(job for job in self.jobs if job.id == job_id)

    def list_jobs(self, stack_id, limit=None):
        return [job for job in reversed(self.jobs) if job.stack_id == stack_id][:limit]

    def latest_job(self, stack_id, operation, state="SUCCEEDED"):
        self.calls.append(("latest_job", operation))
        return next((j for j in reversed(self.jobs) if j.operation == operation and j.state == state), None)

    def log_tail(self, job_id, lines=30):
        return [line.message for line in self._log(self.get_job(job_id))][-lines:]

    def all_logs(self, job_id):
        return self._log(self.get_job(job_id))

    def plan_json(self, job_id):
        return self.plan

    def outputs(self, job_id):
        self.calls.append(("outputs", self.get_job(job_id).operation))
        return list(self.output_values)


class RecordedEvents:
    def __init__(self):
        self.seen = []

    def message(self, text): self.seen.append(("message", text))
    def job_started(self, job): self.seen.append(("started", job.operation))
    def job_state(self, job): self.seen.append(("state", job.state))
    def job_log(self, line): self.seen.append(("log", line.message))
    def job_ended(self, job): self.seen.append(("ended", job.operation))
    def deleting(self, done, total): self.seen.append(("deleting", done, total))


def operations(rm):
    return [call[1] for call in rm.calls if call[0] == "start_job"]


def test_the_scripted_resource_manager_speaks_resource_managers_methods():
    """The script may only offer what ResourceManager has, with the same parameter names, so a
    workflow that passes here calls the real class the same way."""
    for name, method in inspect.getmembers(ScriptedResourceManager, inspect.isfunction):
        if name.startswith("_"):
            continue
        real = getattr(ResourceManager, name)
        assert list(inspect.signature(method).parameters) == list(inspect.signature(real).parameters), name


def test_apply_shows_the_plan_then_applies_that_very_plan_and_returns_the_outputs():
    rm, events, shown = ScriptedResourceManager(outputs={"mlflow_url": "https://192.0.2.7"}), RecordedEvents(), []
    result = workflows.apply(rm, REQUEST, events, confirm=lambda planned: shown.append(planned) or True)
    (planned,) = shown
    assert [c.address for c in planned.summary.changes] == ["oci_mysql_mysql_db_system.mlflow"]
    assert [line.address for line in planned.cost.lines] == ["oci_mysql_mysql_db_system.mlflow"]
    assert planned.cost.lines[0].monthly > 0  # the DB system is priced before anyone says yes
    plan_job = planned.job.id
    assert [c for c in rm.calls if c[0] == "start_job"] == [("start_job", "PLAN", None), ("start_job", "APPLY", plan_job)]
    assert result.job.state == "SUCCEEDED" and result.outputs[0].value == "https://192.0.2.7"
    sent = next(c[1] for c in rm.calls if c[0] == "ensure_stack")
    assert sent["name_prefix"] == "team-a" and sent["region"] == "us-ashburn-1"
    assert ("started", "PLAN") in events.seen and ("ended", "APPLY") in events.seen


def test_a_plan_that_changes_nothing_asks_nothing_and_shows_the_last_applys_outputs():
    rm = ScriptedResourceManager(plan=(NO_OP,), outputs={"mlflow_url": "https://192.0.2.7"})
    earlier = rm.start_job("stack", "APPLY")
    rm.jobs[0] = replace(earlier, state="SUCCEEDED")
    rm.calls.clear()
    result = workflows.apply(rm, REQUEST, RecordedEvents(), confirm=lambda planned: pytest.fail("asked"))
    assert operations(rm) == ["PLAN"]
    assert result.job.id == earlier.id and result.outputs[0].name == "mlflow_url"


def test_a_declined_plan_applies_nothing():
    rm = ScriptedResourceManager(plan=(REPLACE_DB,))
    shown = []
    with pytest.raises(UserError, match="cancelled: nothing was applied") as error:
        workflows.apply(rm, REQUEST, RecordedEvents(), confirm=lambda planned: shown.append(planned) or False)
    assert error.value.exit_code == ExitCode.ABORTED
    assert [c.address for c in shown[0].summary.data_at_risk] == ["oci_mysql_mysql_db_system.mlflow"]
    assert operations(rm) == ["PLAN"]


@pytest.mark.parametrize("failing", ["PLAN", "APPLY"])
def test_a_failed_job_stops_the_workflow_with_its_log_tail(failing):
    rm = ScriptedResourceManager(ends={failing: "FAILED"})
    with pytest.raises(workflows.JobFailed) as failure:
        workflows.apply(rm, REQUEST, RecordedEvents(), confirm=lambda planned: True)
    assert failure.value.tail == [f"{failing} line {n}" for n in range(11, 41)]  # the last 30 of 40
    assert f"{failing} job {failure.value.job.id} failed (terraform exited 1)" in str(failure.value)
    assert operations(rm) == ["PLAN", "APPLY"][:["PLAN", "APPLY"].index(failing) + 1]
    assert not [c for c in rm.calls if c[0] == "outputs"]


def test_ctrl_c_while_following_leaves_the_job_running_and_says_which():
    rm, events = ScriptedResourceManager(interrupt="APPLY"), RecordedEvents()
    with pytest.raises(workflows.Interrupted) as interrupted:
        workflows.apply(rm, REQUEST, events, confirm=lambda planned: True)
    assert interrupted.value.operation == "APPLY" and interrupted.value.job_id == rm.jobs[-1].id
    assert events.seen[-1] == ("ended", "APPLY")  # the spinner is stopped either way


def test_an_unknown_variable_is_refused_before_resource_manager_is_asked_anything():
    rm = ScriptedResourceManager()
    request = replace(REQUEST, given={"name_prefx": "team-a"})
    with pytest.raises(UserError, match="did you mean 'name_prefix'"):
        workflows.plan(rm, request, RecordedEvents())
    assert rm.calls == []


class FakeBucketClient:
    """The two Object Storage calls ArtifactBucket makes, over a list of object versions."""

    def __init__(self, names):
        self.versions = [SimpleNamespace(name=n, size=10, time_created=i, is_delete_marker=False, version_id=f"v{i}")
                         for i, n in enumerate(names)]
        self.deleted = []

    def list_object_versions(self, namespace, bucket, **kwargs):
        return SimpleNamespace(data=SimpleNamespace(items=list(self.versions)), next_page=None)

    def delete_object(self, namespace, bucket, name, version_id=None):
        self.deleted.append((name, version_id))


def _applied(rm):
    rm.stacks["mlflow"] = Stack(mint("ormstack", "mlflow"), "mlflow", COMPARTMENT, "ACTIVE")
    job = rm.start_job(rm.stacks["mlflow"].id, "APPLY")
    rm.jobs[-1] = replace(job, state="SUCCEEDED")
    rm.calls.clear()


def test_destroy_refuses_a_bucket_with_artifacts_before_asking_or_destroying():
    rm = ScriptedResourceManager(resources=["oci_mysql_mysql_db_system.mlflow"],
                                 outputs={"bucket_name": "mlflow-artifacts", "object_storage_namespace": "ns"})
    _applied(rm)
    bucket = FakeBucketClient(["1/model.pkl", "1/metrics.json"])
    with pytest.raises(workflows.BucketNotEmpty, match="holds 2 artifact file"):
        workflows.destroy(rm, COMPARTMENT, "mlflow", RecordedEvents(), confirm=lambda *_: pytest.fail("asked"),
                          client_for_bucket=lambda: bucket)
    assert operations(rm) == [] and not [c for c in rm.calls if c[0] == "delete_stack"] and bucket.deleted == []


def test_destroy_with_delete_artifacts_empties_the_bucket_before_the_destroy_job():
    rm = ScriptedResourceManager(resources=["oci_mysql_mysql_db_system.mlflow"],
                                 outputs={"bucket_name": "mlflow-artifacts", "object_storage_namespace": "ns"})
    _applied(rm)
    bucket, events, seen = FakeBucketClient(["1/model.pkl"]), RecordedEvents(), []
    result = workflows.destroy(rm, COMPARTMENT, "mlflow", events, confirm=lambda res, contents: seen.append(
        (res, contents.objects)) or True, client_for_bucket=lambda: bucket, delete_artifacts=True)
    assert seen == [(["oci_mysql_mysql_db_system.mlflow"], 1)]
    assert bucket.deleted == [("1/model.pkl", "v0")]
    assert events.seen.index(("deleting", 1, 1)) < events.seen.index(("started", "DESTROY"))
    assert operations(rm) == ["DESTROY"] and rm.calls[-1][0] == "delete_stack"
    assert result.artifacts_deleted == 1 and result.stack_deleted


def test_destroy_of_an_empty_stack_kept_asks_nothing_and_starts_no_job():
    rm = ScriptedResourceManager(resources=())
    _applied(rm)
    result = workflows.destroy(rm, COMPARTMENT, "mlflow", RecordedEvents(), confirm=lambda *_: pytest.fail("asked"),
                               keep_stack=True)
    assert operations(rm) == [] and result.job is None and not result.stack_deleted


@pytest.mark.parametrize("compartment, job, message", [
    (None, None, "pass JOB or --compartment"),
    (COMPARTMENT, None, "no orm-pack stack named 'mlflow'"),
])
def test_outputs_says_what_to_pass_or_do(compartment, job, message):
    with pytest.raises(UserError, match=message):
        workflows.outputs(ScriptedResourceManager(), compartment, "mlflow", job)


def test_outputs_of_a_plan_job_are_refused():
    rm = ScriptedResourceManager()
    plan_job = rm.start_job("stack", "PLAN")
    with pytest.raises(UserError, match="outputs come from a succeeded APPLY job") as error:
        workflows.outputs(rm, None, "mlflow", plan_job.id)
    assert error.value.exit_code == ExitCode.USAGE
