"""`orm-pack upgrade`: MLflow (and the stack) to a new version without losing a run, and back when it fails.

The laptop cannot reach MySQL in the private subnet, so what needs the database runs where it is reachable: on
the tracking VM through Run Command (/usr/local/sbin/mlflow-upgrade, with the target version's image: VmRuntime
here), or as Jobs of the stack's OKE cluster (orm_pack.oke.upgrade_runtime). In order:

  1. what changes: MLflow from -> to, the pending migrations (rehearsed on an empty copy of the schema, each
     marked slow or breaking) and what the stack's plan replaces;
  2. the database's pre-checks: a problem stops here with its fix, before the stack is touched;
     (--dry-run stops here too, and leaves the stack's configuration and variables as they were)
  3. an on-demand MySQL HeatWave backup, waited for;
  4. the apply: the tracking VM is replaced (its user_data names the version) and, booting, migrates once,
     under the database's lock, before its server starts; on OKE the apply changes no pod, and the migrate Job
     then runs once, with the old version's pods stopped, before the new version rolls out;
  5. the health gate (doctor's checks). When it fails: a backup of the failed database (where the failed state
     is kept), the database restored from step 3's backup into a new DB system at the same address (HeatWave
     restores only into a new one), the stack's state pointed at it, and the previous version applied again
     (on OKE: and rolled out with the image the cluster ran before).

Plain functions over the cloud wrappers; what happens goes to `events`, the question to `confirm`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable, Protocol

from orm_pack.cloud.mysql_backups import Backup, MySqlBackups
from orm_pack.cloud.resource_manager import ResourceManager
from orm_pack.cloud.run_command import CommandResult, RunCommand
from orm_pack.deploy import state_takeover, workflows
from orm_pack.errors import ExitCode, UserError
from orm_pack.oke.upgrade_runtime import last_json_line

UPGRADE_SCRIPT = "/usr/local/sbin/mlflow-upgrade"
PLAN_TIMEOUT_SECONDS = 1800     # the target image may be built on the VM first
STATUS_TIMEOUT_SECONDS = 120
ALWAYS_FREE_SHAPE = "MySQL.Free"


class Runtime(Protocol):
    """Where MLflow runs, seen by the upgrade: the tracking VM or the OKE cluster."""
    where: str          # "on the tracking VM"
    apply_label: str    # step 4's name
    reporter: str       # "The tracking VM says": what introduces status()

    def plan(self, to_version: str) -> dict:
        """The database's plan for to_version (schema_plan's JSON), made where the database is reachable."""

    def roll_out(self, version: str, migrations_pending: bool, image: str | None = None) -> None:
        """After the stack's apply: what makes `version` serve (nothing more on a VM); raises UserError."""

    def probe(self) -> str | None:
        """Why MLflow will not come up, once that is certain; None while it may."""

    def status(self) -> str:
        """What the runtime says of itself, for the failure's report."""


@dataclass(frozen=True)
class Cloud:
    rm: ResourceManager
    run_command: RunCommand
    backups: MySqlBackups
    oke: Callable[[dict], Runtime] | None = None   # the stack's outputs -> its OKE cluster's runtime


@dataclass(frozen=True)
class UpgradeRequest:
    deploy: workflows.DeployRequest     # this release's stack and the user's variables
    to_version: str
    dry_run: bool = False
    mlflow_url: str | None = None       # where the health gate reaches MLflow (default: the stack's mlflow_url)


@dataclass
class Step:
    name: str
    seconds: float
    detail: str = ""


@dataclass
class UpgradeResult:
    from_version: str
    to_version: str
    database_plan: dict
    replaced: list[str] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    backup: Backup | None = None
    upgraded: bool = False
    rolled_back: bool = False
    failed_state_backup: Backup | None = None
    restored_db_system_id: str | None = None
    failure: str = ""
    vm_status: str = ""                 # what the runtime said of itself when it failed


class UpgradeRefused(UserError):
    """The database's pre-checks (or the rehearsal) say the migration would fail; nothing was changed."""

    def __init__(self, result: UpgradeResult):
        problems = result.database_plan.get("problems") or []
        super().__init__(f"the upgrade to MLflow {result.to_version} would fail: {len(problems)} problem(s) in the "
                         "database (above, each with its fix); nothing was changed", ExitCode.CONFLICT)
        self.result = result


class UpgradeRolledBack(UserError):
    def __init__(self, result: UpgradeResult):
        super().__init__(f"the upgrade to MLflow {result.to_version} failed ({result.failure}) and was rolled back "
                         f"to {result.from_version}", ExitCode.FAILURE)
        self.result = result


class RollbackFailed(UserError):
    """A step of the rollback failed: the result says how far it got (the failed-state backup above all)."""

    def __init__(self, result: UpgradeResult, error: Exception):
        code = error.exit_code if isinstance(error, UserError) else ExitCode.FAILURE
        super().__init__(f"the upgrade to MLflow {result.to_version} failed ({result.failure}) and so did its "
                         f"rollback: {error}", code)
        self.result = result


class _Clock:
    """Steps with their elapsed times, reported as they end."""

    def __init__(self, events: workflows.Events, result: UpgradeResult):
        self.events, self.result = events, result
        self.started = time.monotonic()

    def step(self, name: str, run: Callable[[], object], detail: Callable[[object], str] = lambda _: ""):
        self.events.message(f"[{time.monotonic() - self.started:6.0f}s] {name} ...")
        began = time.monotonic()
        value = run()
        seconds = time.monotonic() - began
        said = detail(value)
        self.result.steps.append(Step(name, round(seconds, 1), said))
        self.events.message(f"[{time.monotonic() - self.started:6.0f}s] {name}: done in {seconds:.0f}s"
                            + (f" ({said})" if said else ""))
        return value


def _outputs(rm: ResourceManager, stack) -> dict:
    job = rm.latest_job(stack.id, "APPLY")
    if job is None:
        raise UserError(f"stack {stack.name} has no successful apply yet: run orm-pack apply", ExitCode.NOT_FOUND)
    return {output.name: output.value for output in rm.outputs(job.id)}


def _on_vm(cloud: Cloud, compartment: str, instance_id: str, arguments: str, timeout: int) -> CommandResult:
    return cloud.run_command.run(compartment, instance_id, f"sudo {UPGRADE_SCRIPT} {arguments}", timeout,
                                 display_name=f"mlflow-upgrade {arguments}")


def failure_on_vm(status_output: str) -> str | None:
    """Why the tracking VM will not serve, from `mlflow-upgrade status`: a boot that refused the upgrade (the
    console path runs the previous version instead), or the database preparation failing (a migration that
    stopped halfway fails every start after it). None while it may still come up."""
    for line in status_output.splitlines():
        if line.startswith("refused: ") and line != "refused: none":
            return f"the VM refused the upgrade at boot: {line.removeprefix('refused: ')}"
    errors = [line for line in status_output.splitlines() if "init_db: ERROR:" in line]
    return errors[-1].split("init_db: ERROR:", 1)[1].strip() if errors else None


@dataclass
class VmRuntime:
    """The tracking VM, through Run Command. The apply replaces it, and it migrates as it boots."""
    cloud: Cloud
    compartment: str
    stack: object
    where: str = "on the tracking VM"
    apply_label: str = "4. apply (the tracking VM is replaced and migrates at boot)"
    reporter: str = "The tracking VM says"

    def _instance(self) -> str:
        """The stack's current tracking VM (the one the last apply made)."""
        return _outputs(self.cloud.rm, self.stack).get("tracking_instance_id") or ""

    def plan(self, to_version: str) -> dict:
        result = _on_vm(self.cloud, self.compartment, self._instance(), f"plan {to_version}", PLAN_TIMEOUT_SECONDS)
        plan = last_json_line(result.output.splitlines())
        if plan is None or result.exit_code not in (0, 3):
            tail = "\n".join(result.output.splitlines()[-15:])
            raise UserError(f"the tracking VM could not plan the upgrade (Run Command {result.command_id}: "
                            f"{result.state}, exit {result.exit_code}):\n{tail}", ExitCode.FAILURE)
        return plan

    def roll_out(self, version: str, migrations_pending: bool, image: str | None = None) -> None:
        return None  # the apply replaced the VM, which migrates and starts at boot

    def status(self) -> str:
        return _on_vm(self.cloud, self.compartment, self._instance(), "status", STATUS_TIMEOUT_SECONDS).output

    def probe(self) -> str | None:
        return failure_on_vm(self.status())


def _with_version(request: workflows.DeployRequest, version: str) -> workflows.DeployRequest:
    return replace(request, given={**request.given, "mlflow_version": version})


def upgrade(cloud: Cloud, request: UpgradeRequest, events: workflows.Events,
            confirm: Callable[[UpgradeResult, workflows.PlanResult], bool],
            health_gate: Callable[..., list[str]]) -> UpgradeResult:
    """The whole upgrade; raises UpgradeRefused (nothing changed) or UpgradeRolledBack (back where it was).
    `health_gate(url, version, probe)` returns the problems of the MLflow at url, which must run `version`;
    `probe()` asks the runtime whether it failed for good."""
    deploy = request.deploy
    rm = cloud.rm
    stack = workflows.stack_or_error(rm, deploy.compartment, deploy.stack_name, ": deploy it with orm-pack apply")
    outputs = _outputs(rm, stack)
    from_version = outputs.get("mlflow_version") or stack.variables.get("mlflow_version") or "unknown"
    db_system_id = outputs["mysql_db_system_id"]
    if cloud.backups.db_system(db_system_id).shape_name == ALWAYS_FREE_SHAPE:
        raise UserError("the DB system is Always Free (MySQL.Free), which cannot take a manual backup (HeatWave: "
                        "\"Creating a Manual Backup\"), so a failed migration could not be rolled back. Change the "
                        "MLflow version in the stack's form instead: the new VM checks the database before it "
                        "migrates, and runs the previous version when the checks refuse", ExitCode.USAGE)
    runtime = _runtime(cloud, deploy.compartment, stack, outputs)
    result = UpgradeResult(from_version, request.to_version, {})
    clock = _Clock(events, result)

    result.database_plan = clock.step(
        f"1. plan MLflow {from_version} -> {request.to_version} {runtime.where}",
        lambda: runtime.plan(request.to_version), lambda plan: f"{len(plan.get('steps') or [])} migration(s) pending")
    if result.database_plan.get("refused"):
        raise UpgradeRefused(result)
    previous_zip = rm.stack_zip(stack.id) if request.dry_run else None
    planned = clock.step("1. plan the stack", lambda: workflows.plan(rm, _with_version(deploy, request.to_version),
                                                                     events))
    result.replaced = [f"{change.address} ({change.action})" for change in planned.summary.changes
                       if change.action in ("replace", "delete")]
    if request.dry_run:
        rm.ensure_stack(deploy.compartment, deploy.stack_name, previous_zip, stack.zip_sha256 or "", stack.variables,
                        terraform_version=stack.terraform_version or deploy.terraform_version)
        events.message("dry run: the stack's configuration and variables are as they were")
        return result
    if not confirm(result, planned):
        raise UserError("cancelled: nothing was changed", ExitCode.ABORTED)

    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    result.backup = clock.step("3. back up MySQL", lambda: cloud.backups.back_up(
        db_system_id, f"{stack.name}-before-mlflow-{request.to_version}-{stamp}"), lambda backup: backup.id)
    pending = bool(result.database_plan.get("steps"))

    def apply_and_roll_out() -> str:
        workflows.require_success(rm, workflows.follow(rm, rm.start_job(stack.id, "APPLY",
                                                                        plan_job_id=planned.job.id), events))
        try:
            runtime.roll_out(request.to_version, pending)
        except UserError as failed:
            return str(failed)
        return ""

    url = request.mlflow_url or outputs.get("mlflow_url") or ""
    failure = clock.step(runtime.apply_label, apply_and_roll_out,
                         lambda failed: f"failed: {failed.splitlines()[0][:160]}" if failed else "")
    problems = [failure] if failure else clock.step(
        "5. health gate", lambda: health_gate(url, request.to_version, runtime.probe),
        lambda found: "healthy" if not found else f"{len(found)} problem(s)")
    if not problems:
        result.upgraded = True
        return result

    result.failure = "; ".join(problems)
    result.vm_status = runtime.status()
    events.message(f"the upgrade failed: {result.failure}. {runtime.reporter}:\n{result.vm_status}")
    try:
        roll_back(cloud, stack, deploy, result, db_system_id, stamp, clock, events, runtime,
                  lambda u, v: health_gate(u, v, runtime.probe), url)
    except Exception as error:
        raise RollbackFailed(result, error) from error
    raise UpgradeRolledBack(result)


def _runtime(cloud: Cloud, compartment: str, stack, outputs: dict) -> Runtime:
    if outputs.get("tracking_instance_id"):
        return VmRuntime(cloud, compartment, stack)
    if cloud.oke is None or not outputs.get("oke_deploy_settings"):
        raise UserError(f"stack {stack.name} has neither a tracking VM nor OKE settings in its outputs: apply it "
                        "with this release first (orm-pack apply)", ExitCode.USAGE)
    return cloud.oke(outputs)


def roll_back(cloud: Cloud, stack, deploy: workflows.DeployRequest, result: UpgradeResult, db_system_id: str,
              stamp: str, clock: _Clock, events: workflows.Events, runtime: Runtime, health_gate, url: str) -> None:
    rm, backups = cloud.rm, cloud.backups
    result.failed_state_backup = clock.step(
        "rollback: back up the failed database (its state is kept there)",
        lambda: backups.back_up(db_system_id, f"{stack.name}-failed-mlflow-{result.to_version}-{stamp}"),
        lambda backup: backup.id)
    like = backups.db_system(db_system_id)
    clock.step("rollback: delete the failed DB system (its address is needed)", lambda: backups.delete(db_system_id))
    result.restored_db_system_id = clock.step(
        f"rollback: restore backup {result.backup.id} into a new DB system at {like.ip_address}",
        lambda: backups.restore(result.backup.id, like), lambda new_id: new_id)

    def import_state():
        state = rm.tf_state(stack.id)
        edited = state_takeover.take_over(state, db_system_id, result.restored_db_system_id, result.backup.id)
        return workflows.require_success(rm, workflows.follow(rm, rm.import_tf_state(stack.id, edited), events))

    clock.step("rollback: point the stack's state at the restored DB system", import_state)
    previous = _with_version(deploy, result.from_version)

    def apply_previous() -> None:
        workflows.apply(rm, previous, events, confirm=lambda planned: True)
        runtime.roll_out(result.from_version, False, getattr(runtime, "previous_image", None))

    clock.step(f"rollback: apply MLflow {result.from_version} again", apply_previous)
    problems = clock.step("rollback: health gate", lambda: health_gate(url, result.from_version),
                          lambda found: "healthy" if not found else "; ".join(found))
    result.rolled_back = not problems
    if problems:
        where = ("see the tracking VM with `orm-pack logs` and commands.txt" if isinstance(runtime, VmRuntime)
                 else "see the cluster with `kubectl -n mlflow get pods` and `kubectl -n mlflow logs job/mlflow-migrate`")
        raise UserError(f"the rollback's health gate failed too ({'; '.join(problems)}): the database is restored "
                        f"({result.restored_db_system_id}); {where}", ExitCode.FAILURE)
