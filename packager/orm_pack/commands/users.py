"""`orm-pack users add|list|remove|grant`: MLflow's own users and permissions, as an MLflow admin.

The admin's login comes from MLFLOW_TRACKING_USERNAME (default mlflow) and MLFLOW_TRACKING_PASSWORD (else a
prompt), as for MLflow's clients; a new user's password from stdin or generated, never from argv.
"""
from __future__ import annotations

import argparse
import getpass
import os
import secrets
import string
import sys

from orm_pack.commands import _tls
from orm_pack.errors import ExitCode, UserError
from orm_pack.mlflow_api.users import PERMISSIONS, UsersApi

MIN_PASSWORD = 12


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "users", help="manage MLflow's users and their permissions (as an MLflow admin)",
        description="Manage the tracking server's own users (its basic-auth app, shared by every replica through "
                    "MySQL). The admin's login: MLFLOW_TRACKING_USERNAME (default mlflow) and "
                    "MLFLOW_TRACKING_PASSWORD (else a prompt). The server's certificate is verified with --ca-file, else "
                    "$MLFLOW_TRACKING_SERVER_CERT_PATH, else the system's trusted CAs.")
    commands = parser.add_subparsers(dest="users_command", metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", required=True, metavar="URL", help="the MLflow URL (stack output mlflow_url)")
    _tls.add_arguments(common)
    p = commands.add_parser("list", parents=[common], help="list the users")
    p.set_defaults(func=_run_list)
    p = commands.add_parser("add", parents=[common], help="create a user and print a generated password once",
                            description="Create a user. The password is generated and printed once, or read from "
                            "stdin with --password-stdin.")
    p.add_argument("username")
    p.add_argument("--admin", action="store_true", help="make the user an MLflow admin")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.set_defaults(func=_run_add)
    p = commands.add_parser("remove", parents=[common], help="delete a user")
    p.add_argument("username")
    p.set_defaults(func=_run_remove)
    p = commands.add_parser("revoke", parents=[common], help="sign a person out of every session (single sign-on)",
                            description="End every sign-in session of USERNAME on every replica, within a minute: "
                            "for a lost laptop or a person who left. Their password and tokens are checked on every "
                            "request anyway; remove them from the provider's groups to keep them out.")
    p.add_argument("username")
    p.set_defaults(func=_run_revoke)
    p = commands.add_parser("grant", parents=[common], help="set a user's permission on an experiment or a "
                            "registered model")
    p.add_argument("username")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--experiment", metavar="NAME_OR_ID")
    target.add_argument("--registered-model", metavar="NAME")
    p.add_argument("--permission", required=True, type=str.upper, choices=PERMISSIONS)
    p.set_defaults(func=_run_grant)
    parser.set_defaults(func=lambda args: parser.print_help() or ExitCode.USAGE)


def _api(args) -> UsersApi:
    password = os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if not password:
        if not sys.stdin.isatty():
            raise UserError("set MLFLOW_TRACKING_PASSWORD (the admin's; the stack output mlflow_password_command "
                            "prints it): stdin is not a terminal to ask for it", ExitCode.USAGE)
        password = getpass.getpass("MLflow admin password: ")
    # MLflow's own switch counts as --insecure, unless a CA was named on the command line
    if not args.insecure and not args.ca_file and os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
        print("orm-pack: WARNING: MLFLOW_TRACKING_INSECURE_TLS=true: treated as --insecure", file=sys.stderr)
        args.insecure = True
    verify, ca_file = _tls.settings(args)
    return UsersApi(args.url, os.environ.get("MLFLOW_TRACKING_USERNAME") or "mlflow", password,
                    verify_tls=verify, ca_file=ca_file)


def _run_list(args) -> int:
    for user in _api(args).list():
        print(f"{user.username}{'  (admin)' if user.is_admin else ''}")
    return ExitCode.OK


def _new_password(args) -> tuple[str, bool]:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
        if len(password) < MIN_PASSWORD:
            raise UserError(f"the password on stdin must have at least {MIN_PASSWORD} characters", ExitCode.USAGE)
        return password, False
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(24)), True


def _run_add(args) -> int:
    api = _api(args)
    password, generated = _new_password(args)
    api.create(args.username, password, admin=args.admin)
    print(f"created {args.username}{' (admin)' if args.admin else ''}", file=sys.stderr)
    if generated:
        print(password)  # the only time it is shown: stdout, so it can be piped into a password manager
    return ExitCode.OK


def _run_remove(args) -> int:
    _api(args).remove(args.username)
    print(f"removed {args.username}", file=sys.stderr)
    return ExitCode.OK


def _run_revoke(args) -> int:
    _api(args).revoke(args.username)
    print(f"signed {args.username} out of every session", file=sys.stderr)
    return ExitCode.OK


def _run_grant(args) -> int:
    api = _api(args)
    if args.experiment:
        resource_type, resource_id = "experiment", api.experiment_id(args.experiment)
    else:
        resource_type, resource_id = "registered_model", args.registered_model
    api.grant(args.username, resource_type, resource_id, args.permission)
    print(f"{args.username}: {args.permission} on {resource_type} {resource_id}", file=sys.stderr)
    return ExitCode.OK
