"""Drive Resource Manager through the `oci` SDK: stacks, jobs, logs, plans, outputs.

The SDK client is passed in (tests hand one pointed at the local fake):

    rm = ResourceManager(client)
    result = rm.ensure_stack(compartment, "mlflow", zip_bytes, sha256, variables)
    plan = rm.start_job(result.stack.id, "PLAN")
    plan = rm.follow_job(plan.id, on_log=print)
    plan_json = rm.plan_json(plan.id)
    apply = rm.follow_job(rm.start_job(result.stack.id, "APPLY", plan_job_id=plan.id).id, on_log=print)
    rm.outputs(apply.id)

Nothing here prints or exits: errors the user can act on are UserError (see translate_service_error).
"""
from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable

from orm_pack.errors import ExitCode, UserError

if TYPE_CHECKING:
    import oci

# The SDK (about 0.3 s to import) loads inside the methods that call it, so commands that never talk to
# OCI (build, local, doctor, --help) start quickly.

TAG_MANAGED_BY = "managed-by"
MANAGED_BY = "orm-pack"
TAG_ZIP_SHA256 = "orm-pack-zip-sha256"
TERMINAL_STATES = ("SUCCEEDED", "FAILED", "CANCELED")
# Resource Manager creates no stack and runs no job on a Terraform older than 1.5.x any more ("Supported
# Terraform Versions", docs.oracle.com/en-us/iaas/Content/ResourceManager/Reference/terraformversions.htm).
TERRAFORM_VERSION = "1.5.x"
OLDEST_TERRAFORM = (1, 5)
GONE_STACK_STATES = ("DELETING", "DELETED")


def terraform_version(value: str) -> str:
    """`value` (e.g. 1.5.x) when Resource Manager still runs it; else a UserError that says which to use."""
    match = re.fullmatch(r"(\d+)\.(\d+)\.x", value or "")
    if not match:
        raise UserError(f"--terraform-version {value!r} is not a Resource Manager Terraform version such as "
                        f"{TERRAFORM_VERSION}", ExitCode.USAGE)
    if (int(match[1]), int(match[2])) < OLDEST_TERRAFORM:
        raise UserError(f"--terraform-version {value}: Resource Manager no longer creates stacks or runs jobs on "
                        f"Terraform older than {TERRAFORM_VERSION}; use {TERRAFORM_VERSION}", ExitCode.USAGE)
    return value


@dataclass(frozen=True)
class Stack:
    id: str
    name: str
    compartment_id: str
    state: str
    terraform_version: str | None = None
    variables: dict = field(default_factory=dict)
    freeform_tags: dict = field(default_factory=dict)
    time_created: datetime | None = None

    @property
    def managed(self) -> bool:
        return self.freeform_tags.get(TAG_MANAGED_BY) == MANAGED_BY

    @property
    def zip_sha256(self) -> str | None:
        return self.freeform_tags.get(TAG_ZIP_SHA256)

    @classmethod
    def from_sdk(cls, data) -> "Stack":
        return cls(
            id=data.id, name=data.display_name, compartment_id=data.compartment_id, state=data.lifecycle_state,
            terraform_version=data.terraform_version, variables=dict(getattr(data, "variables", None) or {}),
            freeform_tags=dict(data.freeform_tags or {}), time_created=data.time_created,
        )


@dataclass(frozen=True)
class Job:
    id: str
    stack_id: str
    operation: str
    state: str
    time_created: datetime | None = None
    time_finished: datetime | None = None
    failure: str | None = None

    @property
    def done(self) -> bool:
        return self.state in TERMINAL_STATES

    @classmethod
    def from_sdk(cls, data) -> "Job":
        failure = getattr(data, "failure_details", None)
        return cls(
            id=data.id, stack_id=data.stack_id, operation=data.operation, state=data.lifecycle_state,
            time_created=data.time_created, time_finished=data.time_finished,
            failure=(f"{failure.code}: {failure.message}" if failure and (failure.code or failure.message) else None),
        )


@dataclass(frozen=True)
class LogLine:
    timestamp: datetime | None
    level: str
    message: str


@dataclass
class LogCursor:
    """Where a log stream stands: the newest timestamp seen and how many lines carried it, so a
    page re-read from that timestamp yields no duplicates."""

    timestamp: datetime | None = None
    seen_at_timestamp: int = 0


@dataclass(frozen=True)
class StackOutput:
    name: str
    type: str
    value: Any
    sensitive: bool = False
    description: str = ""

    @classmethod
    def from_sdk(cls, data) -> "StackOutput":
        value: Any = data.output_value
        if isinstance(value, str) and (data.output_type or "string").lower() not in ("string", "str"):
            try:
                value = json.loads(value)
            except ValueError:
                pass
        return cls(name=data.output_name, type=data.output_type or "string", value=value,
                   sensitive=bool(data.is_sensitive), description=data.description or "")


@dataclass(frozen=True)
class StackResult:
    stack: Stack
    action: str            # "created", "updated" or "unchanged"
    changes: tuple = ()    # what an update changed: "configuration", "variables", "terraform version"


# The SDK's target_service of each client the package makes (cloud/ociconfig.CLIENTS), as people name it.
SERVICE_NAMES = {"resource_manager": "Resource Manager", "object_storage": "Object Storage",
                 "container_engine": "Container Engine", "secrets": "Vault", "db_backups": "MySQL HeatWave", "db_system": "MySQL HeatWave",
                 "compute_instance_agent": "Run Command"}


def translate_service_error(error: oci.exceptions.ServiceError, credentials: str) -> UserError:
    """A ServiceError the SDK gave up on -> one actionable line with a distinct exit code, naming the
    service that answered. `credentials` says where the key comes from (OciContext.describe())."""
    status, code = error.status, error.code
    message = (error.message or "").strip().rstrip(".")
    op = getattr(error, "operation_name", None) or "request"
    service = SERVICE_NAMES.get(getattr(error, "target_service", None) or "resource_manager", "OCI")
    if status == 401:
        return UserError(
            f"{service} rejected the request signature (401 {code}): check user, fingerprint, key_file "
            f"and tenancy in {credentials}; the key must be the API key uploaded for that user", ExitCode.CONFIG)
    if status == 404:
        return UserError(f"{op}: not found or not authorized (404 {code}): {message}; check the OCID and your "
                         "IAM policies", ExitCode.NOT_FOUND)
    if status == 409:
        hint = "; another job may be running: see `orm-pack status`" if service == "Resource Manager" else ""
        return UserError(f"{op}: {service} refused because of the resource's state (409 {code}): {message}{hint}",
                         ExitCode.CONFLICT)
    if status == 429:
        return UserError(f"{op}: throttled by {service} (429 {code}) after retries; try again in a minute",
                         ExitCode.SERVICE)
    if status >= 500:
        return UserError(f"{op}: {service} failed ({status} {code}): {message}; try again later", ExitCode.SERVICE)
    return UserError(f"{op}: {service} rejected the request ({status} {code}): {message}", ExitCode.USAGE)


def all_pages(list_call, *args, max_items: int | None = None, **kwargs) -> list:
    """Every item of a paged list call, following opc-next-page. (oci.pagination's helpers wrap each
    call in DEFAULT_RETRY_STRATEGY whatever the client's strategy is, so they are not used here.)
    `max_items` stops after that many items."""
    items: list = []
    page = None
    while True:
        response = list_call(*args, page=page, **kwargs) if page else list_call(*args, **kwargs)
        data = response.data
        items.extend(data if isinstance(data, list) else (data.items or []))
        page = response.next_page
        if not page or (max_items is not None and len(items) >= max_items):
            return items[:max_items] if max_items is not None else items


class ResourceManager:
    """Stacks and jobs of Resource Manager, over a ResourceManagerClient."""

    def __init__(self, client, poll_seconds: float = 5.0, max_wait_seconds: float = 6 * 3600, page_size: int = 100):
        self.client = client
        self.poll_seconds = poll_seconds
        self.max_wait_seconds = max_wait_seconds
        self.page_size = page_size

    # ---------------------------------------------------------------- stacks
    def find_stack(self, compartment_id: str, name: str) -> Stack | None:
        """The orm-pack stack called `name` in the compartment, or None. list_stacks cannot filter by
        tag, so the freeform tag is checked here."""
        import oci
        try:
            summaries = all_pages(self.client.list_stacks, compartment_id=compartment_id, display_name=name,
                                  limit=self.page_size)
        except oci.exceptions.ServiceError as exc:
            if exc.status == 404:
                raise UserError(f"compartment {compartment_id} not found, or you may not use it (404 {exc.code}): "
                                "check --compartment and your IAM policies", ExitCode.NOT_FOUND) from None
            raise
        matches = [Stack.from_sdk(s) for s in summaries
                   if s.display_name == name and s.lifecycle_state not in GONE_STACK_STATES]
        ours = [s for s in matches if s.managed]
        if len(ours) > 1:
            raise UserError(f"{len(ours)} orm-pack stacks are named {name!r} in {compartment_id} "
                            f"({', '.join(s.id for s in ours)}): delete the extra ones", ExitCode.CONFLICT)
        if not ours and matches:
            raise UserError(f"stack {name!r} ({matches[0].id}) exists in the compartment but was not created by "
                            "orm-pack; pass another --stack-name", ExitCode.CONFLICT)
        return self.get_stack(ours[0].id) if ours else None

    def get_stack(self, stack_id: str) -> Stack:
        return Stack.from_sdk(self.client.get_stack(stack_id).data)

    def ensure_stack(self, compartment_id: str, name: str, zip_data: bytes, zip_sha256: str,
                     variables: dict[str, str], terraform_version: str = TERRAFORM_VERSION,
                     description: str = "MLflow on OCI, managed by orm-pack", existing: Any = ...) -> StackResult:
        """Find the stack by name or create it; upload the zip only when its sha256 changed.
        `existing`: the result of find_stack when the caller already has it."""
        from oci.resource_manager import models
        if existing is ...:
            existing = self.find_stack(compartment_id, name)
        encoded = base64.b64encode(zip_data).decode("ascii")
        tags = {TAG_MANAGED_BY: MANAGED_BY, TAG_ZIP_SHA256: zip_sha256}
        if existing is None:
            details = models.CreateStackDetails(
                compartment_id=compartment_id, display_name=name, description=description,
                config_source=models.CreateZipUploadConfigSourceDetails(zip_file_base64_encoded=encoded),
                variables=variables, terraform_version=terraform_version, freeform_tags=tags,
            )
            stack = Stack.from_sdk(self.client.create_stack(details).data)
            return StackResult(self._wait_stack_active(stack), "created")
        changes = []
        update: dict[str, Any] = {}
        if existing.zip_sha256 != zip_sha256:
            update["config_source"] = models.UpdateZipUploadConfigSourceDetails(zip_file_base64_encoded=encoded)
            changes.append("configuration")
        if existing.variables != variables:
            update["variables"] = variables
            changes.append("variables")
        if existing.terraform_version != terraform_version:
            update["terraform_version"] = terraform_version
            changes.append(f"Terraform {existing.terraform_version or 'unset'} -> {terraform_version}")
        if not update:
            return StackResult(existing, "unchanged")
        update["freeform_tags"] = {**existing.freeform_tags, **tags}
        stack = Stack.from_sdk(self.client.update_stack(existing.id, models.UpdateStackDetails(**update)).data)
        return StackResult(self._wait_stack_active(stack), "updated", tuple(changes))

    def _wait_stack_active(self, stack: Stack) -> Stack:
        import oci
        if stack.state == "ACTIVE":
            return stack
        response = oci.wait_until(
            self.client, self.client.get_stack(stack.id), evaluate_response=lambda r: r.data.lifecycle_state != "CREATING",
            max_interval_seconds=max(self.poll_seconds, 0.1), max_wait_seconds=600,
            fetch_func=lambda response=None: self.client.get_stack(stack.id),
        )
        stack = Stack.from_sdk(response.data)
        if stack.state != "ACTIVE":
            raise UserError(f"stack {stack.id} is {stack.state}, not ACTIVE; see it in the console", ExitCode.FAILURE)
        return stack

    def delete_stack(self, stack_id: str) -> None:
        import oci
        self.client.delete_stack(stack_id)
        oci.wait_until(
            self.client, self.client.get_stack(stack_id), evaluate_response=lambda r: r.data.lifecycle_state == "DELETED",
            max_interval_seconds=max(self.poll_seconds, 0.1), max_wait_seconds=600, succeed_on_not_found=True,
            fetch_func=lambda response=None: self.client.get_stack(stack_id),
        )

    def stack_zip(self, stack_id: str) -> bytes:
        """The stack's configuration as its zip (GetStackTfConfig)."""
        raw = self.client.get_stack_tf_config(stack_id).data
        return raw.content if hasattr(raw, "content") else raw

    def tf_state(self, stack_id: str) -> dict:
        """The stack's Terraform state (GetStackTfState); {} before the first apply."""
        raw = self.client.get_stack_tf_state(stack_id).data
        content = raw.content if hasattr(raw, "content") else raw
        return json.loads(content) if content else {}

    def import_tf_state(self, stack_id: str, state: dict) -> Job:
        """Starts a job that replaces the stack's Terraform state with `state` (operation IMPORT_TF_STATE)."""
        from oci.resource_manager import models
        encoded = base64.b64encode(json.dumps(state).encode()).decode("ascii")
        job = self.client.create_job(models.CreateJobDetails(
            stack_id=stack_id, operation="IMPORT_TF_STATE", display_name="orm-pack-import-state",
            job_operation_details=models.CreateImportTfStateJobOperationDetails(tf_state_base64_encoded=encoded),
        )).data
        return Job.from_sdk(job)

    def state_resources(self, stack_id: str) -> list[str]:
        """Addresses of the managed resources in the stack's Terraform state."""
        state = self.tf_state(stack_id)
        if not state:
            return []
        addresses = []
        for resource in state.get("resources") or []:
            if resource.get("mode") != "managed":
                continue
            base = ".".join(filter(None, [resource.get("module"), f"{resource['type']}.{resource['name']}"]))
            for instance in resource.get("instances") or []:
                key = instance.get("index_key")
                addresses.append(base + ("" if key is None else f"[{json.dumps(key)}]"))
        return addresses

    # ---------------------------------------------------------------- jobs
    def start_job(self, stack_id: str, operation: str, plan_job_id: str | None = None,
                  display_name: str | None = None) -> Job:
        """PLAN; APPLY from a plan job (FROM_PLAN_JOB_ID) or AUTO_APPROVED; DESTROY (AUTO_APPROVED)."""
        from oci.resource_manager import models
        if operation == "PLAN":
            details = models.CreatePlanJobOperationDetails()
        elif operation == "APPLY":
            details = (models.CreateApplyJobOperationDetails(execution_plan_strategy="FROM_PLAN_JOB_ID",
                                                             execution_plan_job_id=plan_job_id)
                       if plan_job_id else models.CreateApplyJobOperationDetails(execution_plan_strategy="AUTO_APPROVED"))
        elif operation == "DESTROY":
            details = models.CreateDestroyJobOperationDetails(execution_plan_strategy="AUTO_APPROVED")
        else:
            raise ValueError(operation)
        job = self.client.create_job(models.CreateJobDetails(
            stack_id=stack_id, operation=operation, job_operation_details=details,
            display_name=display_name or f"orm-pack-{operation.lower()}",
        )).data
        return Job.from_sdk(job)

    def get_job(self, job_id: str) -> Job:
        return Job.from_sdk(self.client.get_job(job_id).data)

    def list_jobs(self, stack_id: str, limit: int | None = None) -> list[Job]:
        """Jobs of the stack, newest first."""
        data = all_pages(self.client.list_jobs, stack_id=stack_id, sort_by="TIMECREATED", sort_order="DESC",
                         limit=min(limit or self.page_size, self.page_size), max_items=limit)
        return [Job.from_sdk(j) for j in data]

    def latest_job(self, stack_id: str, operation: str, state: str = "SUCCEEDED") -> Job | None:
        for job in self.list_jobs(stack_id):
            if job.operation == operation and job.state == state:
                return job
        return None

    def new_logs(self, job_id: str, cursor: LogCursor) -> list[LogLine]:
        """Log lines after `cursor` (paged, oldest first); advances the cursor."""
        kwargs: dict[str, Any] = {"sort_order": "ASC", "limit": self.page_size}
        if cursor.timestamp is not None:
            kwargs["timestamp_greater_than_or_equal_to"] = cursor.timestamp
        entries = all_pages(self.client.get_job_logs, job_id, **kwargs)
        skip = cursor.seen_at_timestamp if cursor.timestamp is not None else 0
        lines = []
        for entry in entries:
            if cursor.timestamp is not None and entry.timestamp == cursor.timestamp and skip > 0:
                skip -= 1
                continue
            lines.append(LogLine(entry.timestamp, entry.level or "INFO", entry.message or ""))
        if entries:
            # the page started at the cursor's timestamp (inclusive), so it holds every line of the last one
            cursor.timestamp = entries[-1].timestamp
            cursor.seen_at_timestamp = sum(1 for e in entries if e.timestamp == cursor.timestamp)
        return lines

    def follow_job(self, job_id: str, on_log: Callable[[LogLine], None] | None = None,
                   on_state: Callable[[Job], None] | None = None, cursor: LogCursor | None = None) -> Job:
        """Wait (SDK waiter) until the job ends, passing new log lines and each polled state on."""
        import oci

        cursor = cursor or LogCursor()

        def drain():
            for line in self.new_logs(job_id, cursor):
                if on_log:
                    on_log(line)

        def tick(_times, response):
            if on_state:
                on_state(Job.from_sdk(response.data))
            drain()

        first = self.client.get_job(job_id)
        if on_state:
            on_state(Job.from_sdk(first.data))
        drain()
        final = oci.wait_until(
            self.client, first, evaluate_response=lambda r: r.data.lifecycle_state in TERMINAL_STATES,
            max_interval_seconds=self.poll_seconds, max_wait_seconds=self.max_wait_seconds, wait_callback=tick,
            fetch_func=lambda response=None: self.client.get_job(job_id),
        )
        drain()
        job = Job.from_sdk(final.data)
        if on_state:
            on_state(job)
        return job

    def log_tail(self, job_id: str, lines: int = 30) -> list[str]:
        content = self.client.get_job_logs_content(job_id).data or ""
        return content.splitlines()[-lines:]

    def all_logs(self, job_id: str) -> list[LogLine]:
        return self.new_logs(job_id, LogCursor())

    def cancel_job(self, job_id: str) -> None:
        self.client.cancel_job(job_id)

    def plan_json(self, job_id: str) -> dict:
        raw = self.client.get_job_tf_plan(job_id, tf_plan_format="JSON").data
        content = raw.content if hasattr(raw, "content") else raw
        return json.loads(content)

    def outputs(self, job_id: str) -> list[StackOutput]:
        return [StackOutput.from_sdk(item) for item in all_pages(self.client.list_job_outputs, job_id,
                                                            limit=self.page_size)]
