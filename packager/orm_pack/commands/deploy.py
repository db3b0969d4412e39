"""`orm-pack plan|apply|destroy|outputs|logs|status`: arguments in, deploy workflows run, results rendered.

With --json the result document goes to stdout and everything for people (progress, logs, warnings)
to stderr.
"""
from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.prompt import Confirm

from orm_pack.cloud import health, ociconfig, resource_manager, stack_ca
from orm_pack.commands import _shared as shared
from orm_pack.commands import views
from orm_pack.deploy import workflows
from orm_pack.errors import ExitCode, UserError
from orm_pack.stack import inputs


def deploy_parent() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                        help="stack variable (repeatable; lists and maps as JSON). Not for passwords: use "
                        f"{inputs.ENV_PREFIX}NAME environment variables or --var-file")
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
    auth = shared.auth_parent()
    deploy_options = deploy_parent()
    p = subparsers.add_parser(
        "plan", parents=[auth, shared.stack_parent(True), deploy_options],
        help="upload the stack and run a Resource Manager plan job",
        description="Find or create the stack, upload the zip if it changed, run a PLAN job, stream its log and "
        "show every planned change, the data it puts at risk and an estimated monthly cost.",
        epilog=f"Variables also come from {inputs.ENV_PREFIX}<name> environment variables.")
    p.set_defaults(func=shared.guarded(_run_plan))
    p = subparsers.add_parser(
        "apply", parents=[auth, shared.stack_parent(True), deploy_options],
        help="plan, confirm and apply the stack; print MLflow URL, IPs and commands.txt",
        description="Plan, show what changes (replacements, data at risk, estimated cost), ask (unless "
        "--auto-approve), apply that plan (FROM_PLAN_JOB_ID), then print the outputs and each VM's commands.txt.",
        epilog=f"Variables also come from {inputs.ENV_PREFIX}<name> environment variables.")
    _ca_endpoint_argument(p)
    p.set_defaults(func=shared.guarded(_run_apply))
    p = subparsers.add_parser(
        "destroy", parents=[auth, shared.stack_parent(True)],
        help="destroy the stack's resources, then delete the stack",
        description="Look at the artifact bucket first: when it holds artifacts, say how many and stop (unless "
        "--delete-artifacts). Then run a DESTROY job and, when it succeeds, delete the dashboard the stack imported "
        "(Terraform cannot) and the stack. The MySQL DB system "
        "leaves a final backup and keeps its automatic backups unless the stack was told otherwise "
        "(mysql_keep_backups_on_delete).")
    p.add_argument("--auto-approve", action="store_true", help="do not ask for confirmation")
    p.add_argument("--keep-stack", action="store_true", help="keep the (empty) stack in Resource Manager")
    p.add_argument("--delete-artifacts", action="store_true",
                   help="delete every object version in the artifact bucket first (copy them out before!)")
    p.add_argument("--object-storage-endpoint", metavar="URL", help="Object Storage endpoint URL (default: the "
                   "region's)")
    p.add_argument("--management-dashboard-endpoint", metavar="URL", help="Management Dashboard endpoint URL "
                   "(default: the region's)")
    p.set_defaults(func=shared.guarded(_run_destroy))
    p = subparsers.add_parser("outputs", parents=[auth, shared.stack_parent(False)],
                              help="print the outputs of the last apply (or of JOB)")
    p.add_argument("job", nargs="?", metavar="JOB", help="job OCID (default: the stack's latest successful apply)")
    _ca_endpoint_argument(p)
    p.set_defaults(func=shared.guarded(_run_outputs))
    p = subparsers.add_parser("logs", parents=[auth], help="print a job's log")
    p.add_argument("job", metavar="JOB", help="job OCID")
    p.add_argument("-f", "--follow", action="store_true", help="keep streaming until the job ends")
    p.set_defaults(func=shared.guarded(_run_logs))
    p = subparsers.add_parser("status", parents=[auth, shared.stack_parent(True)],
                              help="show the stack and its recent jobs (--health: and how the deployment runs)",
                              description="Show the stack and its recent jobs. With --health also the latest "
                              "minute of every metric the deployment's VMs post to OCI Monitoring (the figures the "
                              "stack's alarms watch), and exit 1 when one of them says something is wrong.")
    p.add_argument("--jobs", type=int, default=10, metavar="N", help="how many recent jobs to show (default 10)")
    p.add_argument("--health", action="store_true", help="read the deployment's metrics from OCI Monitoring")
    p.add_argument("--minutes", type=_minutes, default=10, metavar="N",
                   help="how far back --health looks for the latest figures (1 to 1440, default 10)")
    p.add_argument("--monitoring-endpoint", metavar="URL", help="OCI Monitoring endpoint URL (default: the region's)")
    p.set_defaults(func=shared.guarded(_run_status))


# ------------------------------------------------------------------ what every command works with
def ask(session: shared.Session, question: str, what: str) -> bool:
    if session.args.auto_approve:
        return True
    if not sys.stdin.isatty():
        raise UserError(f"refusing to {what} without confirmation: stdin is not a terminal; pass --auto-approve",
                        ExitCode.USAGE)
    return Confirm.ask(question, console=session.err, default=False)


def deploy_request(session: shared.Session) -> workflows.DeployRequest:
    args, context = session.args, session.context
    artifact, given = args.stack_inputs
    auto = {"tenancy_ocid": context.tenancy_id, "region": context.region, "compartment_ocid": args.compartment,
            "current_user_ocid": context.user_id}
    return workflows.DeployRequest(args.compartment, args.stack_name, artifact, given, auto, args.terraform_version)


def _emit(document) -> None:
    print(views.to_json(document))


# ------------------------------------------------------------------ commands
def _run_plan(session: shared.Session) -> int:
    args = session.args
    planned = workflows.plan(session.rm, deploy_request(session), shared.ConsoleEvents(session.err))
    views.print_plan(session.err, planned)
    if args.json:
        _emit({"stack_id": planned.stack.stack.id, "stack_action": planned.stack.action,
               "plan_job_id": planned.job.id, "plan": views.plan_document(planned)})
    elif not planned.summary.no_changes:
        session.err.print(f"Apply this plan: orm-pack apply --compartment {args.compartment} "
                          f"--stack-name {args.stack_name}", markup=False)
    return ExitCode.OK


def _ca_endpoint_argument(parser) -> None:
    parser.add_argument("--certificates-endpoint", metavar="URL",
                        help="OCI Certificates retrieval endpoint URL, where the servers' CA certificate is read "
                             "(default: the region's)")


def _save_ca(session: shared.Session, outputs: list) -> str | None:
    """Saves the servers' CA certificate beside the OCI config and says how clients use it; its path."""
    saved = stack_ca.save(session.context, views.outputs_map(outputs), session.args.stack_name,
                          session.args.certificates_endpoint)
    if saved is None:
        return None
    if saved.problem:
        session.err.print(f"WARNING: {saved.problem}", markup=False, style="bold red")
        return None
    session.err.print(f"\nThe servers' CA certificate: {saved.path}. Clients verify with it:\n"
                      f"  export MLFLOW_TRACKING_SERVER_CERT_PATH={saved.path}", markup=False, highlight=False)
    return str(saved.path)


def _run_apply(session: shared.Session) -> int:
    def confirm(planned: workflows.PlanResult) -> bool:
        views.print_plan(session.err, planned)
        question = "Apply these changes?"
        if planned.summary.data_at_risk:
            question = "Apply these changes, losing the data above?"
        return ask(session, question, "apply the plan")

    result = workflows.apply(session.rm, deploy_request(session), shared.ConsoleEvents(session.err), confirm)
    if result.plan.summary.no_changes:
        views.print_plan(session.err, result.plan)
    if session.args.json:
        views.print_outputs(session.err, result.outputs)
        _emit(views.apply_document(result) | {"ca_file": _save_ca(session, result.outputs)})
    else:
        views.print_outputs(session.out, result.outputs)
        _save_ca(session, result.outputs)
    return ExitCode.OK


def _run_destroy(session: shared.Session) -> int:
    args = session.args

    def confirm(resources: list[str], contents) -> bool:
        if contents and not contents.empty:
            session.err.print(f"WARNING: {contents.describe()}: --delete-artifacts deletes them all first",
                              markup=False, style="bold red")
        if not resources:
            session.err.print(f"Stack {args.stack_name} manages no resources.", markup=False)
            return ask(session, "Delete the empty stack?", "delete the stack")
        session.err.print(f"Stack {args.stack_name} manages {len(resources)} resources:", markup=False)
        for address in resources:
            session.err.print(f"  - {address}", markup=False)
        for warning in views.destroy_warnings(resources):
            session.err.print(warning, markup=False, style="bold red")
        return ask(session, f"Destroy these {len(resources)} resources?", "destroy the resources")

    def storage_client():
        strategy = ociconfig.retry_strategy(args.max_attempts)
        return ociconfig.client("object_storage", session.context, strategy, args.object_storage_endpoint)

    def dashboards_client():
        strategy = ociconfig.retry_strategy(args.max_attempts)
        return ociconfig.client("management_dashboard", session.context, strategy, args.management_dashboard_endpoint)

    result = workflows.destroy(session.rm, args.compartment, args.stack_name, shared.ConsoleEvents(session.err), confirm,
                            keep_stack=args.keep_stack, client_for_bucket=storage_client,
                            delete_artifacts=args.delete_artifacts, client_for_dashboards=dashboards_client)
    if args.json:
        _emit(views.destroy_document(result))
    return ExitCode.OK


def _show(session: shared.Session, document: dict, for_people) -> int:
    """The result as JSON with --json, else as `for_people` prints it."""
    if session.args.json:
        _emit(document)
    else:
        for_people()
    return ExitCode.OK


def _run_outputs(session: shared.Session) -> int:
    args = session.args
    result = workflows.outputs(session.rm, args.compartment, args.stack_name, args.job)
    if args.json:
        _emit(views.outputs_document(result) | {"ca_file": _save_ca(session, result.outputs)})
        return ExitCode.OK
    views.print_outputs(session.out, result.outputs)
    _save_ca(session, result.outputs)
    return ExitCode.OK


def _run_logs(session: shared.Session) -> int:
    args = session.args
    result = workflows.logs(session.rm, args.job, shared.ConsoleEvents(session.err), follow_job=args.follow)
    if result.followed:
        return ExitCode.OK if result.job.state == "SUCCEEDED" else ExitCode.FAILURE
    if args.json:
        _emit(views.logs_document(result))
    else:
        for line in result.lines:
            session.out.print(line.message, markup=False, highlight=False)
        Console(stderr=True, highlight=False).print(f"{result.job.operation} job {result.job.id}: "
                                                    f"{result.job.state}", markup=False)
    return ExitCode.OK


def _minutes(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 1440:
        raise argparse.ArgumentTypeError(f"--minutes takes a whole number of minutes from 1 to 1440 (got {text!r})")
    return int(text)


def _run_status(session: shared.Session) -> int:
    args = session.args
    result = workflows.status(session.rm, args.compartment, args.stack_name, args.jobs)
    if not args.health:
        return _show(session, views.status_document(result), lambda: views.print_status(session.out, result))
    deployment = result.stack.variables.get("name_prefix") or health.DEFAULT_NAME_PREFIX
    found = health.read(session.context, result.stack.compartment_id, deployment, args.minutes,
                        args.monitoring_endpoint)
    document = {**views.status_document(result), "health": health.document(found)}

    def for_people():
        views.print_status(session.out, result)
        views.print_health(session.out, found)

    _show(session, document, for_people)
    return ExitCode.OK if found.healthy else ExitCode.FAILURE
