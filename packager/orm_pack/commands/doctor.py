"""`orm-pack doctor URL`: check a deployment end to end (doctor.py), one line per check."""
from __future__ import annotations

import argparse
import getpass
import json
import os
import sys

from orm_pack.commands import _tls
from orm_pack.errors import ExitCode, UserError
from orm_pack.mlflow_api import doctor


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "doctor", help="check a deployed MLflow end to end: TLS, version, login, UI writes, artifacts, alias, serving",
        description="Check that a deployment really works, as its users will use it: TLS (the certificate verified, "
                    "a warning 30 days before it expires); /health; with --mlflow-version, the MLflow version the "
                    "server runs; 401 without the login and 200 with it; a write from the UI's own origin accepted "
                    "and one from another site refused; an artifact uploaded through the proxy and read back "
                    "identical; the "
                    "registry alias; the serving endpoint answering with the alias's version. It creates an "
                    "experiment named orm-pack-doctor-… and deletes it. Exit 1 when a check fails.",
        epilog="The password comes from MLFLOW_TRACKING_PASSWORD, else a prompt; the user from "
               "MLFLOW_TRACKING_USERNAME (default mlflow).")
    parser.add_argument("url", metavar="URL", help="the MLflow URL (stack output mlflow_url)")
    parser.add_argument("--serving-url", metavar="URL", help="the model endpoint (stack output serving_url)")
    parser.add_argument("--mlflow-version", metavar="VERSION",
                        help="the MLflow version the stack sets (stack output mlflow_version; its output "
                             "doctor_command passes it): the version check fails when the server runs another, as "
                             "after an upgrade the tracking VM refused at boot. Without it the check is not run")
    parser.add_argument("--model-name", default="wine-quality", help="registered model served (default wine-quality)")
    parser.add_argument("--alias", default="champion", help="alias the endpoint follows (default champion)")
    parser.add_argument("--browser-host", metavar="NAME",
                        help="the name browsers reach MLflow by, when not URL's host (a DNS name in front of it)")
    parser.add_argument("--artifact-mb", type=int, default=50, help="size of the test artifact (default 50)")
    _tls.add_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    parser.set_defaults(func=_run)


def _password() -> str:
    password = os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if password:
        return password
    if not sys.stdin.isatty():
        raise UserError("set MLFLOW_TRACKING_PASSWORD (the stack's output mlflow_password_command prints it): "
                        "stdin is not a terminal to ask for it", ExitCode.USAGE)
    return getpass.getpass("MLflow password: ")


def _run(args: argparse.Namespace) -> int:
    if args.artifact_mb < 1:
        raise UserError("--artifact-mb must be at least 1", ExitCode.USAGE)
    verify, ca_file = _tls.settings(args)
    target = doctor.DoctorTarget(
        tracking_url=args.url, username=os.environ.get("MLFLOW_TRACKING_USERNAME") or "mlflow",
        password=_password(), serving_url=args.serving_url, model_name=args.model_name, alias=args.alias,
        browser_host=args.browser_host, artifact_mb=args.artifact_mb, ca_file=ca_file, verify_tls=verify,
        mlflow_version=args.mlflow_version)
    try:
        checks = doctor.run(target)
    except ValueError as exc:
        raise UserError(str(exc), ExitCode.USAGE) from None
    show(checks, as_json=args.json)
    return ExitCode.OK if all(check.passed for check in checks) else ExitCode.FAILURE


def show(checks: list[doctor.Check], as_json: bool = False) -> None:
    if as_json:
        print(json.dumps({"passed": all(c.passed for c in checks),
                          "checks": [{"name": c.name, "passed": c.passed, "detail": c.detail, "fix": c.fix}
                                     for c in checks]}, indent=2))
        return
    for check in checks:
        line = f"{'PASS' if check.passed else 'FAIL'}  {check.name:<12} {check.detail}"
        if check.fix:
            line += f" -> {check.fix}"
        print(line)
    failed = sum(not c.passed for c in checks)
    print("all checks passed" if not failed else f"{failed} of {len(checks)} checks failed")
