"""`orm-pack plan|apply|destroy|outputs|logs|status`: argument parsing and printing over orm.py.

With --json, the result document goes to stdout and everything for humans (progress, logs) to stderr.
"""
from __future__ import annotations

import argparse
import functools
import io
import json
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.panel import Panel
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.prompt import Confirm
from rich.table import Table

from . import ociconfig, tfvariables, variables, zipbuild
from .errors import ExitCode, UserError

DEFAULT_STACK_NAME = "oci-mlflow"
LOG_TAIL_LINES = 30


# ------------------------------------------------------------------ parsers
def _auth_parent() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("OCI authentication (as oci-cli)")
    group.add_argument("--config-file", help="OCI config file (env OCI_CLI_CONFIG_FILE; default ~/.oci/config)")
    group.add_argument("--profile", help="profile in the config file (env OCI_CLI_PROFILE; default DEFAULT)")
    group.add_argument("--region", help="region, e.g. eu-frankfurt-1 (env OCI_CLI_REGION; default: the profile's)")
    group.add_argument("--endpoint", help="Resource Manager endpoint URL (env OCI_CLI_ENDPOINT)")
    group.add_argument("--auth", choices=ociconfig.AUTH_TYPES, help="how to authenticate (env OCI_CLI_AUTH; "
                       "default api_key)")
    group.add_argument("--max-attempts", type=int, default=ociconfig.DEFAULT_MAX_ATTEMPTS, metavar="N",
                       help="attempts per API call on throttling/5xx (default 8; 1 turns retries off)")
    group.add_argument("--poll-interval", type=float, default=5.0, metavar="SECONDS",
                       help="longest wait between job status polls (default 5)")
    parent.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    return parent


def _stack_parent(required: bool) -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--compartment", "--compartment-id", dest="compartment", required=required, metavar="OCID",
                        help="compartment of the stack")
    parent.add_argument("--stack-name", default=DEFAULT_STACK_NAME,
                        help=f"display name of the stack (default {DEFAULT_STACK_NAME})")
    return parent


def _deploy_parent() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                        help="stack variable (repeatable); lists and maps as JSON")
    parent.add_argument("--var-file", action="append", default=[], metavar="FILE",
                        help="variables from a .json, .yaml or .tfvars file (repeatable; --var wins)")
    parent.add_argument("--terraform-version", metavar="VERSION", help="Terraform version of the stack, e.g. 1.5.x")
    parent.add_argument("--source", metavar="DIR", help="directory with stack/ and schema.yaml (default: the "
                        "checkout, else the bundled stack)")
    parent.add_argument("--zip", metavar="FILE", type=Path, help="upload this zip (from `orm-pack build`) "
                        "instead of building one")
    parent.add_argument("--auto-approve", action="store_true", help="do not ask for confirmation")
    return parent


def register(subparsers) -> None:
    auth = _auth_parent()
    deploy = _deploy_parent()
    p = subparsers.add_parser("plan", parents=[auth, _stack_parent(True), deploy],
                              help="upload the stack and run a Resource Manager plan job",
                              description="Find or create the stack, upload the zip if it changed, run a PLAN job, "
                              "stream its log and summarize the plan.")
    p.set_defaults(func=_guard(run_plan))
    p = subparsers.add_parser("apply", parents=[auth, _stack_parent(True), deploy],
                              help="plan, confirm and apply the stack; print MLflow URL, IPs and commands.txt",
                              description="Plan, show what changes, ask (unless --auto-approve), apply the plan "
                              "(FROM_PLAN_JOB_ID), then print the outputs and each VM's commands.txt.")
    p.set_defaults(func=_guard(run_apply))
    p = subparsers.add_parser("destroy", parents=[auth, _stack_parent(True)],
                              help="destroy the stack's resources, then delete the stack",
                              description="Run a DESTROY job and, when it succeeds, delete the stack.")
    p.add_argument("--auto-approve", action="store_true", help="do not ask for confirmation")
    p.add_argument("--keep-stack", action="store_true", help="keep the (empty) stack in Resource Manager")
    p.set_defaults(func=_guard(run_destroy))
    p = subparsers.add_parser("outputs", parents=[auth, _stack_parent(False)],
                              help="print the outputs of the last apply (or of JOB)")
    p.add_argument("job", nargs="?", metavar="JOB", help="job OCID (default: the stack's latest successful apply)")
    p.set_defaults(func=_guard(run_outputs))
    p = subparsers.add_parser("logs", parents=[auth], help="print a job's log")
    p.add_argument("job", metavar="JOB", help="job OCID")
    p.add_argument("-f", "--follow", action="store_true", help="keep streaming until the job ends")
    p.set_defaults(func=_guard(run_logs))
    p = subparsers.add_parser("status", parents=[auth, _stack_parent(True)],
                              help="show the stack and its recent jobs")
    p.add_argument("--jobs", type=int, default=10, metavar="N", help="how many recent jobs to show (default 10)")
    p.set_defaults(func=_guard(run_status))


# ------------------------------------------------------------------ plumbing
@dataclass
class Session:
    """What every command works with."""

    args: argparse.Namespace
    context: ociconfig.OciContext
    rm: "ResourceManager"  # orm.ResourceManager
    out: Console      # results (stdout)
    err: Console      # progress, logs and messages (stderr when --json)

    def flags(self) -> str:
        return " ".join(self.context.follow_flags())


def _session(args: argparse.Namespace) -> Session:
    from .orm import ResourceManager

    context = ociconfig.load(ociconfig.AuthOptions(
        config_file=args.config_file, profile=args.profile, region=args.region, endpoint=args.endpoint,
        auth=args.auth))
    if args.max_attempts < 1:
        raise UserError("--max-attempts must be at least 1", ExitCode.USAGE)
    client = ociconfig.resource_manager_client(context, ociconfig.retry_strategy(args.max_attempts))
    rm = ResourceManager(client, poll_seconds=max(args.poll_interval, 0.05))
    out = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False, soft_wrap=True) if args.json else out
    return Session(args, context, rm, out, err)


def _guard(command):
    """Turn SDK errors into one actionable line with a distinct exit code."""

    @functools.wraps(command)
    def run(args):
        import oci  # the SDK loads only for commands that use it
        import requests

        from .orm import translate_service_error

        session = None
        try:
            session = _session(args)
            return command(session)
        except oci.exceptions.ServiceError as exc:
            credentials = session.context.describe() if session else "your OCI config"
            raise translate_service_error(exc, credentials) from None
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                oci.exceptions.RequestException, oci.exceptions.ConnectTimeout) as exc:
            where = args.endpoint or f"region {getattr(session.context, 'region', None) if session else args.region}"
            raise UserError(f"cannot reach Resource Manager ({where}): {type(exc).__name__}; check --region, "
                            "--endpoint and your network or proxy", ExitCode.SERVICE) from None
        except oci.exceptions.MaximumWaitTimeExceeded:
            raise UserError("gave up waiting for Resource Manager; the job keeps running: see `orm-pack status`",
                            ExitCode.SERVICE) from None

    return run


def _emit_json(session: Session, document) -> None:
    print(json.dumps(document, indent=2, default=str))


# ------------------------------------------------------------------ the stack to upload
@dataclass(frozen=True)
class Upload:
    data: bytes
    sha256: str
    declared: dict
    origin: str


def _upload(args) -> Upload:
    import hashlib

    if args.zip:
        try:
            data = args.zip.read_bytes()
        except OSError as exc:
            raise UserError(f"--zip {args.zip}: {exc.strerror or exc}", ExitCode.USAGE) from None
        if len(data) > zipbuild.MAX_ZIP_BYTES:
            raise UserError(f"--zip {args.zip} is {len(data) / 1048576:.1f} MB, over Resource Manager's 11 MB limit",
                            ExitCode.TOO_LARGE)
        try:
            with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(io.BytesIO(data)) as archive:
                archive.extractall(tmp)
                declared = tfvariables.read_variables(tmp)
        except zipfile.BadZipFile:
            raise UserError(f"--zip {args.zip} is not a zip file", ExitCode.USAGE) from None
        return Upload(data, hashlib.sha256(data).hexdigest(), declared, str(args.zip))
    root = zipbuild.find_source(args.source)
    source = zipbuild.collect(root)
    zipbuild.validate(source)
    data = zipbuild.zip_bytes(source)
    if len(data) > zipbuild.MAX_ZIP_BYTES:
        raise UserError(f"the stack zip would be {len(data) / 1048576:.1f} MB, over Resource Manager's 11 MB limit",
                        ExitCode.TOO_LARGE)
    return Upload(data, hashlib.sha256(data).hexdigest(), tfvariables.read_variables(source.stack_dir), str(root))


def _given_variables(args) -> dict:
    given: dict = {}
    for path in args.var_file:
        given.update(variables.read_var_file(path))
    given.update(variables.parse_assignments(args.var))
    return given


# ------------------------------------------------------------------ job display
def _follow(session: Session, job_id: str, operation: str):
    """Stream a job's log with a live spinner; Ctrl-C leaves the job running and says how to follow it."""
    err = session.err
    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err,
                        transient=True)
    task = progress.add_task(f"{operation} job ACCEPTED")

    def on_state(job):
        progress.update(task, description=f"{operation} job {job.state}")

    def on_log(line):
        progress.console.print(line.message, markup=False, highlight=False)

    from .orm import LogCursor

    try:
        with progress:
            return session.rm.follow_job(job_id, on_log=on_log, on_state=on_state, cursor=LogCursor())
    except KeyboardInterrupt:
        flags = session.flags()
        err.print(f"\nInterrupted. {operation} job {job_id} keeps running in Resource Manager.", markup=False)
        err.print(f"Follow it:  orm-pack logs {job_id} --follow{' ' + flags if flags else ''}", markup=False)
        err.print(f"Cancel it:  oci resource-manager job cancel --job-id {job_id}", markup=False)
        raise _Interrupted() from None


class _Interrupted(Exception):
    pass


def _check_succeeded(session: Session, job) -> None:
    if job.state == "SUCCEEDED":
        return
    err = session.err
    tail = session.rm.log_tail(job.id, LOG_TAIL_LINES)
    err.print(f"\n{job.operation} job {job.id} {job.state}" + (f": {job.failure}" if job.failure else ""),
              markup=False)
    err.print(f"Last {len(tail)} log lines:", markup=False)
    for line in tail:
        err.print("  " + line, markup=False, highlight=False)
    raise UserError(f"{job.operation} job {job.id} {job.state.lower()}"
                    + (f" ({job.failure})" if job.failure else "")
                    + f"; full log: orm-pack logs {job.id}", ExitCode.FAILURE)


def _summary_table(summary: PlanSummary) -> Table:
    table = Table(title="Plan", title_justify="left")
    table.add_column("resource type")
    for column in ("add", "change", "destroy"):
        table.add_column(column, justify="right")
    for rtype, counts in summary.by_type.items():
        table.add_row(rtype, *(str(counts[c]) for c in ("add", "change", "destroy")))
    return table


def _print_summary(session: Session, summary: PlanSummary) -> None:
    err = session.err
    if summary.no_changes:
        err.print("No changes: the infrastructure matches the configuration.")
        return
    if summary.by_type:
        err.print(_summary_table(summary))
    line = f"Plan: {summary.add} to add, {summary.change} to change, {summary.destroy} to destroy."
    if summary.output_changes:
        line += f" Outputs changing: {', '.join(summary.output_changes)}."
    err.print(line, markup=False)


def _summary_json(summary: PlanSummary) -> dict:
    return {"add": summary.add, "change": summary.change, "destroy": summary.destroy, "by_type": summary.by_type,
            "output_changes": list(summary.output_changes), "no_changes": summary.no_changes}


def _confirm(session: Session, question: str, what: str) -> None:
    if session.args.auto_approve:
        return
    if not sys.stdin.isatty():
        raise UserError(f"refusing to {what} without confirmation: stdin is not a terminal; pass --auto-approve",
                        ExitCode.USAGE)
    if not Confirm.ask(question, console=session.err, default=False):
        raise UserError(f"cancelled: nothing was {what.split()[0]}ed", ExitCode.ABORTED)


# ------------------------------------------------------------------ outputs display
def _outputs_json(outputs: list[Output]) -> dict:
    return {o.name: o.value for o in outputs}


def _print_outputs(session: Session, outputs: list[Output]) -> None:
    out = session.out if not session.args.json else session.err
    by_name = {o.name: o for o in outputs}
    if "mlflow_url" in by_name:
        out.print(f"\nMLflow: {by_name['mlflow_url'].value}", markup=False, style="bold")
    table = Table(title="Outputs", title_justify="left", show_lines=False)
    table.add_column("name")
    table.add_column("value", overflow="fold")
    commands = []
    for output in outputs:
        if output.name.startswith("commands_") or output.name.startswith("commands."):
            commands.append(output)
            continue
        value = "(sensitive)" if output.sensitive else output.value
        if not isinstance(value, str):
            value = json.dumps(value)
        table.add_row(output.name, value)
    if table.row_count:
        out.print(table)
    for output in commands:
        vm = output.name.split("_", 1)[1] if "_" in output.name else output.name
        if not output.value:
            continue
        out.print(Panel(str(output.value).rstrip("\n"), title=f"commands.txt on the {vm} VM", title_align="left",
                        expand=False), markup=False, highlight=False)


# ------------------------------------------------------------------ commands
def _prepare(session: Session):
    """Build (or read) the zip, resolve the variables, find-or-create/update the stack."""
    args = session.args
    upload = _upload(args)
    given = _given_variables(args)
    rm = session.rm
    existing = rm.find_stack(args.compartment, args.stack_name)
    auto = {"tenancy_ocid": session.context.tenancy_id, "region": session.context.region,
            "compartment_ocid": args.compartment, "current_user_ocid": session.context.user_id}
    values = variables.resolve(upload.declared, given, auto, existing.variables if existing else None)
    result = rm.ensure_stack(args.compartment, args.stack_name, upload.data, upload.sha256, values,
                             terraform_version=args.terraform_version, existing=existing)
    detail = f" ({', '.join(result.changes)})" if result.changes else ""
    session.err.print(f"Stack {result.stack.name} {result.stack.id}: {result.action}{detail}", markup=False)
    return result


def _plan(session: Session, stack_id: str):
    job = session.rm.start_job(stack_id, "PLAN")
    session.err.print(f"PLAN job {job.id}", markup=False)
    job = _follow(session, job.id, "PLAN")
    _check_succeeded(session, job)
    summary = session.rm.plan_summary(job.id)
    _print_summary(session, summary)
    return job, summary


def run_plan(session: Session) -> int:
    try:
        result = _prepare(session)
        job, summary = _plan(session, result.stack.id)
    except _Interrupted:
        return ExitCode.INTERRUPTED
    if session.args.json:
        _emit_json(session, {"stack_id": result.stack.id, "stack_action": result.action, "plan_job_id": job.id,
                             "plan": _summary_json(summary)})
    elif not summary.no_changes:
        session.err.print(f"Apply this plan: orm-pack apply --compartment {session.args.compartment} "
                          f"--stack-name {session.args.stack_name}", markup=False)
    return ExitCode.OK


def run_apply(session: Session) -> int:
    rm = session.rm
    try:
        result = _prepare(session)
        plan_job, summary = _plan(session, result.stack.id)
        if summary.no_changes:
            apply_job = rm.latest_job(result.stack.id, "APPLY")
        else:
            _confirm(session, "Apply these changes?", "apply the plan")
            apply_job = rm.start_job(result.stack.id, "APPLY", plan_job_id=plan_job.id)
            session.err.print(f"APPLY job {apply_job.id} (from plan job {plan_job.id})", markup=False)
            apply_job = _follow(session, apply_job.id, "APPLY")
            _check_succeeded(session, apply_job)
    except _Interrupted:
        return ExitCode.INTERRUPTED
    outputs = rm.outputs(apply_job.id) if apply_job else []
    if session.args.json:
        _emit_json(session, {"stack_id": result.stack.id, "stack_action": result.action, "plan_job_id": plan_job.id,
                             "apply_job_id": apply_job.id if apply_job else None, "changed": not summary.no_changes,
                             "plan": _summary_json(summary), "outputs": _outputs_json(outputs)})
    else:
        _print_outputs(session, outputs)
    return ExitCode.OK


def run_destroy(session: Session) -> int:
    args, rm = session.args, session.rm
    stack = rm.find_stack(args.compartment, args.stack_name)
    if stack is None:
        raise UserError(f"no orm-pack stack named {args.stack_name!r} in {args.compartment}: nothing to destroy",
                        ExitCode.NOT_FOUND)
    resources = rm.state_resources(stack.id)
    destroy_job = None
    try:
        if resources:
            session.err.print(f"Stack {stack.name} {stack.id} manages {len(resources)} resources:", markup=False)
            for address in resources:
                session.err.print(f"  - {address}", markup=False)
            _confirm(session, f"Destroy these {len(resources)} resources?", "destroy the resources")
            destroy_job = rm.start_job(stack.id, "DESTROY")
            session.err.print(f"DESTROY job {destroy_job.id}", markup=False)
            destroy_job = _follow(session, destroy_job.id, "DESTROY")
            _check_succeeded(session, destroy_job)
        else:
            session.err.print(f"Stack {stack.name} {stack.id} manages no resources.", markup=False)
            if not args.keep_stack:
                _confirm(session, "Delete the empty stack?", "delete the stack")
    except _Interrupted:
        return ExitCode.INTERRUPTED
    if not args.keep_stack:
        rm.delete_stack(stack.id)
        session.err.print(f"Deleted stack {stack.name} {stack.id}", markup=False)
    if args.json:
        _emit_json(session, {"stack_id": stack.id, "destroy_job_id": destroy_job.id if destroy_job else None,
                             "destroyed": resources, "stack_deleted": not args.keep_stack})
    return ExitCode.OK


def run_outputs(session: Session) -> int:
    args, rm = session.args, session.rm
    if args.job:
        job = rm.get_job(args.job)
        if job.operation != "APPLY" or job.state != "SUCCEEDED":
            raise UserError(f"job {job.id} is a {job.state} {job.operation} job: outputs come from a succeeded APPLY "
                            "job", ExitCode.USAGE)
    else:
        if not args.compartment:
            raise UserError("pass JOB or --compartment (and --stack-name) to pick the stack", ExitCode.USAGE)
        stack = rm.find_stack(args.compartment, args.stack_name)
        if stack is None:
            raise UserError(f"no orm-pack stack named {args.stack_name!r} in {args.compartment}: run orm-pack apply",
                            ExitCode.NOT_FOUND)
        job = rm.latest_job(stack.id, "APPLY")
        if job is None:
            raise UserError(f"stack {stack.name} has no successful apply yet: run orm-pack apply", ExitCode.NOT_FOUND)
    outputs = rm.outputs(job.id)
    if args.json:
        _emit_json(session, {"job_id": job.id, "stack_id": job.stack_id, "outputs": _outputs_json(outputs),
                             "sensitive": [o.name for o in outputs if o.sensitive]})
    else:
        _print_outputs(session, outputs)
    return ExitCode.OK


def run_logs(session: Session) -> int:
    args, rm = session.args, session.rm
    job = rm.get_job(args.job)
    if args.follow and not job.done:
        try:
            job = _follow(session, job.id, job.operation)
        except _Interrupted:
            return ExitCode.INTERRUPTED
        return ExitCode.OK if job.state == "SUCCEEDED" else ExitCode.FAILURE
    lines = rm.all_logs(job.id)
    if args.json:
        _emit_json(session, {"job_id": job.id, "state": job.state,
                             "logs": [{"timestamp": l.timestamp, "level": l.level, "message": l.message}
                                      for l in lines]})
    else:
        for line in lines:
            session.out.print(line.message, markup=False, highlight=False)
        Console(stderr=True, highlight=False).print(f"{job.operation} job {job.id}: {job.state}", markup=False)
    return ExitCode.OK


def run_status(session: Session) -> int:
    args, rm = session.args, session.rm
    stack = rm.find_stack(args.compartment, args.stack_name)
    if stack is None:
        raise UserError(f"no orm-pack stack named {args.stack_name!r} in {args.compartment}", ExitCode.NOT_FOUND)
    jobs = rm.list_jobs(stack.id, limit=max(args.jobs, 1))[: args.jobs]
    if args.json:
        _emit_json(session, {
            "stack": {"id": stack.id, "name": stack.name, "state": stack.state, "compartment_id": stack.compartment_id,
                      "terraform_version": stack.terraform_version, "zip_sha256": stack.zip_sha256,
                      "time_created": stack.time_created},
            "jobs": [{"id": j.id, "operation": j.operation, "state": j.state, "time_created": j.time_created,
                      "time_finished": j.time_finished, "failure": j.failure} for j in jobs]})
        return ExitCode.OK
    out = session.out
    out.print(f"Stack {stack.name} {stack.id}: {stack.state} (Terraform {stack.terraform_version})", markup=False)
    table = Table(title="Recent jobs", title_justify="left")
    for column in ("created", "operation", "state", "job"):
        table.add_column(column, overflow="fold")
    for job in jobs:
        created = job.time_created.strftime("%Y-%m-%d %H:%M:%S") if job.time_created else ""
        table.add_row(created, job.operation, job.state, job.id)
    out.print(table)
    return ExitCode.OK
