"""`orm-pack plan|apply|destroy|outputs|logs|status`: arguments in, deploy workflows run, results rendered.

With --json the result document goes to stdout and everything for people (progress, logs, warnings)
to stderr.
"""
from __future__ import annotations

import argparse
import functools
import sys
from dataclasses import dataclass

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.prompt import Confirm

from . import deploy, ociconfig, ocids, render, resource_manager, variables, zipbuild
from .errors import ExitCode, UserError

DEFAULT_STACK_NAME = "oci-mlflow"


# ------------------------------------------------------------------ parsers
def add_credential_arguments(group) -> None:
    """--config-file, --profile and --auth, as oci-cli takes them (ociconfig.AuthOptions reads them)."""
    group.add_argument("--config-file", help="OCI config file (env OCI_CLI_CONFIG_FILE; default ~/.oci/config)")
    group.add_argument("--profile", help="profile in the config file (env OCI_CLI_PROFILE; default DEFAULT)")
    group.add_argument("--auth", choices=ociconfig.AUTH_TYPES, help="how to authenticate (env OCI_CLI_AUTH; "
                       "default api_key)")


def _auth_parent() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("OCI authentication (as oci-cli)")
    add_credential_arguments(group)
    group.add_argument("--region", help="region, e.g. eu-frankfurt-1 (env OCI_CLI_REGION; default: the profile's)")
    group.add_argument("--endpoint", help="Resource Manager endpoint URL (env OCI_CLI_ENDPOINT)")
    group.add_argument("--max-attempts", type=int, default=ociconfig.DEFAULT_MAX_ATTEMPTS, metavar="N",
                       help="attempts per API call on throttling, 5xx or no answer (default 8; 1 turns retries off)")
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
                        help="stack variable (repeatable; lists and maps as JSON). Not for passwords: use "
                        f"{variables.ENV_PREFIX}NAME environment variables or --var-file")
    parent.add_argument("--var-file", action="append", default=[], metavar="FILE",
                        help="variables from a .json, .yaml or .tfvars file (repeatable; later files win, --var "
                        "wins over files, files over the environment)")
    parent.add_argument("--terraform-version", metavar="VERSION", default=resource_manager.TERRAFORM_VERSION,
                        help=f"Terraform version of the stack (default and oldest Resource Manager runs: "
                        f"{resource_manager.TERRAFORM_VERSION})")
    parent.add_argument("--source", metavar="DIR", help="directory with stack/ and schema.yaml (default: the "
                        "checkout, else the bundled stack)")
    parent.add_argument("--zip", metavar="FILE", help="upload this zip (from `orm-pack build`) instead of building one")
    parent.add_argument("--auto-approve", action="store_true", help="do not ask for confirmation")
    return parent


def register(subparsers) -> None:
    auth = _auth_parent()
    deploy_options = _deploy_parent()
    p = subparsers.add_parser(
        "plan", parents=[auth, _stack_parent(True), deploy_options],
        help="upload the stack and run a Resource Manager plan job",
        description="Find or create the stack, upload the zip if it changed, run a PLAN job, stream its log and "
        "show every planned change, the data it puts at risk and an estimated monthly cost.",
        epilog=f"Variables also come from {variables.ENV_PREFIX}<name> environment variables.")
    p.set_defaults(func=_guarded(_run_plan))
    p = subparsers.add_parser(
        "apply", parents=[auth, _stack_parent(True), deploy_options],
        help="plan, confirm and apply the stack; print MLflow URL, IPs and commands.txt",
        description="Plan, show what changes (replacements, data at risk, estimated cost), ask (unless "
        "--auto-approve), apply that plan (FROM_PLAN_JOB_ID), then print the outputs and each VM's commands.txt.",
        epilog=f"Variables also come from {variables.ENV_PREFIX}<name> environment variables.")
    p.set_defaults(func=_guarded(_run_apply))
    p = subparsers.add_parser(
        "destroy", parents=[auth, _stack_parent(True)],
        help="destroy the stack's resources, then delete the stack",
        description="Look at the artifact bucket first: when it holds artifacts, say how many and stop (unless "
        "--delete-artifacts). Then run a DESTROY job and, when it succeeds, delete the stack. The MySQL DB system "
        "leaves a final backup and keeps its automatic backups unless the stack was told otherwise "
        "(mysql_keep_backups_on_delete).")
    p.add_argument("--auto-approve", action="store_true", help="do not ask for confirmation")
    p.add_argument("--keep-stack", action="store_true", help="keep the (empty) stack in Resource Manager")
    p.add_argument("--delete-artifacts", action="store_true",
                   help="delete every object version in the artifact bucket first (copy them out before!)")
    p.add_argument("--object-storage-endpoint", metavar="URL", help="Object Storage endpoint URL (default: the "
                   "region's)")
    p.set_defaults(func=_guarded(_run_destroy))
    p = subparsers.add_parser("outputs", parents=[auth, _stack_parent(False)],
                              help="print the outputs of the last apply (or of JOB)")
    p.add_argument("job", nargs="?", metavar="JOB", help="job OCID (default: the stack's latest successful apply)")
    p.set_defaults(func=_guarded(_run_outputs))
    p = subparsers.add_parser("logs", parents=[auth], help="print a job's log")
    p.add_argument("job", metavar="JOB", help="job OCID")
    p.add_argument("-f", "--follow", action="store_true", help="keep streaming until the job ends")
    p.set_defaults(func=_guarded(_run_logs))
    p = subparsers.add_parser("status", parents=[auth, _stack_parent(True)],
                              help="show the stack and its recent jobs")
    p.add_argument("--jobs", type=int, default=10, metavar="N", help="how many recent jobs to show (default 10)")
    p.set_defaults(func=_guarded(_run_status))


# ------------------------------------------------------------------ what every command works with
@dataclass
class Session:
    args: argparse.Namespace
    context: ociconfig.OciContext
    rm: "deploy.ResourceManager"
    out: Console      # results (stdout)
    err: Console      # progress, logs and messages (stderr with --json)

    def flags(self) -> str:
        return " ".join(self.context.follow_flags())


class ConsoleEvents:
    """deploy.Events on the terminal: a spinner with the job's state, its log lines as they come."""

    def __init__(self, console: Console):
        self.console = console
        self.progress: Progress | None = None
        self.task = None

    def message(self, text: str) -> None:
        self.console.print(text, markup=False)

    def job_started(self, job) -> None:
        self.console.print(f"{job.operation} job {job.id}", markup=False)
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                 console=self.console, transient=True)
        self.task = self.progress.add_task(f"{job.operation} job {job.state}")
        self.progress.start()

    def job_state(self, job) -> None:
        if self.progress:
            self.progress.update(self.task, description=f"{job.operation} job {job.state}")

    def job_log(self, line) -> None:
        (self.progress.console if self.progress else self.console).print(line.message, markup=False,
                                                                         highlight=False)

    def job_ended(self, job) -> None:
        if self.progress:
            self.progress.stop()
            self.progress = None

    def deleting(self, done: int, total: int) -> None:
        if done == 1 or done == total or done % 100 == 0:
            self.console.print(f"deleting artifacts: {done} of {total} object versions", markup=False)


def _check_inputs(args: argparse.Namespace) -> None:
    """Everything the command line and the variables can get wrong, before the SDK loads or a request
    is made: a typo costs half a second, not a round trip."""
    if args.max_attempts < 1:
        raise UserError("--max-attempts must be at least 1", ExitCode.USAGE)
    if getattr(args, "compartment", None):
        ocids.compartment(args.compartment)
    if getattr(args, "job", None):
        ocids.job(args.job)
    if getattr(args, "terraform_version", None):
        resource_manager.terraform_version(args.terraform_version)
    if hasattr(args, "var_file"):  # plan and apply: the stack and the variables it is given
        args.stack_inputs = (zipbuild.stack_artifact(args.source, args.zip), variables.gather(args.var_file, args.var))
        variables.check_given(args.stack_inputs[0].declared, args.stack_inputs[1])


def _session(args: argparse.Namespace) -> Session:
    from .resource_manager import ResourceManager

    err_console = Console(stderr=True, highlight=False, soft_wrap=True)
    context = ociconfig.load(ociconfig.AuthOptions(
        config_file=args.config_file, profile=args.profile, region=args.region, endpoint=args.endpoint,
        auth=args.auth))
    for warning in context.warnings:
        err_console.print(f"WARNING: {warning}", markup=False)
    strategy = ociconfig.retry_strategy(args.max_attempts,
                                        on_retry=lambda notice: err_console.print(notice.message(), markup=False))
    client = ociconfig.resource_manager_client(context, strategy)
    out = Console(highlight=False, soft_wrap=True)
    return Session(args, context, ResourceManager(client, poll_seconds=max(args.poll_interval, 0.05)), out,
                   err_console if args.json else out)


def _guarded(command):
    """Run a command with a session; SDK errors become one actionable line with a distinct exit code;
    a failed job shows its log tail; Ctrl-C says how to follow the job that goes on."""

    @functools.wraps(command)
    def run(args):
        _check_inputs(args)
        import oci  # the SDK loads only once the inputs are known to be good
        from oci._vendor.requests.exceptions import RequestException as VendoredRequestException

        from .resource_manager import translate_service_error

        session = None
        try:
            session = _session(args)
            return command(session)
        except deploy.JobFailed as failure:
            render.print_job_failure(session.err, failure)
            raise
        except deploy.Interrupted as interrupted:
            render.print_interrupted(session.err, interrupted, session.flags())
            return ExitCode.INTERRUPTED
        except oci.exceptions.ServiceError as exc:
            credentials = session.context.describe() if session else "your OCI config"
            raise translate_service_error(exc, credentials) from None
        except (VendoredRequestException, oci.exceptions.RequestException, oci.exceptions.ConnectTimeout,
                ConnectionError, TimeoutError) as exc:
            where = args.endpoint or (f"region {session.context.region}" if session else "the region")
            raise UserError(f"cannot reach Resource Manager ({where}): {type(exc).__name__}; check --region, "
                            "--endpoint and your network or proxy", ExitCode.SERVICE) from None
        except oci.exceptions.MaximumWaitTimeExceeded:
            raise UserError("gave up waiting for Resource Manager; the job keeps running: see `orm-pack status`",
                            ExitCode.SERVICE) from None

    return run


def _ask(session: Session, question: str, what: str) -> bool:
    if session.args.auto_approve:
        return True
    if not sys.stdin.isatty():
        raise UserError(f"refusing to {what} without confirmation: stdin is not a terminal; pass --auto-approve",
                        ExitCode.USAGE)
    return Confirm.ask(question, console=session.err, default=False)


def _request(session: Session) -> deploy.DeployRequest:
    args, context = session.args, session.context
    artifact, given = args.stack_inputs
    auto = {"tenancy_ocid": context.tenancy_id, "region": context.region, "compartment_ocid": args.compartment,
            "current_user_ocid": context.user_id}
    return deploy.DeployRequest(args.compartment, args.stack_name, artifact, given, auto, args.terraform_version)


def _emit(document) -> None:
    print(render.to_json(document))


# ------------------------------------------------------------------ commands
def _run_plan(session: Session) -> int:
    args = session.args
    planned = deploy.plan(session.rm, _request(session), ConsoleEvents(session.err))
    render.print_plan(session.err, planned)
    if args.json:
        _emit({"stack_id": planned.stack.stack.id, "stack_action": planned.stack.action,
               "plan_job_id": planned.job.id, "plan": render.plan_document(planned)})
    elif not planned.summary.no_changes:
        session.err.print(f"Apply this plan: orm-pack apply --compartment {args.compartment} "
                          f"--stack-name {args.stack_name}", markup=False)
    return ExitCode.OK


def _run_apply(session: Session) -> int:
    def confirm(planned: deploy.PlanResult) -> bool:
        render.print_plan(session.err, planned)
        question = "Apply these changes?"
        if planned.summary.data_at_risk:
            question = "Apply these changes, losing the data above?"
        return _ask(session, question, "apply the plan")

    result = deploy.apply(session.rm, _request(session), ConsoleEvents(session.err), confirm)
    if result.plan.summary.no_changes:
        render.print_plan(session.err, result.plan)
    if session.args.json:
        render.print_outputs(session.err, result.outputs)
        _emit(render.apply_document(result))
    else:
        render.print_outputs(session.out, result.outputs)
    return ExitCode.OK


def _run_destroy(session: Session) -> int:
    args = session.args

    def confirm(resources: list[str], contents) -> bool:
        if contents and not contents.empty:
            session.err.print(f"WARNING: {contents.describe()}: --delete-artifacts deletes them all first",
                              markup=False, style="bold red")
        if not resources:
            session.err.print(f"Stack {args.stack_name} manages no resources.", markup=False)
            return _ask(session, "Delete the empty stack?", "delete the stack")
        session.err.print(f"Stack {args.stack_name} manages {len(resources)} resources:", markup=False)
        for address in resources:
            session.err.print(f"  - {address}", markup=False)
        for warning in render.destroy_warnings(resources):
            session.err.print(warning, markup=False, style="bold red")
        return _ask(session, f"Destroy these {len(resources)} resources?", "destroy the resources")

    def storage_client():
        strategy = ociconfig.retry_strategy(args.max_attempts)
        return ociconfig.object_storage_client(session.context, strategy, args.object_storage_endpoint)

    result = deploy.destroy(session.rm, args.compartment, args.stack_name, ConsoleEvents(session.err), confirm,
                            keep_stack=args.keep_stack, client_for_bucket=storage_client,
                            delete_artifacts=args.delete_artifacts)
    if args.json:
        _emit(render.destroy_document(result))
    return ExitCode.OK


def _show(session: Session, document: dict, for_people) -> int:
    """The result as JSON with --json, else as `for_people` prints it."""
    if session.args.json:
        _emit(document)
    else:
        for_people()
    return ExitCode.OK


def _run_outputs(session: Session) -> int:
    args = session.args
    result = deploy.outputs(session.rm, args.compartment, args.stack_name, args.job)
    return _show(session, render.outputs_document(result), lambda: render.print_outputs(session.out, result.outputs))


def _run_logs(session: Session) -> int:
    args = session.args
    result = deploy.logs(session.rm, args.job, ConsoleEvents(session.err), follow_job=args.follow)
    if result.followed:
        return ExitCode.OK if result.job.state == "SUCCEEDED" else ExitCode.FAILURE
    if args.json:
        _emit(render.logs_document(result))
    else:
        for line in result.lines:
            session.out.print(line.message, markup=False, highlight=False)
        Console(stderr=True, highlight=False).print(f"{result.job.operation} job {result.job.id}: "
                                                    f"{result.job.state}", markup=False)
    return ExitCode.OK


def _run_status(session: Session) -> int:
    args = session.args
    result = deploy.status(session.rm, args.compartment, args.stack_name, args.jobs)
    return _show(session, render.status_document(result), lambda: render.print_status(session.out, result))
