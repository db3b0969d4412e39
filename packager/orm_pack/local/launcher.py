"""`orm-pack local up|down|status`: tracking server, auth proxy and serving supervisor on this machine,
started from the docker/ entrypoints with embedded defaults (SQLite, local artifact directory)."""
import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path

from orm_pack.errors import ExitCode, UserError
from orm_pack.local import certificates, nginx, processes
from orm_pack.local import credentials as creds
from orm_pack.local.ports import free_port, port_is_free
from orm_pack.local.runtime_files import find_runtime_files
from orm_pack.local.services import ServingConfig, TrackingConfig, serving_argv, serving_env, tracking_argv, tracking_env
from orm_pack.local.state import ServiceRecord, StateDir

TRACKING_START_SECONDS = 300   # first start runs MLflow's schema migrations
PROXY_START_SECONDS = 30
SERVING_START_SECONDS = 120


@dataclass(frozen=True)
class SsoOptions:
    """The OpenID Connect provider single sign-on uses (`--users sso`), as the stack's sso_* settings."""
    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    admin_group: str = "mlflow-admins"
    user_group: str = "mlflow-users"


@dataclass
class LocalOptions:
    state_dir: Path
    listen_address: str = "127.0.0.1"
    tracking_port: int = 8443
    serving_port: int = 8444
    backend_store_uri: str | None = None       # default: SQLite in the state directory
    artifacts_destination: str | None = None   # default: a directory in the state directory
    s3_endpoint: str | None = None
    oci_endpoint: str | None = None            # Object Storage endpoint for an oci:// destination
    serving: bool = True
    model_name: str = "wine-quality"
    model_alias: str = "champion"
    poll_seconds: float = 10
    workers: int = 1
    users: str = "shared"                      # "per-person" or "sso", as the stack's mlflow_users
    sso: SsoOptions | None = None              # with users = "sso"


USERS = ("shared", "per-person", "sso")


@dataclass
class LocalEndpoints:
    tracking_url: str
    serving_url: str | None
    credentials: creds.Credentials
    state: StateDir
    services: list[ServiceRecord] = field(default_factory=list)
    ca_file: Path | None = None                 # the local CA clients verify the proxy with


def validate(options: LocalOptions, env=os.environ) -> None:
    uri = options.backend_store_uri
    if uri is not None:
        if uri.startswith("mysql://"):
            raise UserError("--backend-store-uri: use the PyMySQL driver, mysql+pymysql://user:password@host:3306/mlflow")
        if "://" not in uri:
            raise UserError(f"--backend-store-uri must be a database URI such as "
                            f"mysql+pymysql://user:password@host:3306/mlflow (got {uri!r})")
    destination = options.artifacts_destination or ""
    if options.s3_endpoint:
        if not options.s3_endpoint.startswith(("http://", "https://")):
            raise UserError(f"--s3-endpoint must be an http(s):// URL (got {options.s3_endpoint!r})")
        if not destination.startswith("s3://"):
            raise UserError("--s3-endpoint needs --artifacts-destination s3://<bucket>/<prefix>")
    if options.oci_endpoint:
        if not options.oci_endpoint.startswith(("http://", "https://")):
            raise UserError(f"--oci-endpoint must be an http(s):// URL (got {options.oci_endpoint!r})")
        if not destination.startswith("oci://"):
            raise UserError("--oci-endpoint needs --artifacts-destination oci://<bucket>@<namespace>/<prefix>")
    if destination.startswith("oci://"):
        bucket, _, rest = destination[len("oci://"):].partition("@")
        if not bucket or not rest.split("/", 1)[0]:
            raise UserError(f"--artifacts-destination oci:// is oci://<bucket>@<namespace>/<prefix> (got {destination!r})")
        config = Path(env.get("OCI_CONFIG_FILE") or Path.home() / ".oci" / "config").expanduser()
        if not config.is_file():
            raise UserError(f"an oci:// artifacts destination uses your API key from {config}, which does not exist: "
                            "run `oci setup config`, or point OCI_CONFIG_FILE at your config (OCI_CONFIG_PROFILE "
                            "picks a profile)")
    if destination.startswith("s3://") and not (env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY")):
        raise UserError("an s3:// artifacts destination needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the "
                        "environment (for OCI Object Storage: a customer secret key)")
    for label, port in (("--port", options.tracking_port), ("--serving-port", options.serving_port)):
        if not 1 <= port <= 65535:
            raise UserError(f"{label} must be between 1 and 65535 (got {port})")
    if options.serving and options.tracking_port == options.serving_port:
        raise UserError("--port and --serving-port must differ")
    if options.workers < 1:
        raise UserError("--workers must be at least 1")
    if options.users not in USERS:
        raise UserError(f"--users must be one of {', '.join(USERS)} (got {options.users!r})")
    if (options.users == "sso") != (options.sso is not None):
        raise UserError("--users sso needs --oidc-issuer, --oidc-client-id and the client secret; the --oidc-* "
                        "options go with --users sso only")
    if importlib.util.find_spec("mlflow") is None:
        raise UserError("MLflow is not installed in this environment: pip install 'oci-mlflow-stack[local]'")


def running_services(state: StateDir) -> list[ServiceRecord]:
    return [record for record in state.load_services() if _is_ours(record)]


def _is_ours(record: ServiceRecord) -> bool:
    return processes.is_alive(record.pid) and processes.start_time(record.pid) == record.start_time


def _record(service: processes.Service, url: str = "") -> ServiceRecord:
    return ServiceRecord(service.name, service.pid, processes.start_time(service.pid) or 0, str(service.log), url)


def users_env(users: str, login: creds.Credentials, state: StateDir, sso: SsoOptions | None = None,
              served_model: str | None = None,
              serving_login: creds.Credentials | None = None) -> tuple[tuple[str, str], ...]:
    """The tracking server's settings for `users`, as the stack sets them (docker/tracking/entrypoint.sh):
    per-person keeps MLflow's users in a database of their own, the login as their first admin; sso adds
    the provider, whose groups make people admins or users (the login stays the break-glass admin). The
    model endpoint's own user (`serving_login`) is made by the tracking server, a non-admin that may read
    the served model."""
    if users == "shared":
        return ()
    people = (("MLFLOW_AUTH", "oidc" if users == "sso" else "mlflow"), ("MLFLOW_AUTH_ADMIN_USERNAME", login.username),
              ("MLFLOW_AUTH_ADMIN_PASSWORD", login.password), ("MLFLOW_AUTH_DEFAULT_PERMISSION", "READ"),
              ("MLFLOW_AUTH_DATABASE_URI", f"sqlite:///{state.data / 'users.db'}"),
              ("MLFLOW_FLASK_SERVER_SECRET_KEY", creds.signing_key(state.signing_key_file)))
    if served_model:  # reserved before anyone can claim it, as on the stack (docker/tracking/served_model.py)
        people += (("MLFLOW_SERVED_MODEL_NAME", served_model),)
    if serving_login:
        people += (("MLFLOW_SERVING_USERNAME", serving_login.username),
                   ("MLFLOW_SERVING_PASSWORD", serving_login.password))
    if users != "sso":
        return people
    return people + (("MLFLOW_OIDC_ISSUER", sso.issuer), ("MLFLOW_OIDC_CLIENT_ID", sso.client_id),
                     ("MLFLOW_OIDC_CLIENT_SECRET", sso.client_secret), ("MLFLOW_OIDC_ADMIN_GROUP", sso.admin_group),
                     ("MLFLOW_OIDC_USER_GROUP", sso.user_group))


def artifacts_env(options: LocalOptions) -> tuple[tuple[str, str], ...]:
    """An oci:// destination on a laptop: the server signs with your API key (~/.oci/config, or
    OCI_CONFIG_FILE and OCI_CONFIG_PROFILE from the environment), at --oci-endpoint when given."""
    if not (options.artifacts_destination or "").startswith("oci://"):
        return ()
    settings = (("MLFLOW_OCI_AUTH", "api_key"),)
    if options.oci_endpoint:
        settings += (("MLFLOW_OCI_OBJECT_STORAGE_ENDPOINT", options.oci_endpoint),)
    return settings


def up(options: LocalOptions) -> LocalEndpoints:
    validate(options)
    state = StateDir(options.state_dir)
    if running_services(state):
        raise UserError(f"orm-pack local is already running from {state.root}: run `orm-pack local down` first",
                        ExitCode.CONFLICT)
    runtime = find_runtime_files()
    nginx_binary = nginx.require_nginx()
    host = options.listen_address
    tls_names = certificates.server_names(host)
    for label, port in (("--port", options.tracking_port),) + (
            (("--serving-port", options.serving_port),) if options.serving else ()):
        if not port_is_free(port, host):
            raise UserError(f"port {port} on {host} is in use: pick another one with {label}")

    state.create()
    # the proxy's certificate, from the local CA (kept across restarts; the certificate renewed near its expiry)
    certificates.ensure(state, tls_names)
    login = creds.load(state.credentials_file) or creds.generate()
    creds.save(login, state.credentials_file)
    creds.write_htpasswd(login, state.htpasswd_file)
    # per-person and sso: the proxy passes logins on to MLflow, and the model endpoint asks MLflow (on
    # loopback, as the serving VM asks the tracking VM) whether a login is one of its users. The serving
    # supervisor then logs in as its own user, never as the admin; with the shared login it uses that one.
    per_person = options.users in ("per-person", "sso")
    serving_login = login
    if per_person and options.serving:
        serving_login = (creds.load(state.serving_credentials_file) or creds.generate(creds.SERVING_USERNAME))
        creds.save(serving_login, state.serving_credentials_file)

    started: list[ServiceRecord] = []
    try:
        tracking_port = free_port()
        tracking = processes.start("tracking", tracking_argv(runtime), tracking_env(TrackingConfig(
            port=tracking_port,
            backend_store_uri=options.backend_store_uri or f"sqlite:///{state.data / 'mlflow.db'}",
            artifacts_destination=options.artifacts_destination or str(state.data / "artifacts"),
            s3_endpoint=options.s3_endpoint, workers=options.workers,
            # MLflow listens on loopback behind the proxy, which checks the password on every request:
            # it takes whatever name or address the proxy is reached by (as on the VMs).
            allowed_hosts="*", extra_env=artifacts_env(options) + users_env(
                options.users, login, state, options.sso, options.model_name if options.serving else None,
                serving_login if serving_login is not login else None))), state.logs / "tracking.log")
        started.append(_record(tracking, f"http://127.0.0.1:{tracking_port}"))
        processes.wait_ready(tracking, f"http://127.0.0.1:{tracking_port}/health", TRACKING_START_SECONDS)

        tracking_url = f"https://{_url_host(host)}:{options.tracking_port}"
        serving_url = f"https://{_url_host(host)}:{options.serving_port}" if options.serving else None
        blocks = [nginx.render_proxy(runtime, state.nginx / "tracking.conf", listen=f"{host}:{options.tracking_port}",
                                     upstream=f"127.0.0.1:{tracking_port}", htpasswd=state.htpasswd_file,
                                     tls_cert=state.server_cert_file, tls_key=state.server_key_file,
                                     auth="upstream" if per_person else "proxy")]
        supervisor_port = free_port()
        if options.serving:
            blocks.append(nginx.render_proxy(runtime, state.nginx / "serving.conf",
                                             listen=f"{host}:{options.serving_port}",
                                             upstream=f"127.0.0.1:{supervisor_port}", htpasswd=state.htpasswd_file,
                                             tls_cert=state.server_cert_file, tls_key=state.server_key_file,
                                             fronts="serving", auth="tracking" if per_person else "proxy",
                                             auth_url=f"http://127.0.0.1:{tracking_port}" if per_person else None))
        conf = nginx.write_main_conf(state.nginx, blocks)
        nginx.check_config(nginx_binary, conf)
        proxy = processes.start("proxy", nginx.nginx_argv(nginx_binary, conf), os.environ.copy(),
                                state.logs / "proxy.log")
        started.append(_record(proxy, tracking_url))
        processes.wait_ready(proxy, f"{tracking_url}/health", PROXY_START_SECONDS)

        if options.serving:
            serving = processes.start("serving", serving_argv(runtime), serving_env(ServingConfig(
                port=supervisor_port, tracking_uri=tracking_url, credentials=serving_login, model_name=options.model_name,
                model_alias=options.model_alias, poll_seconds=options.poll_seconds,
                tracking_ca_file=str(state.ca_file))), state.logs / "serving.log")
            started.append(_record(serving, serving_url))
            # 503 until the alias exists: the supervisor is up and waiting for a model.
            processes.wait_ready(serving, f"http://127.0.0.1:{supervisor_port}/health", SERVING_START_SECONDS,
                                 accept=(200, 503))
    except processes.ServiceFailed as exc:
        _stop_all(started)
        raise UserError(f"orm-pack local up failed: {exc}", ExitCode.FAILURE) from None
    except BaseException:
        _stop_all(started)
        raise
    state.save_services(started)
    state.save_settings({"model_name": options.model_name, "model_alias": options.model_alias,
                         "users": options.users})
    return LocalEndpoints(tracking_url, serving_url, login, state, started, state.ca_file)


def _url_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else host


def _stop_all(records: list[ServiceRecord]) -> set[int]:
    stopped: set[int] = set()
    for record in reversed(records):
        if _is_ours(record):
            stopped |= processes.stop(record.pid)
    return stopped


def down(state_dir: Path) -> list[ServiceRecord]:
    """Stops the services `up` started (and every process below them); returns those that were running."""
    state = StateDir(state_dir)
    running = running_services(state)
    _stop_all(running)
    state.clear_services()
    return running


def saved_login(state_dir: Path) -> creds.Credentials | None:
    return creds.load(StateDir(state_dir).credentials_file)


def doctor_target(state_dir: Path, artifact_mb: int = 50):
    """What `orm-pack local doctor` checks: the running local services, with their login."""
    from orm_pack.mlflow_api.doctor import DoctorTarget

    state = StateDir(state_dir)
    running = {record.name: record for record in running_services(state)}
    login = creds.load(state.credentials_file)
    if "proxy" not in running or login is None:
        raise UserError(f"orm-pack local is not running from {state.root}: start it with `orm-pack local up`",
                        ExitCode.NOT_FOUND)
    if not state.ca_file.is_file():
        raise UserError(f"the running local MLflow was started before `local up` made its own CA ({state.ca_file} is "
                        "missing): restart it with `orm-pack local down` and `orm-pack local up`", ExitCode.CONFLICT)
    settings = state.load_settings()
    serving = running.get("serving")
    return DoctorTarget(tracking_url=running["proxy"].url, username=login.username, password=login.password,
                        serving_url=serving.url if serving else None,
                        model_name=settings.get("model_name", "wine-quality"),
                        alias=settings.get("model_alias", "champion"), artifact_mb=artifact_mb,
                        ca_file=str(state.ca_file))


def status(state_dir: Path) -> list[tuple[ServiceRecord, bool]]:
    state = StateDir(state_dir)
    return [(record, _is_ours(record)) for record in state.load_services()]
