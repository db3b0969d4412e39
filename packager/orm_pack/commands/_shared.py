"""What every command that talks to OCI shares: the authentication and stack arguments, the checks of
the inputs made before the SDK loads, the session (config, retries, clients, consoles) and the guarded
runner that turns SDK errors, failed jobs and Ctrl-C into one actionable message and an exit code."""
from __future__ import annotations

import argparse
import functools
from dataclasses import dataclass

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from orm_pack.cloud import ociconfig, ocids, resource_manager
from orm_pack.commands import views
from orm_pack.deploy import workflows
from orm_pack.errors import ExitCode, UserError
from orm_pack.stack import archive, inputs

DEFAULT_STACK_NAME = "oci-mlflow"


# ------------------------------------------------------------------ parsers
def add_credential_arguments(group) -> None:
    """--config-file, --profile and --auth, as oci-cli takes them (ociconfig.AuthOptions reads them)."""
    group.add_argument("--config-file", help="OCI config file (env OCI_CLI_CONFIG_FILE; default ~/.oci/config)")
    group.add_argument("--profile", help="profile in the config file (env OCI_CLI_PROFILE; default DEFAULT)")
    group.add_argument("--auth", choices=ociconfig.AUTH_TYPES, help="how to authenticate (env OCI_CLI_AUTH; "
                       "default api_key)")


def auth_parent() -> argparse.ArgumentParser:
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


def stack_parent(required: bool) -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--compartment", "--compartment-id", dest="compartment", required=required, metavar="OCID",
                        help="compartment of the stack")
    parent.add_argument("--stack-name", default=DEFAULT_STACK_NAME,
                        help=f"display name of the stack (default {DEFAULT_STACK_NAME})")
    return parent


@dataclass
class Session:
    args: argparse.Namespace
    context: ociconfig.OciContext
    rm: "workflows.ResourceManager"
    out: Console      # results (stdout)
    err: Console      # progress, logs and messages (stderr with --json)

    def flags(self) -> str:
        return " ".join(self.context.follow_flags())


class ConsoleEvents:
    """workflows.Events on the terminal: a spinner with the job's state, its log lines as they come."""

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


def check_inputs(args: argparse.Namespace) -> None:
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
        args.stack_inputs = (archive.stack_artifact(args.source, args.zip), inputs.gather(args.var_file, args.var))
        inputs.check_given(args.stack_inputs[0].declared, args.stack_inputs[1])


def open_session(args: argparse.Namespace) -> Session:
    from orm_pack.cloud.resource_manager import ResourceManager

    err_console = Console(stderr=True, highlight=False, soft_wrap=True)
    context = ociconfig.load(ociconfig.AuthOptions(
        config_file=args.config_file, profile=args.profile, region=args.region, endpoint=args.endpoint,
        auth=args.auth))
    for warning in context.warnings:
        err_console.print(f"WARNING: {warning}", markup=False)
    strategy = ociconfig.retry_strategy(args.max_attempts,
                                        on_retry=lambda notice: err_console.print(notice.message(), markup=False))
    client = ociconfig.client("resource_manager", context, strategy, context.endpoint)
    out = Console(highlight=False, soft_wrap=True)
    return Session(args, context, ResourceManager(client, poll_seconds=max(args.poll_interval, 0.05)), out,
                   err_console if args.json else out)


def guarded(command):
    """Run a command with a session; SDK errors become one actionable line with a distinct exit code;
    a failed job shows its log tail; Ctrl-C says how to follow the job that goes on."""

    @functools.wraps(command)
    def run(args):
        check_inputs(args)
        import oci  # the SDK loads only once the inputs are known to be good

        from orm_pack.cloud.resource_manager import translate_service_error

        session = None
        try:
            session = open_session(args)
            return command(session)
        except workflows.JobFailed as failure:
            views.print_job_failure(session.err, failure)
            raise
        except workflows.Interrupted as interrupted:
            views.print_interrupted(session.err, interrupted, session.flags())
            return ExitCode.INTERRUPTED
        except oci.exceptions.ServiceError as exc:
            credentials = session.context.describe() if session else "your OCI config"
            raise translate_service_error(exc, credentials) from None
        except (*ociconfig.network_errors(), TimeoutError) as exc:
            where = args.endpoint or (f"region {session.context.region}" if session else "the region")
            raise UserError(f"cannot reach Resource Manager ({where}): {type(exc).__name__}; check --region, "
                            "--endpoint and your network or proxy", ExitCode.SERVICE) from None
        except oci.exceptions.MaximumWaitTimeExceeded:
            raise UserError("gave up waiting for Resource Manager; the job keeps running: see `orm-pack status`",
                            ExitCode.SERVICE) from None

    return run
