"""`orm-pack oke deploy|delete`: the tracking server on the stack's OKE cluster (deployment_target = oke).

The settings come from the stack's `oke_deploy_settings` output (or --settings, that output saved as
JSON); the manifests are oke/ rendered by `kubectl kustomize`; the kubeconfig is written through the
Container Engine API into a file of its own.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from orm_pack.cloud import ociconfig, stack_ca
from orm_pack.commands import _shared
from orm_pack.deploy import workflows
from orm_pack.errors import ExitCode, UserError
from orm_pack.oke import admin_password, kubeconfig, kubectl, manifests, settings, workflow
from orm_pack.stack import archive


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "oke", help="run the tracking server on the stack's OKE cluster (deployment_target = oke)",
        description="Deploy the tracking server to the OKE cluster the stack created, or remove it.")
    commands = parser.add_subparsers(dest="oke_command", metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--settings", metavar="FILE", help=f"the stack's {settings.OUTPUT} output as a JSON file "
                        "(default: read it from the stack's last apply)")
    add_cluster_access(common)
    common.add_argument("--timeout", type=float, default=900, metavar="SECONDS",
                        help="longest wait for the migrations, each rollout and the load balancer (default 900)")
    parents = [_shared.auth_parent(), _shared.stack_parent(False), common]
    p = commands.add_parser(
        "deploy", parents=parents, help="render oke/ with the stack's outputs, apply it, wait, print the URL",
        description="Read the stack's outputs, write the cluster's kubeconfig, render oke/overlays/oke, run the "
        "database migrations Job to completion, apply the tracking servers and the auth proxy, wait for both "
        "rollouts and the load balancer, and print the MLflow URL.")
    p.add_argument("--image", metavar="IMAGE", help="tracking image to run instead of the release's, e.g. "
                   "<region>.ocir.io/<namespace>/oci-mlflow-tracking:<version>")
    p.add_argument("--source", metavar="DIR", help="directory with oke/ (default: the checkout, else the bundled one)")
    p.add_argument("--secrets-endpoint", metavar="URL", help="Vault secret retrieval endpoint URL (default: the "
                   "region's); the MySQL administrator's password is read with your key, for the migrate Job")
    p.add_argument("--dry-run", action="store_true", help="only render: write the manifests and stop")
    p.add_argument("--output", metavar="FILE", help="with --dry-run: write the manifests here (default: stdout)")
    p.set_defaults(func=_run_deploy)
    p = commands.add_parser("delete", parents=parents, help="remove the tracking server (and its load balancer) "
                            "from the cluster", description="Delete the Service (the cloud deletes its load "
                            "balancer) and then the namespace with everything in it. Run it before `orm-pack "
                            "destroy`: a load balancer left in the stack's subnet stops the subnet's deletion.")
    p.set_defaults(func=_run_delete)
    parser.set_defaults(func=lambda args: parser.print_help() or ExitCode.USAGE)


def add_cluster_access(parser) -> None:
    """How orm-pack reaches the cluster (kube_for): `oke deploy|delete` and `upgrade` on OKE."""
    parser.add_argument("--kubectl", metavar="PATH", help="kubectl to use (default: the one on PATH)")
    parser.add_argument("--kubeconfig", metavar="FILE", help="where to write the cluster's kubeconfig (default "
                        "~/.kube/<stack name>-oke.yaml; your ~/.kube/config is not touched)")
    parser.add_argument("--container-engine-endpoint", metavar="URL", help="Container Engine endpoint URL "
                        "(default: the region's)")


# ------------------------------------------------------------------ inputs
def _settings_file(path: str) -> dict:
    try:
        value = json.loads(Path(path).read_text())
    except OSError as exc:
        raise UserError(f"--settings {path}: {exc.strerror}", ExitCode.USAGE) from None
    except ValueError:
        raise UserError(f"--settings {path} is not JSON", ExitCode.USAGE) from None
    # `orm-pack outputs --json` prints every output: take ours from it.
    if isinstance(value, dict) and isinstance(value.get("outputs"), dict):
        value = value["outputs"].get(settings.OUTPUT)
    if value is None:
        raise UserError(f"--settings {path} holds no {settings.OUTPUT}: save it with `orm-pack outputs --json` "
                        "after an apply with deployment_target = \"oke\"", ExitCode.USAGE)
    return value


def _output_from_stack(session) -> dict:
    args = session.args
    if not args.compartment:
        raise UserError("pass --compartment (and --stack-name) to read the stack's outputs, or --settings FILE",
                        ExitCode.USAGE)
    result = workflows.outputs(session.rm, args.compartment, args.stack_name, None)
    found = [o.value for o in result.outputs if o.name == settings.OUTPUT]
    return found[0] if found else None


def _check(args) -> None:
    if args.timeout <= 0:
        raise UserError("--timeout must be positive", ExitCode.USAGE)
    if getattr(args, "output", None) and not args.dry_run:
        raise UserError("--output goes with --dry-run", ExitCode.USAGE)


def kube_for(args, session, deploy_settings: settings.DeploySettings, kubectl_binary: str) -> kubectl.Kubectl:
    client = ociconfig.client("container_engine", session.context, endpoint=args.container_engine_endpoint)
    path = Path(args.kubeconfig).expanduser() if args.kubeconfig else kubeconfig.default_path(args.stack_name)
    kubeconfig.write(path, kubeconfig.fetch(client, deploy_settings.cluster_id))
    session.err.print(f"kubeconfig for cluster {deploy_settings.cluster_id}: {path}", markup=False)
    return kubectl.Kubectl(kubectl_binary, path, settings.NAMESPACE)


# ------------------------------------------------------------------ commands
def _render(args, raw) -> tuple[settings.DeploySettings, str, list[dict], str]:
    deploy_settings = settings.from_output(raw, args.image)
    binary = kubectl.find(args.kubectl)
    source = archive.find_source(args.source)
    text, documents = manifests.render(source / "oke", deploy_settings, binary)
    return deploy_settings, text, documents, binary


def _write_manifests(args, text: str) -> int:
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return ExitCode.OK


def _run_deploy(args) -> int:
    _check(args)
    raw = _settings_file(args.settings) if args.settings else None
    if raw is not None and args.dry_run:  # nothing to ask the cloud: render offline
        return _write_manifests(args, _render(args, raw)[1])
    return _shared.guarded(lambda session: _deploy(session, raw))(args)


def _deploy(session, raw) -> int:
    args = session.args
    if raw is None:
        raw = _output_from_stack(session)
    deploy_settings, text, documents, binary = _render(args, raw)
    if args.dry_run:
        return _write_manifests(args, text)
    kube = kube_for(args, session, deploy_settings, binary)
    password = admin_password.read(session.context, deploy_settings.admin_password_secret_ocid,
                                   args.secrets_endpoint)
    say = lambda line: session.err.print(line, markup=False, highlight=False)  # noqa: E731
    result = workflow.deploy(kube, documents, args.timeout, say, password)
    session.out.print(f"\nMLflow on OKE: {result.url}", markup=False, style="bold")
    session.out.print(f"user {deploy_settings.login_user}; the password: the stack output mlflow_password_command",
                      markup=False)
    # The proxy pods present a certificate from the stack's CA: clients verify with the CA's certificate.
    session.out.print(f"its certificate is from the stack's CA ({deploy_settings.tls_ca_id}): `orm-pack outputs` "
                      f"saves it to {stack_ca.ca_file(session.context, args.stack_name)} and prints "
                      "the MLFLOW_TRACKING_SERVER_CERT_PATH line clients need", markup=False, highlight=False)
    return ExitCode.OK


def _run_delete(args) -> int:
    _check(args)
    raw = _settings_file(args.settings) if args.settings else None
    return _shared.guarded(lambda session: _delete(session, raw))(args)


def _delete(session, raw) -> int:
    args = session.args
    if raw is None:
        raw = _output_from_stack(session)
    deploy_settings = settings.from_output(raw, None)
    kube = kube_for(args, session, deploy_settings, kubectl.find(args.kubectl))
    workflow.delete(kube, args.timeout, lambda line: session.err.print(line, markup=False))
    session.out.print("The tracking server and its load balancer are gone from the cluster.", markup=False)
    return ExitCode.OK
