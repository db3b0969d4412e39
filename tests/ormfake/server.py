"""A loopback Resource Manager (`/20180917`) for tests: the subset orm-pack uses, with the JSON field
names of the real API, every request's OCI signature verified, jobs run with real Terraform.

    fake = ResourceManagerFake(tmp_path, public_keys={key_id: public_key}, compartments={comp})
    fake.start(); ...; fake.stop()
    client = ResourceManagerClient(config, service_endpoint=fake.url, ...)

Beside it, on the same server and signature check: Object Storage, Container Engine, Certificates, Vault
secrets, the identity domain, Management Dashboard (what the applies imported), MySQL HeatWave (mysql.py:
fake.add_db_system, fake.db_system_backend) and Run Command (runcommand.py: fake.add_instance).

Faults: fake.add_fault(429, count=2) answers the next two requests with 429 (optionally only those
whose method/path match); a compartment not in `compartments` answers 404 NotAuthorizedOrNotFound.
"""
import base64
import hashlib
import json
import os
import secrets
import threading
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from harness import loopback, ocids
from harness.objectstore import ENV_VAR as OBJECT_STORE_ENV
from harness.objectstore import ObjectStore

from . import (
    certificates,
    containerengine,
    identitydomain,
    managementdashboard,
    monitoring,
    mysql,
    objectstorage,
    runcommand,
    signature,
    tfstate,
    vaultsecrets,
)
from .jobs import JobCanceled, TerraformJob

API = "/20180917"
# "Supported Terraform Versions" (Resource Manager documentation): 1.5.x; the versions before it are
# retired: no stack is created or moved to one, and no job runs on a stack that still names one.
TERRAFORM_VERSIONS = ("1.5.x",)
RETIRED_TERRAFORM_VERSIONS = ("0.12.x", "0.13.x", "0.14.x", "1.0.x", "1.1.x", "1.2.x")
ACTIVE_JOB_STATES = ("ACCEPTED", "IN_PROGRESS", "CANCELING")
ERROR_CODES = {400: "InvalidParameter", 401: "NotAuthenticated", 404: "NotAuthorizedOrNotFound", 409: "Conflict",
               429: "TooManyRequests", 500: "InternalServerError", 503: "ServiceUnavailable"}


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=datetime.now(timezone.utc).microsecond // 1000 * 1000)


def _fmt(ts: datetime | None) -> str | None:
    return None if ts is None else ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def _parse_ts(text: str) -> datetime:
    ts = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "+"))
    return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)


def _ocid(kind: str) -> str:
    return ocids.mint(f"orm{kind}", secrets.token_hex(16), "us-phoenix-1")


class ApiError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code or ERROR_CODES.get(status, "Error")


@dataclass
class Fault:
    status: int
    count: int
    method: str | None = None
    path_contains: str | None = None
    code: str | None = None

    def matches(self, method: str, path: str) -> bool:
        return self.count > 0 and (self.method is None or self.method == method) and (
            self.path_contains is None or self.path_contains in path)


def _job_record(stack: dict, operation: str, op_details: dict, resolution: dict | None, plan_job_id: str | None,
                body: dict) -> dict:
    """A job as the service returns it, ACCEPTED and not yet run."""
    return {
        "id": _ocid("job"), "stackId": stack["id"], "compartmentId": stack["compartmentId"],
        "displayName": body.get("displayName") or f"{operation.lower()}-job",
        "operation": operation, "jobOperationDetails": op_details, "applyJobPlanResolution": resolution,
        "resolvedPlanJobId": plan_job_id, "timeCreated": _fmt(_now()), "timeFinished": None,
        "lifecycleState": "ACCEPTED", "failureDetails": None, "cancellationDetails": None,
        "workingDirectory": None, "variables": dict(stack["variables"]),
        "configSource": {"configSourceRecordType": "ZIP_UPLOAD"},
        "freeformTags": body.get("freeformTags") or {}, "definedTags": body.get("definedTags") or {},
        "systemTags": {},
    }


class ResourceManagerFake:
    def __init__(self, root: Path, public_keys: dict, compartments=(), terraform: str | None = None, env_for=None,
                 page_size: int = 100, job_start_delay: float = 0.0, log_page_size: int | None = None):
        self.root = Path(root)
        self.public_keys = dict(public_keys)
        self.compartments = set(compartments)
        self.page_size = page_size
        self.log_page_size = log_page_size or page_size  # the largest page of a job's log
        self.job_start_delay = job_start_delay
        # Object Storage's contents, shared by the Object Storage API here and the double in the jobs.
        self.object_store = ObjectStore(self.root / "objectstore.json")
        if terraform is None or env_for is None:
            from harness import tools
            from harness.mirror import terraform_env

            terraform = terraform or tools.terraform()
            store_env = {**os.environ, OBJECT_STORE_ENV: str(self.object_store.path)}
            env_for = env_for or (lambda workdir: terraform_env(workdir, base=store_env))
        self.terraform = terraform
        self.terraform_label = f"Terraform at {terraform}"
        self.env_for = env_for
        self.lock = threading.RLock()
        self.stacks: dict[str, dict] = {}
        self.stack_zips: dict[str, bytes] = {}
        self.jobs: dict[str, dict] = {}
        self.job_logs: dict[str, list[dict]] = {}
        self.job_outputs: dict[str, list[dict]] = {}
        self.job_files: dict[str, dict] = {}
        self.job_runners: dict[str, TerraformJob] = {}
        self.threads: list[threading.Thread] = []
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status) for assertions
        self.auth_failures: list[str] = []
        self.clusters: dict[str, containerengine.Cluster] = {}  # the Container Engine API's clusters
        self.custom_claims: dict[str, dict] = {}  # the identity domain's custom claims, by id
        self.domain_admins: set[str] = set()  # API key ids (tenancy/user/fingerprint) of Identity Domain Administrators
        self.secrets: dict[str, str] = {}  # Vault secrets added by tests: OCID -> base64 content
        self.unreadable_secrets: set[str] = set()  # secrets no policy lets the caller read
        self.metrics: list[dict] = []  # what the VMs posted to Monitoring (PostMetricData's metricData)
        self.authorities: dict[str, str] = {}  # CAs (OCI Certificates) added by tests: OCID -> name
        self.unreadable_authorities: set[str] = set()
        self.authority_pems: dict[str, str] = {}
        self.mysql = mysql.MySQL(self.root / "mysql", self.compartments, page_size=page_size)  # DB systems, backups
        self.run_command = runcommand.RunCommand(self.compartments)  # Run Command's instances and commands
        self.dashboards = managementdashboard.ManagementDashboards()  # what the applies imported, never deleted by them
        self.server = None

    # ------------------------------------------------------------- lifecycle
    def start(self) -> "ResourceManagerFake":
        self.server = loopback.serve(type("Handler", (_Handler,), {"fake": self}))
        return self

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        with self.lock:
            runners = list(self.job_runners.values())
            for job in self.jobs.values():
                if job["lifecycleState"] in ACTIVE_JOB_STATES:
                    job["lifecycleState"] = "CANCELING"
        for runner in runners:
            runner.kill()
        for thread in self.threads:
            thread.join(timeout=30)
        self.mysql.wait(timeout=60)  # a restore under way ends before the test's servers are stopped
        if self.server:
            loopback.stop(self.server)

    def add_cluster(self, cluster: "containerengine.Cluster") -> None:
        with self.lock:
            self.clusters[cluster.id] = cluster

    def _added_and_applied(self, added: dict, in_state) -> dict:
        """What tests added, and what `in_state(state)` finds in the stacks' Terraform states."""
        with self.lock:
            found = dict(added)
            states = [self.stack_state_file(stack_id) for stack_id in self.stacks]
        for state in states:
            if state.exists() and state.stat().st_size:
                found.update(in_state(json.loads(state.read_text())))
        return found

    def known_clusters(self) -> dict:
        """The clusters added by tests and those the stacks' applies created."""
        return self._added_and_applied(self.clusters, containerengine.clusters_in_state)

    def add_db_system(self, compartment_id: str, display_name: str, ip_address: str, backend,
                      db_system_id: str | None = None, **details) -> str:
        """An ACTIVE MySQL DB system whose data `backend` holds (mysql.py); returns its OCID."""
        return self.mysql.add_db_system(compartment_id, display_name, ip_address, backend, db_system_id, **details)

    def db_system_backend(self, db_system_id: str):
        """The backend of a DB system: one a test added, or the one a restore from a backup made."""
        return self.mysql.db_system_backend(db_system_id)

    def add_instance(self, instance_id: str, runner) -> None:
        """A compute instance whose Run Command agent runs `runner(script, timeout) -> (exit_code, output)`
        (runcommand.py); `runner=None`: its agent never polls."""
        self.run_command.add_instance(instance_id, runner)

    def add_secret(self, secret_id: str, value: str) -> None:
        with self.lock:
            self.secrets[secret_id] = base64.b64encode(value.encode()).decode()

    def add_authority(self, authority_id: str, name: str, pem: str | None = None) -> None:
        """A CA the Certificates call knows; `pem`: its certificate (else the fake makes one)."""
        with self.lock:
            self.authorities[authority_id] = name
            if pem:
                self.authority_pems[authority_id] = pem

    def known_authorities(self) -> dict:
        """The CAs added by tests and those the stacks' applies created."""
        return self._added_and_applied(self.authorities, certificates.authorities_in_state)

    def known_secrets(self) -> dict:
        """The secrets added by tests and those the stacks' applies created."""
        return self._added_and_applied(self.secrets, vaultsecrets.secrets_in_state)

    def add_applied_stack(self, compartment: str, name: str, outputs: dict, freeform_tags: dict | None = None,
                          variables: dict | None = None) -> str:
        """A stack whose last job is a succeeded APPLY with these (string) outputs, as a deployment made
        earlier leaves it, without running Terraform; returns the job's OCID."""
        empty_zip = base64.b64encode(b"PK\x05\x06" + bytes(18)).decode()
        stack = self.create_stack({"compartmentId": compartment, "displayName": name, "freeformTags": freeform_tags,
                                   "variables": variables or {},
                                   "configSource": {"configSourceType": "ZIP_UPLOAD", "zipFileBase64Encoded": empty_zip}})
        job = _job_record(stack, "APPLY", {"operation": "APPLY", "executionPlanStrategy": "AUTO_APPROVED"},
                          {"planJobId": None, "isUseLatestJobId": False, "isAutoApproved": True}, None, {})
        job.update(lifecycleState="SUCCEEDED", timeFinished=_fmt(_now()))
        with self.lock:
            self.jobs[job["id"]] = job
            self.job_logs[job["id"]] = []
            self.job_outputs[job["id"]] = [
                {"outputName": key, "outputType": "string", "outputValue": value, "isSensitive": False,
                 "description": None} for key, value in sorted(outputs.items())]
        return job["id"]

    def add_fault(self, status: int, count: int = 1, method: str | None = None, path_contains: str | None = None,
                  code: str | None = None) -> None:
        with self.lock:
            self.faults.append(Fault(status, count, method, path_contains, code))

    def wait_jobs(self, timeout: float = 300) -> None:
        deadline = time.time() + timeout
        for thread in list(self.threads):
            thread.join(timeout=max(0.0, deadline - time.time()))

    # ------------------------------------------------------------- helpers
    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.count -= 1
                    return fault
        return None

    def _compartment(self, compartment_id: str | None) -> str:
        if not compartment_id:
            raise ApiError(400, "compartmentId is required", "MissingParameter")
        if compartment_id not in self.compartments:
            raise ApiError(404, f"Authorization failed or requested resource not found: {compartment_id}")
        return compartment_id

    def _stack(self, stack_id: str) -> dict:
        stack = self.stacks.get(stack_id)
        if stack is None:
            raise ApiError(404, f"Stack {stack_id} not found")
        return stack

    def _job(self, job_id: str) -> dict:
        job = self.jobs.get(job_id)
        if job is None:
            raise ApiError(404, f"Job {job_id} not found")
        return job

    @staticmethod
    def _page(items: list, query: dict, default_limit: int, cap: int) -> tuple[list, str | None]:
        try:
            start = int(query.get("page", "0"))
            limit = int(query.get("limit", default_limit))
        except ValueError:
            raise ApiError(400, "page and limit must be integers") from None
        if limit < 1 or limit > 1000:
            raise ApiError(400, "limit must be between 1 and 1000")
        limit = min(limit, cap)
        chunk = items[start:start + limit]
        next_page = str(start + limit) if start + limit < len(items) else None
        return chunk, next_page

    def _zip_source(self, source: dict) -> bytes:
        if not isinstance(source, dict) or source.get("configSourceType") != "ZIP_UPLOAD":
            raise ApiError(400, "configSource.configSourceType must be ZIP_UPLOAD (the only type this fake knows)")
        try:
            data = base64.b64decode(source.get("zipFileBase64Encoded") or "", validate=True)
        except ValueError:
            raise ApiError(400, "configSource.zipFileBase64Encoded is not base64") from None
        if not data.startswith(b"PK"):
            raise ApiError(400, "configSource.zipFileBase64Encoded is not a zip file")
        if len(data) > 11 * 1024 * 1024:
            raise ApiError(400, "The configuration zip exceeds 11 MB")
        return data

    @staticmethod
    def _variables(variables) -> dict:
        if variables is None:
            return {}
        if not isinstance(variables, dict) or not all(isinstance(v, str) for v in variables.values()):
            raise ApiError(400, "variables must be a map of strings")
        if len(variables) > 250:
            raise ApiError(400, "at most 250 variables")
        return dict(variables)

    @staticmethod
    def _terraform_version(version):
        if version is not None and version not in TERRAFORM_VERSIONS:
            retired = " any more" if version in RETIRED_TERRAFORM_VERSIONS else ""
            raise ApiError(400, f"terraformVersion {version} is not supported{retired}; supported versions: "
                                f"{', '.join(TERRAFORM_VERSIONS)}")
        return version

    # ------------------------------------------------------------- stacks
    def create_stack(self, body: dict) -> dict:
        compartment = self._compartment(body.get("compartmentId"))
        data = self._zip_source(body.get("configSource"))
        stack = {
            "id": _ocid("stack"), "compartmentId": compartment,
            "displayName": body.get("displayName") or f"stack-{datetime.now():%Y%m%d%H%M%S}",
            "description": body.get("description"), "timeCreated": _fmt(_now()), "lifecycleState": "ACTIVE",
            "configSource": {"configSourceType": "ZIP_UPLOAD",
                             "workingDirectory": body["configSource"].get("workingDirectory")},
            "variables": self._variables(body.get("variables")),
            "terraformVersion": self._terraform_version(body.get("terraformVersion")) or "1.5.x",
            "stackDriftStatus": "NOT_CHECKED", "freeformTags": body.get("freeformTags") or {},
            "definedTags": body.get("definedTags") or {}, "systemTags": {},
        }
        with self.lock:
            self.stacks[stack["id"]] = stack
            self.stack_zips[stack["id"]] = data
        return stack

    def list_stacks(self, query: dict) -> tuple[list, str | None]:
        if "id" in query:
            items = [s for s in self.stacks.values() if s["id"] == query["id"]]
        else:
            compartment = self._compartment(query.get("compartmentId"))
            items = [s for s in self.stacks.values() if s["compartmentId"] == compartment]
        if "displayName" in query:
            items = [s for s in items if s["displayName"] == query["displayName"]]
        if "lifecycleState" in query:
            items = [s for s in items if s["lifecycleState"] == query["lifecycleState"]]
        else:
            items = [s for s in items if s["lifecycleState"] != "DELETED"]
        items = self._sorted(items, query)
        page, next_page = self._page(items, query, 100, self.page_size)
        summary_keys = ("id", "compartmentId", "displayName", "description", "timeCreated", "lifecycleState",
                        "terraformVersion", "freeformTags", "definedTags", "systemTags")
        return [{k: s.get(k) for k in summary_keys} for s in page], next_page

    @staticmethod
    def _sorted(items: list, query: dict) -> list:
        key = {"TIMECREATED": "timeCreated", "DISPLAYNAME": "displayName"}.get(query.get("sortBy", "TIMECREATED"))
        if key is None:
            raise ApiError(400, f"sortBy {query.get('sortBy')} is not TIMECREATED or DISPLAYNAME")
        return sorted(items, key=lambda s: (s.get(key) or "", s["id"]), reverse=query.get("sortOrder", "DESC") == "DESC")

    def update_stack(self, stack_id: str, body: dict) -> dict:
        with self.lock:
            stack = self._stack(stack_id)
            if stack["lifecycleState"] != "ACTIVE":
                raise ApiError(409, f"Stack is {stack['lifecycleState']}", "IncorrectState")
            if self._active_job(stack_id):
                raise ApiError(409, "A job is running on this stack", "Conflict")
            if "configSource" in body and body["configSource"] is not None:
                self.stack_zips[stack_id] = self._zip_source(body["configSource"])
            if body.get("variables") is not None:
                stack["variables"] = self._variables(body["variables"])
            if body.get("terraformVersion") is not None:
                stack["terraformVersion"] = self._terraform_version(body["terraformVersion"])
            for key in ("displayName", "description", "freeformTags", "definedTags"):
                if body.get(key) is not None:
                    stack[key] = body[key]
            return stack

    def delete_stack(self, stack_id: str) -> None:
        with self.lock:
            stack = self._stack(stack_id)
            if self._active_job(stack_id):
                raise ApiError(409, "A job is running on this stack", "Conflict")
            stack["lifecycleState"] = "DELETED"

    def _active_job(self, stack_id: str) -> dict | None:
        return next((j for j in self.jobs.values()
                     if j["stackId"] == stack_id and j["lifecycleState"] in ACTIVE_JOB_STATES), None)

    def stack_state_file(self, stack_id: str) -> Path:
        return self.root / "stacks" / stack_id / "terraform.tfstate"

    # ------------------------------------------------------------- jobs
    def create_job(self, body: dict) -> dict:
        with self.lock:
            stack = self._stack(body.get("stackId") or "")
            if stack["lifecycleState"] != "ACTIVE":
                raise ApiError(409, f"Stack is {stack['lifecycleState']}", "IncorrectState")
            if stack["terraformVersion"] not in TERRAFORM_VERSIONS:
                raise ApiError(400, f"The stack's Terraform version {stack['terraformVersion']} is not supported any "
                                    f"more: update the stack to {TERRAFORM_VERSIONS[-1]} to run jobs")
            details = body.get("jobOperationDetails") or {}
            operation = body.get("operation") or details.get("operation")
            if operation not in ("PLAN", "APPLY", "DESTROY", "IMPORT_TF_STATE"):
                raise ApiError(400, f"operation {operation} is not PLAN, APPLY, DESTROY or IMPORT_TF_STATE")
            if details.get("operation", operation) != operation:
                raise ApiError(400, "operation and jobOperationDetails.operation differ")
            if self._active_job(stack["id"]):
                raise ApiError(409, "Another job is running on this stack", "Conflict")
            strategy = details.get("executionPlanStrategy")
            plan_job_id = details.get("executionPlanJobId")
            resolution = None
            if operation == "APPLY":
                strategy = strategy or "AUTO_APPROVED"
                if strategy == "FROM_PLAN_JOB_ID":
                    plan_job = self._job(plan_job_id or "")
                    if plan_job["stackId"] != stack["id"] or plan_job["operation"] != "PLAN":
                        raise ApiError(400, "executionPlanJobId must name a PLAN job of the same stack")
                    if plan_job["lifecycleState"] != "SUCCEEDED":
                        raise ApiError(409, "The plan job has not succeeded", "IncorrectState")
                elif strategy != "AUTO_APPROVED":
                    raise ApiError(400, f"executionPlanStrategy {strategy} is not supported by this fake")
                resolution = {"planJobId": plan_job_id, "isUseLatestJobId": False,
                              "isAutoApproved": strategy == "AUTO_APPROVED"}
            elif operation == "DESTROY":
                strategy = strategy or "AUTO_APPROVED"
                if strategy != "AUTO_APPROVED":
                    raise ApiError(400, "DESTROY needs executionPlanStrategy AUTO_APPROVED")
            imported = None
            if operation == "IMPORT_TF_STATE":
                try:
                    imported = tfstate.import_details(details)
                except ValueError as exc:
                    raise ApiError(400, str(exc), "InvalidParameter") from None
            op_details = {"operation": operation}
            if operation not in ("PLAN", "IMPORT_TF_STATE"):
                op_details["executionPlanStrategy"] = strategy
            if plan_job_id and operation == "APPLY":
                op_details["executionPlanJobId"] = plan_job_id
            job = _job_record(stack, operation, op_details, resolution, plan_job_id, body)
            self.jobs[job["id"]] = job
            self.job_logs[job["id"]] = []
            self.job_files[job["id"]] = {"zip": self.stack_zips[stack["id"]], "terraformVersion": stack["terraformVersion"]}
            if imported is not None:
                self.job_files[job["id"]]["import"] = imported
            thread = threading.Thread(target=self._run_job, args=(job["id"],), daemon=True)
            self.threads.append(thread)
        thread.start()
        return job

    def log(self, job_id: str, level: str, message: str) -> None:
        with self.lock:
            entries = self.job_logs[job_id]
            ts = _now()
            if entries and ts < entries[-1]["_ts"]:
                ts = entries[-1]["_ts"]
            entries.append({"type": "TERRAFORM_CONSOLE", "level": level, "timestamp": _fmt(ts), "message": message,
                            "_ts": ts})

    def _set(self, job_id: str, **fields) -> None:
        with self.lock:
            self.jobs[job_id].update(fields)

    def _run_job(self, job_id: str) -> None:
        job = self.jobs[job_id]
        stack_id = job["stackId"]
        operation = job["operation"]
        plan_job_id = (job.get("jobOperationDetails") or {}).get("executionPlanJobId")
        workdir = (self.root / "jobs" / (plan_job_id or job_id) / "config")
        runner = TerraformJob(
            self.terraform, self.env_for, workdir, self.stack_state_file(stack_id), job["variables"],
            log=lambda level, message: self.log(job_id, level, message),
            canceled=lambda: self.jobs[job_id]["lifecycleState"] == "CANCELING",
        )
        with self.lock:
            self.job_runners[job_id] = runner
        try:
            if self.job_start_delay:
                self._set(job_id, lifecycleState="IN_PROGRESS")
                deadline = time.time() + self.job_start_delay
                while time.time() < deadline and not runner.canceled():
                    time.sleep(0.05)
            self._set(job_id, lifecycleState="IN_PROGRESS")
            files = self.job_files[job_id]
            self.log(job_id, "INFO", f"Job {operation} started on stack {stack_id} "
                                     f"(Terraform {files['terraformVersion']}, run with {self.terraform_label})")
            if operation == "IMPORT_TF_STATE":
                self._import_state(job_id, self.stack_state_file(stack_id), files["import"])
            elif operation == "APPLY" and plan_job_id:
                self.log(job_id, "INFO", f"Applying the execution plan of job {plan_job_id}")
                runner.apply_plan()
            else:
                runner.unpack(files["zip"])
                runner.init()
                if operation == "PLAN":
                    binary, plan_json = runner.plan()
                    files["tfplan.bin"], files["tfplan.json"] = binary, plan_json
                elif operation == "APPLY":
                    runner.apply()
                else:
                    runner.destroy()
            if operation == "APPLY":
                self.job_outputs[job_id] = runner.outputs()
            state_file = self.stack_state_file(stack_id)
            files["tfState"] = state_file.read_bytes() if state_file.exists() else b""
            if operation == "APPLY" and files["tfState"]:
                self.dashboards.import_applied(json.loads(files["tfState"]))
            self.log(job_id, "INFO", f"{operation} job succeeded")
            self._set(job_id, lifecycleState="SUCCEEDED", timeFinished=_fmt(_now()))
        except JobCanceled:
            self.log(job_id, "INFO", "Job canceled")
            self._set(job_id, lifecycleState="CANCELED", timeFinished=_fmt(_now()),
                      cancellationDetails={"isForced": False})
        except Exception as exc:  # a failed Terraform run is a FAILED job, like the service's
            if not isinstance(exc, RuntimeError):
                self.log(job_id, "ERROR", traceback.format_exc())
            self.log(job_id, "ERROR", f"Error: {exc}")
            self._set(job_id, lifecycleState="FAILED", timeFinished=_fmt(_now()),
                      failureDetails={"code": "TERRAFORM_EXECUTION_ERROR",
                                      "message": f"The Terraform {operation.lower()} failed: {exc}"})
        finally:
            with self.lock:
                self.job_runners.pop(job_id, None)

    def _import_state(self, job_id: str, state_file: Path, data: bytes) -> None:
        """An IMPORT_TF_STATE job: the uploaded state, if Terraform can read it, becomes the stack's state."""
        try:
            state = tfstate.read_state(data)
        except ValueError as exc:
            raise RuntimeError(f"Error reading the imported Terraform state: {exc}") from None
        state_file.parent.mkdir(parents=True, exist_ok=True)
        state_file.write_bytes(data)
        self.log(job_id, "INFO", f"Imported Terraform state: serial {state['serial']}, lineage {state['lineage']}, "
                                 f"{len(state['resources'])} resource(s)")

    def list_jobs(self, query: dict) -> tuple[list, str | None]:
        items = list(self.jobs.values())
        if "id" in query:
            items = [j for j in items if j["id"] == query["id"]]
        elif "stackId" in query:
            self._stack(query["stackId"])
            items = [j for j in items if j["stackId"] == query["stackId"]]
        elif "compartmentId" in query:
            compartment = self._compartment(query["compartmentId"])
            items = [j for j in items if j["compartmentId"] == compartment]
        else:
            raise ApiError(400, "one of compartmentId, stackId or id is required", "MissingParameter")
        if "lifecycleState" in query:
            items = [j for j in items if j["lifecycleState"] == query["lifecycleState"]]
        items = self._sorted(items, query)
        page, next_page = self._page(items, query, 100, self.page_size)
        keys = ("id", "stackId", "compartmentId", "displayName", "operation", "jobOperationDetails",
                "applyJobPlanResolution", "resolvedPlanJobId", "timeCreated", "timeFinished", "lifecycleState",
                "freeformTags", "definedTags", "systemTags")
        return [{k: j.get(k) for k in keys} for j in page], next_page

    def cancel_job(self, job_id: str) -> None:
        with self.lock:
            job = self._job(job_id)
            if job["lifecycleState"] not in ("ACCEPTED", "IN_PROGRESS"):
                raise ApiError(409, f"Job is {job['lifecycleState']}", "IncorrectState")
            job["lifecycleState"] = "CANCELING"
            runner = self.job_runners.get(job_id)
        if runner:
            threading.Thread(target=runner.kill, daemon=True).start()

    def get_job_logs(self, job_id: str, query: dict) -> tuple[list, str | None]:
        self._job(job_id)
        levels = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
        with self.lock:
            entries = list(self.job_logs[job_id])
        if "type" in query:
            types = query["type"] if isinstance(query["type"], list) else [query["type"]]
            entries = [e for e in entries if e["type"] in types]
        if "levelGreaterThanOrEqualTo" in query:
            if query["levelGreaterThanOrEqualTo"] not in levels:
                raise ApiError(400, "levelGreaterThanOrEqualTo is not a log level")
            floor = levels.index(query["levelGreaterThanOrEqualTo"])
            entries = [e for e in entries if levels.index(e["level"]) >= floor]
        try:
            if "timestampGreaterThanOrEqualTo" in query:
                after = _parse_ts(query["timestampGreaterThanOrEqualTo"])
                entries = [e for e in entries if e["_ts"] >= after]
            if "timestampLessThanOrEqualTo" in query:
                before = _parse_ts(query["timestampLessThanOrEqualTo"])
                entries = [e for e in entries if e["_ts"] <= before]
        except ValueError:
            raise ApiError(400, "timestamp filters must be RFC 3339 date-times") from None
        if query.get("sortOrder", "ASC") == "DESC":
            entries.reverse()
        page, next_page = self._page(entries, query, 100, self.log_page_size)
        return [{k: v for k, v in e.items() if not k.startswith("_")} for e in page], next_page

    def logs_content(self, job_id: str) -> str:
        self._job(job_id)
        with self.lock:
            return "".join(e["message"] + "\n" for e in self.job_logs[job_id])


class _Handler(BaseHTTPRequestHandler):
    fake: ResourceManagerFake = None
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # keep test output clean
        pass

    def _send(self, status: int, body=None, headers: dict | None = None, content_type: str = "application/json"):
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = body or b""
        # Recorded before the answer leaves: a client that asserts on it right after must find it.
        with self.fake.lock:
            self.fake.requests.append((self.command, urlsplit(self.path).path, status))
        self.send_response(status)
        self.send_header("opc-request-id", secrets.token_hex(16).upper())
        if data or status != 204:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            if value is not None:
                self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _error(self, status: int, message: str, code: str | None = None):
        self._send(status, {"code": code or ERROR_CODES.get(status, "Error"), "message": message})

    def _handle(self):
        fake = self.fake
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            signature.verify(self.command, self.path, self.headers, body, fake.public_keys,
                             body_signed=not objectstorage.is_put_object(self.command, self.path))
        except signature.SignatureError as exc:
            with fake.lock:
                fake.auth_failures.append(str(exc))
            return self._error(401, "The required information to complete authentication was not provided or was "
                                    "incorrect.", "NotAuthenticated")
        fault = fake._take_fault(self.command, self.path)
        if fault:
            headers = {"retry-after": "0"} if fault.status == 429 else None
            return self._send(fault.status, {"code": fault.code or ERROR_CODES.get(fault.status, "Error"),
                                             "message": "Injected fault"}, headers)
        parts = urlsplit(self.path)
        query = {k: (v if len(v) > 1 else v[0]) for k, v in parse_qs(parts.query).items()}
        if objectstorage.is_object_storage(parts.path):
            try:
                status, document, headers = objectstorage.handle(fake.object_store, self.command, parts.path, query,
                                                                 body, fake.page_size)
            except objectstorage.ObjectStorageError as exc:
                return self._error(exc.status, exc.message, exc.code)
            return self._send(status, document, headers)
        if containerengine.is_container_engine(parts.path):
            try:
                status, text = containerengine.handle(fake.known_clusters(), self.command, parts.path,
                                                      json.loads(body) if body else {})
            except (containerengine.ContainerEngineError, ValueError) as exc:
                status, code = getattr(exc, "status", 400), getattr(exc, "code", "InvalidParameter")
                return self._error(status, getattr(exc, "message", str(exc)), code)
            return self._send(status, text, content_type="application/x-yaml")
        if certificates.is_certificates(parts.path):
            authority_id = parts.path.rsplit("/", 1)[-1]
            try:
                status, document = certificates.handle(fake.known_authorities(),
                                                       authority_id not in fake.unreadable_authorities,
                                                       self.command, parts.path, fake.authority_pems)
            except certificates.CertificatesError as exc:
                return self._error(exc.status, exc.message, exc.code)
            return self._send(status, document)
        if vaultsecrets.is_secrets(parts.path):
            secret_id = parts.path.rsplit("/", 1)[-1]
            try:
                status, document = vaultsecrets.handle(fake.known_secrets(), secret_id not in fake.unreadable_secrets,
                                                  self.command, parts.path)
            except vaultsecrets.SecretsError as exc:
                return self._error(exc.status, exc.message, exc.code)
            return self._send(status, document)
        if monitoring.is_monitoring(parts.path):
            try:
                with fake.lock:
                    document = monitoring.handle(list(fake.metrics), self.command, parts.path, query,
                                                 json.loads(body) if body else {})
            except monitoring.MonitoringError as exc:
                return self._error(exc.status, exc.message, exc.code)
            except ValueError:
                return self._error(400, "The request body is not JSON", "InvalidParameter")
            return self._send(200, document)
        if managementdashboard.is_management_dashboard(parts.path):
            try:
                status, document = fake.dashboards.handle(self.command, parts.path, json.loads(body) if body else {})
            except managementdashboard.DashboardError as exc:
                return self._error(exc.status, exc.message, exc.code)
            except ValueError:
                return self._error(400, "The request body is not JSON", "InvalidParameter")
            return self._send(status, document)
        if mysql.is_mysql(parts.path) or runcommand.is_run_command(parts.path):
            return self._sub_api(mysql.is_mysql(parts.path), self.command, parts.path, query, body)
        if identitydomain.is_identity_domain(parts.path):
            key_id = signature.parse_authorization(self.headers.get("authorization", ""))["keyId"]
            try:
                with fake.lock:
                    status, document = identitydomain.handle(
                        fake.custom_claims, key_id in fake.domain_admins, self.command, parts.path, query,
                        json.loads(body) if body else {})
            except identitydomain.DomainError as exc:
                return self._send(exc.status, exc.document())
            except ValueError:
                return self._send(400, identitydomain.DomainError(400, "the request body is not JSON").document())
            return self._send(status, document)
        if not parts.path.startswith(API + "/"):
            return self._error(404, f"No such API {parts.path}", "NotFound")
        segments = parts.path[len(API) + 1:].split("/")
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            return self._error(400, "The request body is not JSON", "InvalidParameter")
        try:
            self._route(self.command, segments, query, payload)
        except ApiError as exc:
            self._error(exc.status, exc.message, exc.code)
        except Exception as exc:  # a bug in the fake shows as 500 with its message
            traceback.print_exc()
            self._error(500, f"fake error: {exc}", "InternalServerError")

    def _sub_api(self, is_mysql: bool, method: str, path: str, query: dict, body: bytes):
        """MySQL HeatWave or Run Command: their errors as OCI answers them."""
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            return self._error(400, "The request body is not JSON", "InvalidParameter")
        try:
            if is_mysql:
                status, document, headers = self.fake.mysql.handle(method, path, query, payload)
            else:
                (status, document), headers = self.fake.run_command.handle(method, path, query, payload), {}
        except (mysql.MysqlError, runcommand.RunCommandError) as exc:
            return self._error(exc.status, exc.message, exc.code)
        except Exception as exc:  # a bug in the fake shows as 500 with its message
            traceback.print_exc()
            return self._error(500, f"fake error: {exc}", "InternalServerError")
        return self._send(status, document, headers)

    def _route(self, method: str, seg: list, query: dict, payload: dict):
        fake = self.fake
        etag = lambda obj: hashlib.md5(json.dumps(obj, sort_keys=True).encode()).hexdigest()  # noqa: E731
        if seg == ["stacks"] and method == "POST":
            stack = fake.create_stack(payload)
            return self._send(200, stack, {"etag": etag(stack)})
        if seg == ["stacks"] and method == "GET":
            items, next_page = fake.list_stacks(query)
            return self._send(200, items, {"opc-next-page": next_page})
        if len(seg) == 2 and seg[0] == "stacks":
            if method == "GET":
                stack = fake._stack(seg[1])
                return self._send(200, stack, {"etag": etag(stack)})
            if method == "PUT":
                stack = fake.update_stack(seg[1], payload)
                return self._send(200, stack, {"etag": etag(stack)})
            if method == "DELETE":
                fake.delete_stack(seg[1])
                return self._send(204)
        if len(seg) == 3 and seg[0] == "stacks" and seg[2] == "tfState" and method == "GET":
            fake._stack(seg[1])
            path = fake.stack_state_file(seg[1])
            return self._send(200, path.read_bytes() if path.exists() else b"", content_type="application/octet-stream")
        if len(seg) == 3 and seg[0] == "stacks" and seg[2] == "tfConfig" and method == "GET":
            # GetStackTfConfig: the stack's configuration, the zip it was last given
            fake._stack(seg[1])
            return self._send(200, fake.stack_zips[seg[1]], content_type="application/zip")
        if seg == ["jobs"] and method == "POST":
            job = fake.create_job(payload)
            return self._send(200, job, {"etag": etag(job)})
        if seg == ["jobs"] and method == "GET":
            items, next_page = fake.list_jobs(query)
            return self._send(200, items, {"opc-next-page": next_page})
        if len(seg) == 2 and seg[0] == "jobs":
            if method == "GET":
                with fake.lock:
                    job = dict(fake._job(seg[1]))
                return self._send(200, job, {"etag": etag(job)})
            if method == "DELETE":
                fake.cancel_job(seg[1])
                return self._send(204)
        if len(seg) >= 3 and seg[0] == "jobs" and method == "GET":
            job = fake._job(seg[1])
            files = fake.job_files.get(seg[1], {})
            tail = seg[2:]
            if tail == ["logs"]:
                items, next_page = fake.get_job_logs(seg[1], query)
                return self._send(200, items, {"opc-next-page": next_page})
            if tail == ["logs", "content"]:
                return self._send(200, fake.logs_content(seg[1]), content_type="text/plain")
            if tail == ["outputs"]:
                if job["operation"] != "APPLY" or job["lifecycleState"] != "SUCCEEDED":
                    outputs = []
                else:
                    outputs = fake.job_outputs.get(seg[1], [])
                items, next_page = fake._page(outputs, query, 100, fake.page_size)
                return self._send(200, {"items": items}, {"opc-next-page": next_page})
            if tail == ["tfPlan"]:
                if job["operation"] != "PLAN" or "tfplan.bin" not in files:
                    raise ApiError(404, "This job has no execution plan")
                if query.get("tfPlanFormat", "BINARY") == "JSON":
                    return self._send(200, json.dumps(files["tfplan.json"]))
                return self._send(200, files["tfplan.bin"], content_type="application/octet-stream")
            if tail == ["tfState"]:
                if "tfState" not in files:
                    raise ApiError(404, "This job has no state")
                return self._send(200, files["tfState"], content_type="application/octet-stream")
            if tail == ["tfConfig"]:
                return self._send(200, files.get("zip", b""), content_type="application/zip")
        raise ApiError(404, f"No route for {method} {API}/{'/'.join(seg)}", "NotFound")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle
