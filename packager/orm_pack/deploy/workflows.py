"""Deploy workflows over Resource Manager: plan, apply, destroy, outputs, logs, status.

Plain functions that return dataclasses and never print: what happens while they run goes to an
`Events` object, and questions go to a `confirm` callback, so tests call them in-process and the CLI
renders the same results for people (rich) and for scripts (--json).

    result = deploy.apply(rm, request, events, confirm=lambda plan: True)
    result.plan.summary.data_at_risk, result.plan.cost.total, result.outputs
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

from orm_pack.cloud import ocids
from orm_pack.cloud.artifact_bucket import ArtifactBucket, BucketContents
from orm_pack.cloud.dashboards import StackDashboard
from orm_pack.cloud.resource_manager import TERRAFORM_VERSION, Job, LogCursor, LogLine, ResourceManager, Stack, StackOutput, StackResult
from orm_pack.deploy.cost import CostEstimate, estimate_plan
from orm_pack.deploy.plan_review import PlanSummary
from orm_pack.errors import ExitCode, UserError
from orm_pack.stack import inputs
from orm_pack.stack.archive import StackArtifact

LOG_TAIL_LINES = 30


class Events(Protocol):
    """What a workflow reports while it runs."""

    def message(self, text: str) -> None: ...
    def job_started(self, job: Job) -> None: ...
    def job_state(self, job: Job) -> None: ...
    def job_log(self, line: LogLine) -> None: ...
    def job_ended(self, job: Job) -> None: ...
    def deleting(self, done: int, total: int) -> None: ...


class JobFailed(UserError):
    """A Resource Manager job ended FAILED or CANCELED; `tail` holds its last log lines."""

    def __init__(self, job: Job, tail: list[str]):
        super().__init__(f"{job.operation} job {job.id} {job.state.lower()}"
                         + (f" ({job.failure})" if job.failure else "") + f"; full log: orm-pack logs {job.id}",
                         ExitCode.FAILURE)
        self.job, self.tail = job, tail


class Interrupted(Exception):
    """Ctrl-C while following a job: the job goes on in Resource Manager."""

    def __init__(self, job_id: str, operation: str):
        super().__init__(job_id)
        self.job_id, self.operation = job_id, operation


@dataclass(frozen=True)
class DeployRequest:
    compartment: str
    stack_name: str
    artifact: StackArtifact
    given: dict                      # variables the user gave (environment, var-files, --var)
    auto: dict                       # tenancy_ocid, region, compartment_ocid, current_user_ocid
    terraform_version: str = TERRAFORM_VERSION


@dataclass(frozen=True)
class PlanResult:
    stack: StackResult
    job: Job
    summary: PlanSummary
    cost: CostEstimate


@dataclass(frozen=True)
class ApplyResult:
    plan: PlanResult
    job: Job | None                  # None: nothing to change and never applied
    outputs: list[StackOutput]


@dataclass(frozen=True)
class DestroyResult:
    stack: Stack
    job: Job | None
    destroyed: list[str]
    stack_deleted: bool
    artifacts: BucketContents | None = None   # what the bucket held before the destroy
    artifacts_deleted: int = 0                # object versions deleted first (--delete-artifacts)
    dashboard: StackDashboard | None = None   # the dashboard the last apply named, deleted after the job
    dashboard_deleted: int = 0                # how many of it (dashboard, saved searches) were deleted now


class BucketNotEmpty(UserError):
    """The artifact bucket holds data and the user did not ask to delete it."""

    def __init__(self, contents: BucketContents):
        super().__init__(
            f"{contents.describe()}. Object Storage does not delete a bucket that is not empty, so the destroy "
            "would stop halfway, with the database already gone. Copy the artifacts out first "
            f"({contents.copy_out_command()}), then run orm-pack destroy --delete-artifacts, which deletes every "
            "object version before the DESTROY job", ExitCode.CONFLICT)
        self.contents = contents


@dataclass(frozen=True)
class OutputsResult:
    job: Job
    outputs: list[StackOutput]


@dataclass(frozen=True)
class LogsResult:
    job: Job
    lines: list[LogLine]
    followed: bool


@dataclass(frozen=True)
class StatusResult:
    stack: Stack
    jobs: list[Job]


# ------------------------------------------------------------------ jobs
def follow(rm: ResourceManager, job: Job, events: Events) -> Job:
    """Stream a job's log until it ends; Ctrl-C raises Interrupted and leaves the job running."""
    events.job_started(job)
    try:
        job = rm.follow_job(job.id, on_log=events.job_log, on_state=events.job_state, cursor=LogCursor())
    except KeyboardInterrupt:
        raise Interrupted(job.id, job.operation) from None
    finally:
        events.job_ended(job)
    return job


def require_success(rm: ResourceManager, job: Job) -> Job:
    if job.state != "SUCCEEDED":
        raise JobFailed(job, rm.log_tail(job.id, LOG_TAIL_LINES))
    return job


def stack_or_error(rm: ResourceManager, compartment: str, stack_name: str, hint: str) -> Stack:
    stack = rm.find_stack(ocids.compartment(compartment), stack_name)
    if stack is None:
        raise UserError(f"no orm-pack stack named {stack_name!r} in {compartment}{hint}", ExitCode.NOT_FOUND)
    return stack


# ------------------------------------------------------------------ workflows
def upload(rm: ResourceManager, request: DeployRequest, events: Events) -> StackResult:
    """Find or create the stack and bring its zip and variables up to date."""
    ocids.compartment(request.compartment)
    inputs.check_given(request.artifact.declared, request.given)
    existing = rm.find_stack(request.compartment, request.stack_name)
    values = inputs.resolve(request.artifact.declared, request.given, request.auto,
                               existing.variables if existing else None)
    result = rm.ensure_stack(request.compartment, request.stack_name, request.artifact.data,
                             request.artifact.sha256, values, terraform_version=request.terraform_version,
                             existing=existing)
    detail = f" ({', '.join(result.changes)})" if result.changes else ""
    events.message(f"Stack {result.stack.name} {result.stack.id}: {result.action}{detail}")
    return result


def plan(rm: ResourceManager, request: DeployRequest, events: Events) -> PlanResult:
    stack = upload(rm, request, events)
    job = require_success(rm, follow(rm, rm.start_job(stack.stack.id, "PLAN"), events))
    plan_json = rm.plan_json(job.id)
    return PlanResult(stack, job, PlanSummary.from_plan(plan_json), estimate_plan(plan_json))


def apply(rm: ResourceManager, request: DeployRequest, events: Events,
          confirm: Callable[[PlanResult], bool]) -> ApplyResult:
    """Plan; when it changes something, ask `confirm` (which sees the whole plan, data at risk and cost
    included), apply that very plan and return the outputs."""
    planned = plan(rm, request, events)
    if planned.summary.no_changes:
        job = rm.latest_job(planned.stack.stack.id, "APPLY")
    else:
        if not confirm(planned):
            raise UserError("cancelled: nothing was applied", ExitCode.ABORTED)
        job = rm.start_job(planned.stack.stack.id, "APPLY", plan_job_id=planned.job.id)
        job = require_success(rm, follow(rm, job, events))
    return ApplyResult(planned, job, rm.outputs(job.id) if job else [])


def latest_outputs(rm: ResourceManager, stack: Stack) -> dict:
    """The outputs of the stack's latest apply, by name (empty before any)."""
    job = rm.latest_job(stack.id, "APPLY")
    return {o.name: o.value for o in rm.outputs(job.id)} if job else {}


def artifact_bucket(outputs: dict, client_for_bucket) -> ArtifactBucket | None:
    """The stack's artifact bucket, from the outputs of its latest apply (None before any)."""
    if not outputs.get("bucket_name") or not outputs.get("object_storage_namespace"):
        return None
    return ArtifactBucket(client_for_bucket(), outputs["object_storage_namespace"], outputs["bucket_name"])


def destroy(rm: ResourceManager, compartment: str, stack_name: str, events: Events,
            confirm: Callable[[list[str], BucketContents | None], bool], keep_stack: bool = False,
            client_for_bucket=None, delete_artifacts: bool = False,
            client_for_dashboards=None) -> DestroyResult:
    """Destroy what the stack manages, then delete the stack. The artifact bucket is looked at first:
    when it holds data, stop unless `delete_artifacts`, and then empty it (after `confirm`, which sees
    the resources and the bucket's contents) before the DESTROY job. After the job, the dashboard the
    provider leaves behind is deleted; when that fails the stack is kept, to try again."""
    stack = stack_or_error(rm, compartment, stack_name, ": nothing to destroy")
    resources = rm.state_resources(stack.id)
    outputs = latest_outputs(rm, stack) if client_for_bucket or client_for_dashboards else {}
    bucket = artifact_bucket(outputs, client_for_bucket) if resources and client_for_bucket else None
    dashboard = StackDashboard.from_outputs(outputs) if client_for_dashboards else None
    contents = bucket.contents() if bucket else None
    if contents and not contents.empty and not delete_artifacts:
        raise BucketNotEmpty(contents)
    if (resources or not keep_stack) and not confirm(resources, contents):
        raise UserError("cancelled: nothing was destroyed", ExitCode.ABORTED)
    deleted = 0
    if contents and not contents.empty:
        deleted = bucket.empty(events.deleting)
        events.message(f"Deleted {deleted} object version(s) from bucket {contents.bucket}")
    job = None
    if resources:
        job = require_success(rm, follow(rm, rm.start_job(stack.id, "DESTROY"), events))
    dashboard_deleted = 0
    if dashboard:
        dashboard_deleted = dashboard.delete(client_for_dashboards())
        events.message(f"Deleted {dashboard.describe()}" if dashboard_deleted
                       else f"The {dashboard.describe()} were already gone")
    if not keep_stack:
        rm.delete_stack(stack.id)
        events.message(f"Deleted stack {stack.name} {stack.id}")
    return DestroyResult(stack, job, resources, not keep_stack, contents, deleted, dashboard, dashboard_deleted)


def outputs(rm: ResourceManager, compartment: str | None, stack_name: str, job_id: str | None) -> OutputsResult:
    if job_id:
        job = rm.get_job(ocids.job(job_id))
        if job.operation != "APPLY" or job.state != "SUCCEEDED":
            raise UserError(f"job {job.id} is a {job.state} {job.operation} job: outputs come from a succeeded "
                            "APPLY job", ExitCode.USAGE)
    else:
        if not compartment:
            raise UserError("pass JOB or --compartment (and --stack-name) to pick the stack", ExitCode.USAGE)
        stack = stack_or_error(rm, compartment, stack_name, ": run orm-pack apply")
        job = rm.latest_job(stack.id, "APPLY")
        if job is None:
            raise UserError(f"stack {stack.name} has no successful apply yet: run orm-pack apply", ExitCode.NOT_FOUND)
    return OutputsResult(job, rm.outputs(job.id))


def logs(rm: ResourceManager, job_id: str, events: Events, follow_job: bool = False) -> LogsResult:
    job = rm.get_job(ocids.job(job_id))
    if follow_job and not job.done:
        return LogsResult(follow(rm, job, events), [], True)
    return LogsResult(job, rm.all_logs(job.id), False)


def status(rm: ResourceManager, compartment: str, stack_name: str, jobs: int = 10) -> StatusResult:
    stack = stack_or_error(rm, compartment, stack_name, "")
    return StatusResult(stack, rm.list_jobs(stack.id, limit=max(jobs, 1))[:jobs])
