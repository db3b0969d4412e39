"""`orm-pack connect`: what an MLflow client needs to reach a deployment and verify it, as bash `export`
lines (eval "$(orm-pack connect --local)") or a Python snippet (--python): the URL, the CA certificate
(MLFLOW_TRACKING_SERVER_CERT_PATH, MLflow's own setting), the user, and where the password comes from.
The password itself is printed only with --show-password (local up's; a stack's stays in Vault).

--stack reads a deployed stack's outputs from Resource Manager and its CA's certificate from OCI
Certificates with the user's own OCI credentials (as `orm-pack outputs` does), saving the certificate
beside the OCI config: nothing to copy by hand, nothing trusted on first use."""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from orm_pack.commands import _shared as shared
from orm_pack.commands import _tls
from orm_pack.errors import ExitCode, UserError

STACK_PASSWORD_HINT = "the stack's output mlflow_password_command prints it"


def register(subparsers) -> None:
    from orm_pack.commands.local import default_state_dir

    parser = subparsers.add_parser(
        "connect", parents=[shared.auth_parent(), shared.stack_parent(False)],
        help="print what an MLflow client needs: URL, CA certificate, user (bash or Python)",
        description="Print the settings an MLflow client needs to reach MLflow and verify its certificate: "
                    "MLFLOW_TRACKING_URI, MLFLOW_TRACKING_SERVER_CERT_PATH (the CA) and MLFLOW_TRACKING_USERNAME, "
                    "as bash export lines (eval \"$(orm-pack connect --local)\") or, with --python, as Python. "
                    "The password is read from where it is kept, and printed only with --show-password.",
        epilog="--stack takes the OCI authentication options, as `orm-pack outputs` does.")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--local", action="store_true", help="the MLflow `orm-pack local up` runs")
    where.add_argument("--stack", action="store_true",
                       help="a deployed stack: its URL, user and CA certificate, read with your OCI credentials "
                            "(--compartment, --stack-name)")
    where.add_argument("--url", metavar="URL", help="a deployment's MLflow URL (stack output mlflow_url)")
    parser.add_argument("--state-dir", type=Path, default=None,
                        help=f"with --local: where `local up` keeps its state (default {default_state_dir()})")
    parser.add_argument("--username", help="with --url or --stack: the MLflow user (default: the stack's "
                        "mlflow_username, else $MLFLOW_TRACKING_USERNAME, else mlflow)")
    _tls.add_arguments(parser)
    parser.add_argument("--certificates-endpoint", metavar="URL",
                        help="with --stack: OCI Certificates retrieval endpoint URL (default: the region's)")
    parser.add_argument("--python", action="store_true", help="print Python that sets os.environ, not bash")
    parser.add_argument("--show-password", action="store_true",
                        help="with --local: print the password itself instead of reading it from its file")
    parser.set_defaults(func=_run)


@dataclass(frozen=True)
class Settings:
    url: str
    username: str
    ca_file: str | None          # None with --insecure
    password: str | None = None  # printed (--show-password)
    password_file: str | None = None  # a JSON file with "password" (the local state's credentials)
    password_hint: str = ""      # where to get it otherwise
    password_command: str = ""   # a shell command that prints it (a stack's: the OCI CLI reads Vault)


def _local(args) -> Settings:
    from orm_pack.commands.local import default_state_dir
    from orm_pack.local.state import StateDir

    state = StateDir(args.state_dir or default_state_dir())
    tracking = next((record.url for record in _running(state) if record.name == "proxy"), None)
    if not tracking or not state.credentials_file.is_file():
        raise UserError(f"orm-pack local is not running from {state.root}: start it with `orm-pack local up`",
                        ExitCode.NOT_FOUND)
    login = json.loads(state.credentials_file.read_text())
    if not state.ca_file.is_file():
        raise UserError(f"{state.ca_file} is missing: run `orm-pack local down` and `orm-pack local up` to make the "
                        "local CA again", ExitCode.NOT_FOUND)
    verify, ca_file = _tls.settings(args) if args.insecure or args.ca_file else (True, str(state.ca_file))
    return Settings(tracking, login["username"], ca_file if verify else None,
                    password=login["password"] if args.show_password else None,
                    password_file=str(state.credentials_file))


def _running(state):
    from orm_pack.local import processes

    return [record for record in state.load_services()
            if processes.is_alive(record.pid) and processes.start_time(record.pid) == record.start_time]


def _stack(args) -> Settings:
    if args.show_password:
        raise UserError(f"--show-password goes with --local: a deployment's password is not kept here "
                        f"({STACK_PASSWORD_HINT})", ExitCode.USAGE)
    verify, ca_file = _tls.settings(args)
    if verify and not ca_file:
        raise UserError("--url needs the deployment's CA certificate: --ca-file FILE (or MLFLOW_TRACKING_SERVER_CERT_PATH)",
                        ExitCode.USAGE)
    username = args.username or os.environ.get("MLFLOW_TRACKING_USERNAME") or "mlflow"
    return Settings(args.url.rstrip("/"), username, ca_file if verify else None, password_hint=STACK_PASSWORD_HINT)


def bash(settings: Settings, python: str = sys.executable) -> str:
    lines = [f"export MLFLOW_TRACKING_URI={shlex.quote(settings.url)}"]
    if settings.ca_file:
        lines.append(f"export MLFLOW_TRACKING_SERVER_CERT_PATH={shlex.quote(settings.ca_file)}")
    else:
        lines.append("export MLFLOW_TRACKING_INSECURE_TLS=true  # --insecure: the certificate is not verified")
    lines.append(f"export MLFLOW_TRACKING_USERNAME={shlex.quote(settings.username)}")
    if settings.password is not None:
        lines.append(f"export MLFLOW_TRACKING_PASSWORD={shlex.quote(settings.password)}")
    elif settings.password_command:
        lines.append(f"export MLFLOW_TRACKING_PASSWORD=\"$({settings.password_command})\"  # read from Vault with the "
                     "OCI CLI")
    elif settings.password_file:
        reader = 'import json, sys; print(json.load(open(sys.argv[1]))["password"])'
        lines.append(f"export MLFLOW_TRACKING_PASSWORD=\"$({shlex.quote(python)} -c {shlex.quote(reader)} "
                     f"{shlex.quote(settings.password_file)})\"  # read from the file, readable by you only")
    else:
        lines.append(f"# and MLFLOW_TRACKING_PASSWORD: {settings.password_hint}")
    return "\n".join(lines) + "\n"


def python(settings: Settings) -> str:
    lines = ["import os", ""]
    if settings.password_file and settings.password is None:
        lines = ["import json", "import os", ""]
    lines.append(f"os.environ[\"MLFLOW_TRACKING_URI\"] = {json.dumps(settings.url)}")
    if settings.ca_file:
        lines.append(f"os.environ[\"MLFLOW_TRACKING_SERVER_CERT_PATH\"] = {json.dumps(settings.ca_file)}")
    else:
        lines.append("os.environ[\"MLFLOW_TRACKING_INSECURE_TLS\"] = \"true\"  # --insecure: the certificate is not "
                     "verified")
    lines.append(f"os.environ[\"MLFLOW_TRACKING_USERNAME\"] = {json.dumps(settings.username)}")
    if settings.password is not None:
        lines.append(f"os.environ[\"MLFLOW_TRACKING_PASSWORD\"] = {json.dumps(settings.password)}")
    elif settings.password_file:
        lines += [f"with open({json.dumps(settings.password_file)}) as credentials:  # readable by you only",
                  "    os.environ[\"MLFLOW_TRACKING_PASSWORD\"] = json.load(credentials)[\"password\"]"]
    elif settings.password_command:
        lines.append(f"# and os.environ[\"MLFLOW_TRACKING_PASSWORD\"]: the output of {settings.password_command}")
    else:
        lines.append(f"# and os.environ[\"MLFLOW_TRACKING_PASSWORD\"]: {settings.password_hint}")
    return "\n".join(lines) + "\n"


def _deployed_stack(session: shared.Session) -> Settings:
    """The stack's last apply's outputs; its CA's certificate saved beside the OCI config (stack_ca.py)."""
    from orm_pack.cloud import stack_ca
    from orm_pack.commands import views
    from orm_pack.deploy import workflows

    args = session.args
    result = workflows.outputs(session.rm, args.compartment, args.stack_name, None)
    outputs = views.outputs_map(result.outputs)
    url = outputs.get("mlflow_url") or ""
    if not url:
        raise UserError(f"stack {args.stack_name} has no mlflow_url output: is it an oci-mlflow stack?", ExitCode.NOT_FOUND)
    if args.insecure or args.ca_file:
        verify, ca_file = _tls.settings(args)
    else:
        saved = stack_ca.save(session.context, outputs, args.stack_name, args.certificates_endpoint)
        if saved is None:
            raise UserError(f"stack {args.stack_name} has no CA (output tls_ca_id is empty): pass --ca-file with the "
                            "certificate its servers present", ExitCode.NOT_FOUND)
        if saved.problem:
            raise UserError(saved.problem, ExitCode.NOT_FOUND)  # 404 NotAuthorizedOrNotFound, or unreachable
        print(f"orm-pack: the servers' CA certificate is saved at {saved.path}", file=sys.stderr)
        verify, ca_file = True, str(saved.path)
    username = args.username or outputs.get("mlflow_username") or os.environ.get("MLFLOW_TRACKING_USERNAME") or "mlflow"
    return Settings(url.rstrip("/"), username, ca_file if verify else None, password_hint=STACK_PASSWORD_HINT,
                    password_command=outputs.get("mlflow_password_command") or "")


def _check_targets(args: argparse.Namespace) -> None:
    if args.state_dir and not args.local:
        raise UserError("--state-dir goes with --local", ExitCode.USAGE)
    if args.username and args.local:
        raise UserError("--username goes with --url or --stack (local up's login is in its state directory)",
                        ExitCode.USAGE)
    if args.stack and not args.compartment:
        raise UserError("--stack needs --compartment OCID (and --stack-name when it is not "
                        f"{shared.DEFAULT_STACK_NAME})", ExitCode.USAGE)
    if args.compartment and not args.stack:
        raise UserError("--compartment goes with --stack", ExitCode.USAGE)
    if args.certificates_endpoint and not args.stack:
        raise UserError("--certificates-endpoint goes with --stack", ExitCode.USAGE)
    if args.show_password and args.stack:
        raise UserError(f"--show-password goes with --local: a deployment's password stays in Vault "
                        f"({STACK_PASSWORD_HINT})", ExitCode.USAGE)


def _print(args: argparse.Namespace, settings: Settings) -> int:
    if args.json:
        document = {"MLFLOW_TRACKING_URI": settings.url, "MLFLOW_TRACKING_SERVER_CERT_PATH": settings.ca_file,
                    "MLFLOW_TRACKING_USERNAME": settings.username,
                    "password_command": settings.password_command or None}
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        sys.stdout.write(python(settings) if args.python else bash(settings))
    return ExitCode.OK


def _run(args: argparse.Namespace) -> int:
    _check_targets(args)
    if args.stack:
        return shared.guarded(lambda session: _print(args, _deployed_stack(session)))(args)
    return _print(args, _local(args) if args.local else _stack(args))
