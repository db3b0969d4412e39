"""What the data-plane tests share besides fixtures: the running stacks, the proxy starter, training."""
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dataplane.servers import MariaDB, ProcessTracker, S3Server
from dataplane.trust import CA_FILE, issue_pair
from harness.static import nginx_binary
from orm_pack.local import credentials, nginx, processes
from orm_pack.local.ports import free_port
from orm_pack.local.runtime_files import RuntimeFiles
from orm_pack.local.services import TrackingConfig, python_env, tracking_argv, tracking_env

REPO_ROOT = Path(__file__).resolve().parents[2]
RUNTIME = RuntimeFiles(REPO_ROOT)
MODEL_NAME = "wine-quality"
DB_PASSWORD = "Mlflow-db#pw/with%odd:chars"
# Clients fail fast instead of retrying for minutes on a misconfiguration, and verify the proxies' certificates
# with the lane's CA, as users do with the stack's (MLflow's own setting; nothing turns verification off).
CLIENT_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
              "MLFLOW_TRACKING_SERVER_CERT_PATH": CA_FILE}
# MLflow 3 falls back to ./mlflow.db when no tracking URI is set: tests name their server explicitly,
# and anything that does not talks to a closed port instead of writing into the checkout.
UNSET_TRACKING_URI = "http://127.0.0.1:9"


def start_proxy(tracker: ProcessTracker, workdir: Path, upstream_port: int | Sequence[int],
                login: credentials.Credentials, runtime: RuntimeFiles = RUNTIME, auth: str = "proxy",
                auth_url: str | None = None, fronts: str = "tracking", port: int | None = None):
    """nginx with our template (or `runtime`'s) in front of 127.0.0.1:upstream_port, or of several such
    ports as one upstream (replicas, balanced round-robin); returns (service, URL). `auth="upstream"`
    passes logins on to MLflow's own users instead of checking `login`; `auth="tracking"` asks the tracking
    server at `auth_url`; `fronts="serving"` is the proxy in front of a served model. Its certificate is from
    the lane's CA (CA_FILE), for 127.0.0.1, as a VM's is from the stack's CA for its address. `port`: where it
    listens (default: a free one), e.g. the address a replaced VM takes over. As on the VMs, it writes the request
    log the metrics pass reads, workdir/requests.log."""
    binary = nginx_binary()
    port = port or free_port()
    tls_cert, tls_key = issue_pair(workdir / "tls", "proxy")
    htpasswd = workdir / "htpasswd"
    credentials.write_htpasswd(login, htpasswd)
    upstream_ports = [upstream_port] if isinstance(upstream_port, int) else list(upstream_port)
    block = nginx.render_proxy(runtime, workdir / "proxy.conf", listen=f"127.0.0.1:{port}",
                               upstream=" ".join(f"127.0.0.1:{each}" for each in upstream_ports), htpasswd=htpasswd,
                               tls_cert=Path(tls_cert), tls_key=Path(tls_key),
                               auth=auth, auth_url=auth_url, fronts=fronts, request_log=workdir / "requests.log")
    conf = nginx.write_main_conf(workdir, [block])
    nginx.check_config(binary, conf)
    service = tracker.start("nginx", nginx.nginx_argv(binary, conf), dict(os.environ), workdir / "nginx.log")
    url = f"https://127.0.0.1:{port}"
    processes.wait_ready(service, f"{url}/health", 30, accept=(200, 502, 503))
    return service, url


@contextmanager
def serving_proxy_asking(tracker: ProcessTracker, workdir: Path, tracking_url: str,
                         login: credentials.Credentials):
    """The serving VM's proxy (PROXY_AUTH=tracking, asking the tracking server at `tracking_url`) in front
    of a stand-in model whose /invocations answers "a prediction"; yields the proxy's URL."""
    model = workdir / "model"
    model.mkdir()
    (model / "invocations").write_text("a prediction\n")
    (model / "health").write_text("ok\n")
    port = free_port()
    upstream = tracker.start("model", [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                             dict(python_env()), workdir / "model.log", cwd=model)
    proxy = None
    try:
        processes.wait_ready(upstream, f"http://127.0.0.1:{port}/invocations", 30)
        proxy, url = start_proxy(tracker, workdir / "serving-proxy", port, login, auth="tracking",
                                 auth_url=tracking_url, fronts="serving")
        yield url
    finally:
        if proxy is not None:
            tracker.stop(proxy)
        tracker.stop(upstream)


@dataclass(frozen=True)
class TrackingStack:
    url: str                      # through the auth proxy
    direct_url: str               # mlflow server itself
    login: credentials.Credentials
    log: Path
    databases_before: frozenset   # what MariaDB held before the entrypoint's first boot
    mariadb: MariaDB
    s3: S3Server
    tracking: processes.Service
    proxy: processes.Service

    def client_env(self) -> dict:
        return dict(python_env(), **CLIENT_ENV, MLFLOW_TRACKING_URI=self.url,
                    MLFLOW_TRACKING_USERNAME=self.login.username, MLFLOW_TRACKING_PASSWORD=self.login.password)


@dataclass(frozen=True)
class TrackingReplica:
    """One of several tracking servers on one database and one bucket prefix."""
    name: str
    port: int
    dirs: tuple[Path, ...]        # its HOME, TMPDIR and working directory, empty at start
    service: processes.Service

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_tracking_replica(tracker: ProcessTracker, mariadb: MariaDB, s3: S3Server, workdir: Path, name: str, *,
                           database: str, s3_prefix: str, workers: int = 1, extra_env=(),
                           wait: bool = True) -> TrackingReplica:
    """docker/tracking/entrypoint.sh as the image runs it, on MariaDB database `database` (with a user of the
    same name) and s3://<bucket>/<s3_prefix>, in an empty HOME, TMPDIR and working directory under
    workdir/name; returns once /health answers. The first replica on a database migrates its schema:
    start the others after it, as a rollout runs the migration first."""
    home, tmp, work = (workdir / name / part for part in ("home", "tmp", "work"))
    for directory in (home, tmp, work):
        directory.mkdir(parents=True)
    port = free_port()
    config = TrackingConfig(
        port=port, artifacts_destination=f"s3://{s3.bucket}/{s3_prefix}", s3_endpoint=s3.endpoint, workers=workers,
        extra_env=(*mariadb.client_env(), ("MLFLOW_DB_NAME", database), ("MLFLOW_DB_USER", database),
                   ("MLFLOW_DB_PASSWORD", DB_PASSWORD),
                   ("MYSQL_ADMIN_USER", mariadb.admin_user), ("MYSQL_ADMIN_PASSWORD", mariadb.admin_password),
                   ("AWS_ACCESS_KEY_ID", s3.access_key), ("AWS_SECRET_ACCESS_KEY", s3.secret_key),
                   ("AWS_DEFAULT_REGION", "us-east-1"), ("HOME", str(home)), ("TMPDIR", str(tmp)),
                   *extra_env))
    env = tracking_env(config)
    env.pop("MLFLOW_BACKEND_STORE_URI", None)
    service = tracker.start(f"tracking-{name}", tracking_argv(RUNTIME), env, workdir / f"{name}.log", cwd=work)
    replica = TrackingReplica(name, port, (home, tmp, work), service)
    if wait:
        _wait_ready(tracker, replica)
    return replica


def _wait_ready(tracker: ProcessTracker, replica: TrackingReplica) -> None:
    processes.wait_ready(replica.service, f"{replica.url}/health", 300)
    tracker.remember_tree(replica.service)


# The entrypoint's line once the database is prepared and it execs the server.
SCHEMA_READY = "tracking-entrypoint: starting: mlflow server"


def start_tracking_replicas(tracker: ProcessTracker, mariadb: MariaDB, s3: S3Server, workdir: Path,
                            names: Sequence[str], **options) -> list[TrackingReplica]:
    """Replicas of one deployment, started as a rolling start does: the first prepares the schema, the
    others start as soon as it has, while it is still starting its server. Returns once all answer."""
    first = start_tracking_replica(tracker, mariadb, s3, workdir, names[0], wait=False, **options)
    deadline = time.monotonic() + 300
    while SCHEMA_READY not in first.service.log.read_text(errors="replace"):
        if not first.service.alive() or time.monotonic() > deadline:
            raise processes.ServiceFailed(f"{first.name} did not prepare the database; log {first.service.log}:\n"
                                          f"{processes.log_tail(first.service.log)}")
        time.sleep(0.1)
    replicas = [first] + [start_tracking_replica(tracker, mariadb, s3, workdir, name, wait=False, **options)
                          for name in names[1:]]
    for replica in replicas:
        _wait_ready(tracker, replica)
    return replicas


def healthcheck_command(dockerfile: Path) -> list[str]:
    """The exec-form HEALTHCHECK CMD of a Dockerfile, to run natively."""
    text = dockerfile.read_text().replace("\\\n", " ")
    return json.loads(text.split("HEALTHCHECK", 1)[1].split("CMD", 1)[1].splitlines()[0].strip())


def train_wine(stack: TrackingStack, *args: str) -> dict:
    """Runs examples/wine/train.py as a user would; returns its key=value output."""
    result = subprocess.run([sys.executable, str(RUNTIME.wine_example), "--model-name", MODEL_NAME, *args],
                            env=stack.client_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"train.py failed:\n{result.stdout}\n{result.stderr[-3000:]}"
    values = {}
    for line in result.stdout.splitlines():
        for pair in line.split():
            key, sep, value = pair.partition("=")
            if sep:
                values[key] = value
    return values


@dataclass(frozen=True)
class ServingStack:
    url: str                      # through the auth proxy
    port: int                     # the supervisor's own port
    login: credentials.Credentials
    supervisor: processes.Service
    log: Path
