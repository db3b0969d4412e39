"""The data plane, run for real on loopback: MariaDB (with primary keys enforced), a moto S3 server,
the tracking entrypoint, the nginx auth proxy from our template, the wine example and the serving
supervisor. The expensive servers are started once per session; teardown proves no process is left.
"""
import os

import pytest
from ocifakes.server import InstanceCloud

from dataplane.servers import MariaDB, ProcessTracker, S3Server, start_mariadb, start_moto
from dataplane.stacks import (
    CLIENT_ENV,
    DB_PASSWORD,
    MODEL_NAME,
    RUNTIME,
    UNSET_TRACKING_URI,
    ServingStack,
    TrackingStack,
    start_proxy,
    train_wine,
)
from dataplane.trust import CA_FILE
from harness.tools import require_binary
from orm_pack.local import credentials, processes
from orm_pack.local.ports import free_port
from orm_pack.local.services import ServingConfig, TrackingConfig, serving_argv, serving_env, tracking_argv, tracking_env


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Marks a failed test on its node, so fixtures can keep evidence (the browser's screenshots)."""
    outcome = yield
    if call.when == "call" and outcome.get_result().failed:
        item.failed = True


@pytest.fixture(scope="session", autouse=True)
def fail_fast_clients():
    """Clients in the tests' process fail fast and verify certificates with the lane's CA; MLflow's switch
    that turns verification off is not set (a test of that escape hatch sets it for itself)."""
    defaults = dict(CLIENT_ENV, MLFLOW_TRACKING_URI=UNSET_TRACKING_URI)
    saved = {name: os.environ.get(name) for name in [*defaults, "MLFLOW_TRACKING_INSECURE_TLS"]}
    os.environ.update(defaults)
    os.environ.pop("MLFLOW_TRACKING_INSECURE_TLS", None)
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def tracker():
    """Every process the fixtures start; at the end all of them and their children must be gone."""
    tracker = ProcessTracker()
    yield tracker
    tracker.stop_all()
    leftovers = tracker.leftovers()
    assert not leftovers, f"processes left running after teardown: {leftovers}"


@pytest.fixture(scope="session")
def mariadb(tracker, tmp_path_factory) -> MariaDB:
    binaries = {name: require_binary(name, how="apt-get install mariadb-server")
                for name in ("mariadbd", "mariadb-install-db")}
    # innodb_force_primary_key=ON stands in for HeatWave's sql_require_primary_key=ON.
    server = start_mariadb(tracker, binaries, tmp_path_factory.mktemp("mariadb"),
                           extra_args=["--innodb-force-primary-key=ON"])
    yield server
    tracker.stop(server.service)


@pytest.fixture(scope="module")
def cloud() -> InstanceCloud:
    """OCI as an instance (or a laptop's API key) sees it, on loopback: Vault, Object Storage, Certificates
    (tests/ocifakes). One per module: each grants what its own runtime may do."""
    server = InstanceCloud().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3(tracker, tmp_path_factory) -> S3Server:
    moto_server = require_binary("moto_server", how="pip install 'moto[server]'")
    server = start_moto(tracker, moto_server, tmp_path_factory.mktemp("moto"))
    yield server
    tracker.stop(server.service)


@pytest.fixture(scope="session")
def tracking_stack(tracker, tmp_path_factory, mariadb, s3) -> TrackingStack:
    workdir = tmp_path_factory.mktemp("tracking")
    with mariadb.admin() as connection, connection.cursor() as cursor:
        cursor.execute("SHOW DATABASES")
        databases_before = frozenset(row[0] for row in cursor.fetchall())
    port = free_port()
    config = TrackingConfig(
        port=port, artifacts_destination=f"s3://{s3.bucket}/mlflow", s3_endpoint=s3.endpoint, workers=1,
        allowed_hosts="mlflow.example.test",
        extra_env=(*mariadb.client_env(), ("MLFLOW_DB_NAME", "mlflow"), ("MLFLOW_DB_USER", "mlflow"),
                   ("MLFLOW_DB_PASSWORD", DB_PASSWORD),
                   ("MYSQL_ADMIN_USER", mariadb.admin_user), ("MYSQL_ADMIN_PASSWORD", mariadb.admin_password),
                   ("AWS_ACCESS_KEY_ID", s3.access_key), ("AWS_SECRET_ACCESS_KEY", s3.secret_key),
                   ("AWS_DEFAULT_REGION", "us-east-1")))
    env = tracking_env(config)
    env.pop("MLFLOW_BACKEND_STORE_URI", None)
    log = workdir / "tracking.log"
    tracking = tracker.start("tracking", tracking_argv(RUNTIME), env, log)
    processes.wait_ready(tracking, f"http://127.0.0.1:{port}/health", 300)
    tracker.remember_tree(tracking)
    login = credentials.generate("mlflow-user")
    proxy, url = start_proxy(tracker, workdir / "proxy", port, login)
    yield TrackingStack(url, f"http://127.0.0.1:{port}", login, log, databases_before, mariadb, s3, tracking, proxy)
    tracker.stop(proxy)
    tracker.stop(tracking)


@pytest.fixture(scope="session")
def wine_v1(tracking_stack) -> dict:
    return train_wine(tracking_stack, "--alpha", "0.5", "--l1-ratio", "0.5")


@pytest.fixture(scope="session")
def serving_stack(tracker, tmp_path_factory, tracking_stack) -> ServingStack:
    workdir = tmp_path_factory.mktemp("serving")
    port = free_port()
    env = serving_env(ServingConfig(port=port, tracking_uri=tracking_stack.url, credentials=tracking_stack.login,
                                    model_name=MODEL_NAME, poll_seconds=1, tracking_ca_file=CA_FILE))
    env.update(CLIENT_ENV)
    log = workdir / "supervisor.log"
    supervisor = tracker.start("serving", serving_argv(RUNTIME), env, log)
    processes.wait_ready(supervisor, f"http://127.0.0.1:{port}/health", 120, accept=(200, 503))
    proxy, url = start_proxy(tracker, workdir / "proxy", port, tracking_stack.login, fronts="serving")
    yield ServingStack(url, port, tracking_stack.login, supervisor, log)
    tracker.remember_tree(supervisor)
    tracker.stop(proxy)
    tracker.stop(supervisor)
