"""`orm-pack upgrade [--to VERSION] [--dry-run]`: MLflow on a deployed stack to another version, with the checks,
the backup, the migration once, the health gate and the rollback of orm_pack.deploy.upgrade.
`orm-pack upgrade --status`: what the tracking VM says of itself, and the upgrade it refused at boot
(orm_pack.deploy.upgrade_status)."""
from __future__ import annotations

import os

from orm_pack.cloud import ociconfig, stack_ca
from orm_pack.cloud.mysql_backups import MySqlBackups
from orm_pack.cloud.run_command import RunCommand
from orm_pack.commands import _shared as shared
from orm_pack.commands import _tls, upgrade_oke, views
from orm_pack.commands.deploy import ask, deploy_parent, deploy_request
from orm_pack.commands.upgrade_views import print_upgrade_plan, print_upgrade_result, upgrade_document
from orm_pack.deploy import upgrade as upgrade_workflow
from orm_pack.deploy import upgrade_status, workflows
from orm_pack.errors import ExitCode, UserError
from orm_pack.mlflow_api import doctor, health_gate

GATE_WAIT_SECONDS = 1800  # a replaced VM boots, installs, builds or pulls its image and migrates


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "upgrade", parents=[shared.auth_parent(), shared.stack_parent(True), deploy_parent()],
        help="upgrade MLflow on a deployed stack: checks, backup, migration once, health gate, rollback",
        description="Upgrade MLflow (and the stack, to this orm-pack's release) on a deployed stack. On the tracking "
                    "VM (Run Command): what the database's migrations will do, rehearsed on an empty copy of the "
                    "schema, and the pre-checks (a utf8mb3 table, a table without a primary key), which stop the "
                    "upgrade with their fix. Then what the stack's plan replaces, a MySQL HeatWave backup, the "
                    "apply (the tracking VM is replaced and migrates once, at boot), and a health gate (doctor's "
                    "checks, the MLflow version). When the gate fails: the failed database is backed up, the "
                    "backup from before is restored into a new DB system at the same address, the stack's state "
                    "takes it over and the previous version is applied again. On a stack with deployment_target = "
                    "oke the plan runs as a Job of the cluster with the target's image, and after the apply the "
                    "running version's tracking pods stop, the migrate Job runs once and the new version rolls "
                    "out; the rollback rolls out the image the cluster ran before.",
        epilog="The health gate logs in as MLFLOW_TRACKING_USERNAME (default mlflow) with MLFLOW_TRACKING_PASSWORD "
               "(the stack's output mlflow_password_command prints it).")
    p.add_argument("--to", metavar="VERSION", help="the MLflow version (default: this release's)")
    p.add_argument("--dry-run", action="store_true",
                   help="stop after the checks and the plans; the stack is left as it was")
    p.add_argument("--status", action="store_true",
                   help="change nothing: print what the tracking VM says of itself (mlflow-upgrade status, through "
                        "Run Command), last why it refused an upgrade at boot, if it did (then exit 1)")
    p.add_argument("--mlflow-url", metavar="URL",
                   help="where the health gate reaches MLflow (default: the stack's mlflow_url; e.g. an SSH tunnel)")
    p.add_argument("--gate-wait", type=int, default=GATE_WAIT_SECONDS, metavar="SECONDS",
                   help=f"how long the replaced VM may take to answer (default {GATE_WAIT_SECONDS})")
    _tls.add_arguments(p)
    p.add_argument("--certificates-endpoint", metavar="URL", help="OCI Certificates retrieval endpoint URL")
    p.add_argument("--mysql-endpoint", metavar="URL", help="MySQL HeatWave endpoint URL (default: the region's)")
    p.add_argument("--compute-agent-endpoint", metavar="URL",
                   help="Compute Instance Agent (Run Command) endpoint URL (default: the region's)")
    upgrade_oke.add_arguments(p)
    p.set_defaults(func=_run_or_status)


def _versions_of(artifact) -> list[str]:
    """The MLflow versions the stack's form offers (schema.yaml's enum of mlflow_version)."""
    import io
    import zipfile

    import yaml

    with zipfile.ZipFile(io.BytesIO(artifact.data)) as bundle:
        schema = yaml.safe_load(bundle.read("schema.yaml")) if "schema.yaml" in bundle.namelist() else {}
    return [str(v) for v in ((schema.get("variables") or {}).get("mlflow_version") or {}).get("enum") or []]


def _target_version(args) -> str:
    artifact = args.stack_inputs[0]
    declared = artifact.declared.get("mlflow_version")
    if declared is None:
        raise UserError("this stack has no mlflow_version variable to upgrade: build it from a newer release",
                        ExitCode.USAGE)
    version = args.to or str(declared.default)
    offered = _versions_of(artifact)
    if offered and version not in offered:
        raise UserError(f"--to {version}: this release runs MLflow {', '.join(offered)}", ExitCode.USAGE)
    return version


def _health_gate(session, args):
    """gate(url, version) -> problems, logging in as the user in the environment, verifying with --ca-file
    (or $MLFLOW_TRACKING_SERVER_CERT_PATH), else the stack's CA read from OCI Certificates."""
    password = os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if not password and not args.dry_run:
        raise UserError("set MLFLOW_TRACKING_PASSWORD first: the health gate logs in to MLflow (the stack's output "
                        "mlflow_password_command prints it)", ExitCode.USAGE)
    verify, ca_file = _tls.settings(args)

    def gate(url: str, version: str, probe=None) -> list[str]:
        nonlocal ca_file
        if verify and not ca_file:
            outputs = views.outputs_map(workflows.outputs(session.rm, args.compartment, args.stack_name, None).outputs)
            saved = stack_ca.save(session.context, outputs, args.stack_name, args.certificates_endpoint)
            if saved is None or saved.problem:
                return [f"the stack's CA certificate could not be read ({saved.problem if saved else 'no CA'}): "
                        "pass --ca-file"]
            ca_file = str(saved.path)
        target = doctor.DoctorTarget(url, os.environ.get("MLFLOW_TRACKING_USERNAME") or "mlflow", password or "",
                                     ca_file=ca_file, verify_tls=verify)
        return health_gate.check(target, version, args.gate_wait, poll_seconds=min(10.0, args.poll_interval * 10),
                                 probe=probe)
    return gate


def _run(session: shared.Session) -> int:
    args = session.args
    to_version = _target_version(args)
    strategy = ociconfig.retry_strategy(args.max_attempts)
    cloud = upgrade_workflow.Cloud(
        session.rm,
        RunCommand(ociconfig.client("run_command", session.context, strategy,
                                                     args.compute_agent_endpoint),
                                    poll_seconds=max(args.poll_interval, 0.05)),
        MySqlBackups(ociconfig.client("mysql_backups", session.context, strategy, args.mysql_endpoint),
                                      ociconfig.client("mysql_db_systems", session.context, strategy,
                                                       args.mysql_endpoint),
                                      poll_seconds=max(args.poll_interval, 0.05)),
        upgrade_oke.runtime_factory(session))
    events = shared.ConsoleEvents(session.err)

    def confirm(result, planned) -> bool:
        print_upgrade_plan(session.err, result, planned)
        return ask(session, f"Back up MySQL and upgrade MLflow {result.from_version} -> {result.to_version}?",
                    "upgrade")

    request = upgrade_workflow.UpgradeRequest(deploy_request(session), to_version, args.dry_run, args.mlflow_url)
    try:
        result = upgrade_workflow.upgrade(cloud, request, events, confirm, _health_gate(session, args))
    except upgrade_workflow.UpgradeRefused as refused:
        print_upgrade_plan(session.err, refused.result, None)
        raise
    except (upgrade_workflow.UpgradeRolledBack, upgrade_workflow.RollbackFailed) as rolled_back:
        print_upgrade_result(session.err, rolled_back.result)
        raise
    console = session.out if not args.json else session.err
    if args.dry_run:
        print_upgrade_plan(console, result, None)
    print_upgrade_result(console, result)
    if args.json:
        print(views.to_json(upgrade_document(result)))
    return ExitCode.OK


def _run_or_status(args) -> int:
    if not args.status:
        return shared.guarded(_run)(args)
    if args.to or args.dry_run:
        raise UserError("--status changes nothing: it takes neither --to nor --dry-run", ExitCode.USAGE)
    del args.var_file  # it reads the deployed stack's outputs: no stack to build from the checkout
    return shared.guarded(_status)(args)


def _status(session: shared.Session) -> int:
    args = session.args
    run_command = RunCommand(ociconfig.client("run_command", session.context,
                                              ociconfig.retry_strategy(args.max_attempts), args.compute_agent_endpoint),
                             poll_seconds=max(args.poll_interval, 0.05))
    status = upgrade_status.vm_status(session.rm, run_command, args.compartment, args.stack_name)
    if args.json:
        print(views.to_json({"tracking_instance_id": status.instance_id, "mlflow_version": status.mlflow_version,
                             "refused": status.refused, "exit_code": status.exit_code, "output": status.output}))
    else:
        session.out.print(status.output.rstrip("\n"), markup=False, highlight=False)
    if status.refused:
        raise UserError(f"the tracking VM refused an upgrade at boot: {status.refused}", ExitCode.FAILURE)
    if status.exit_code != 0:
        raise UserError(f"mlflow-upgrade status exited {status.exit_code} on {status.instance_id} (its output is "
                        "above)", ExitCode.FAILURE)
    return ExitCode.OK
