"""A user reaches the tracking server through the auth proxy: MariaDB backend prepared by our
first-boot SQL (primary keys enforced), artifacts proxied into an S3 bucket."""
import hashlib
import os
import subprocess

import pytest
import requests
from mlflow import MlflowClient

from dataplane.stacks import RUNTIME, healthcheck_command
from dataplane.trust import CA_FILE
from harness import audit_trail
from orm_pack.local.services import python_env

pytestmark = [pytest.mark.dataplane,
              pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")]

SEARCH = "/api/2.0/mlflow/experiments/search?max_results=1"


def get(url, **kwargs):
    return requests.get(url, verify=CA_FILE, timeout=30, **kwargs)


def test_anonymous_request_is_refused(tracking_stack):
    assert get(tracking_stack.url + SEARCH).status_code == 401


def test_wrong_password_is_refused(tracking_stack):
    response = get(tracking_stack.url + SEARCH, auth=(tracking_stack.login.username, "not-the-password"))
    assert response.status_code == 401


def test_right_password_reaches_mlflow(tracking_stack):
    response = get(tracking_stack.url + SEARCH, auth=(tracking_stack.login.username, tracking_stack.login.password))
    assert response.status_code == 200, response.text
    assert "experiments" in response.json()


def test_health_is_open_without_password(tracking_stack):
    response = get(tracking_stack.url + "/health")
    assert (response.status_code, response.text) == (200, "OK")


def test_host_header_reaches_mlflow_allowed_hosts(tracking_stack):
    """The proxy forwards the client's Host; MLflow accepts MLFLOW_ALLOWED_HOSTS and refuses others."""
    auth = (tracking_stack.login.username, tracking_stack.login.password)
    allowed = get(tracking_stack.url + SEARCH, auth=auth, headers={"Host": "mlflow.example.test"})
    foreign = get(tracking_stack.url + SEARCH, auth=auth, headers={"Host": "attacker.example.test"})
    assert (allowed.status_code, foreign.status_code) == (200, 403)


def test_5mb_artifact_goes_through_the_proxy_into_the_bucket(tracking_stack, tmp_path, monkeypatch):
    for name, value in tracking_stack.client_env().items():
        if name.startswith("MLFLOW_"):
            monkeypatch.setenv(name, value)
    payload = tmp_path / "weights.bin"
    payload.write_bytes(os.urandom(5 * 1024 * 1024))
    client = MlflowClient(tracking_uri=tracking_stack.url)
    experiment_id = client.create_experiment("artifact-upload")
    run = client.create_run(experiment_id)
    client.log_artifact(run.info.run_id, str(payload))
    client.set_terminated(run.info.run_id)

    objects = tracking_stack.s3.client().list_objects_v2(Bucket=tracking_stack.s3.bucket)["Contents"]
    stored = [obj for obj in objects if obj["Key"].endswith(f"{run.info.run_id}/artifacts/weights.bin")]
    assert [obj["Size"] for obj in stored] == [5 * 1024 * 1024], [obj["Key"] for obj in objects]

    downloaded = client.download_artifacts(run.info.run_id, "weights.bin", str(tmp_path / "back"))
    assert hashlib.sha256(open(downloaded, "rb").read()).digest() == hashlib.sha256(payload.read_bytes()).digest()


def test_first_boot_sql_created_the_database_and_its_user(tracking_stack):
    assert "mlflow" not in tracking_stack.databases_before
    with tracking_stack.mariadb.admin() as connection, connection.cursor() as cursor:
        cursor.execute("SHOW DATABASES")
        assert "mlflow" in {row[0] for row in cursor.fetchall()}
        cursor.execute("SHOW GRANTS FOR 'mlflow'@'%'")
        grants = " ".join(row[0] for row in cursor.fetchall())
    assert "GRANT ALL PRIVILEGES ON `mlflow`.* TO `mlflow`@`%`" in grants


def test_mlflow_talks_to_mysql_over_tls_only(tracking_stack):
    """The test server refuses TCP without TLS (as HeatWave with require_secure_transport=ON): the
    first-boot SQL ran and the tracking server works, so both use TLS, and they ask for it (a server
    that offered no TLS would be refused, not used in clear), verifying the server (test_db_tls.py)."""
    from urllib.parse import quote

    import pymysql

    db = tracking_stack.mariadb
    with pytest.raises(pymysql.err.OperationalError) as refused:  # the same login, without TLS
        pymysql.connect(host=db.host, port=db.port, user=db.admin_user, password=db.admin_password,
                        ssl_disabled=True)
    assert refused.value.args[0] in (1045, 3159)  # MariaDB answers "access denied", MySQL "insecure transport"
    log = tracking_stack.log.read_text()
    # the URI asks for TLS, verified with the DB system's CA and for the address MLFLOW_DB_HOST names
    assert f"/mlflow?charset=utf8mb4&ssl_ca={quote(db.ca_file, safe='')}&ssl_check_hostname=true" in log
    assert "MLflow schema is at revision" in log


def test_migrations_succeed_with_primary_keys_enforced(tracking_stack):
    from mlflow.store.db.utils import _get_latest_schema_revision

    with tracking_stack.mariadb.admin("mlflow") as connection, connection.cursor() as cursor:
        cursor.execute("SELECT @@GLOBAL.innodb_force_primary_key")
        assert cursor.fetchone()[0] == 1
        with pytest.raises(Exception, match="requires a primary key"):
            cursor.execute("CREATE TABLE probe_without_pk (x INT) ENGINE=InnoDB")
        cursor.execute("SELECT version_num FROM alembic_version")
        assert cursor.fetchone()[0] == _get_latest_schema_revision()
        cursor.execute("SELECT COUNT(*) FROM information_schema.tables t WHERE t.table_schema = 'mlflow' AND NOT "
                       "EXISTS (SELECT 1 FROM information_schema.table_constraints c WHERE c.table_schema = "
                       "t.table_schema AND c.table_name = t.table_name AND c.constraint_type = 'PRIMARY KEY')")
        assert cursor.fetchone()[0] == 0


def test_tracking_log_holds_no_secret(tracking_stack):
    log = tracking_stack.log.read_text()
    assert "backend store: mysql+pymysql://mlflow:***@" in log
    for secret in (tracking_stack.mariadb.admin_password, "Mlflow-db#pw", "with%odd", tracking_stack.s3.secret_key):
        assert secret not in log


def test_secrets_are_not_in_the_server_command_line(tracking_stack):
    from orm_pack.local import processes

    pids = {tracking_stack.tracking.pid} | processes.descendants(tracking_stack.tracking.pid)
    for pid in pids:
        try:
            cmdline = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
        except OSError:
            continue
        assert "Mlflow-db#pw" not in cmdline and "Mlflow-db%23pw" not in cmdline


def _environ(pid: int) -> dict:
    raw = open(f"/proc/{pid}/environ", "rb").read().decode(errors="replace")
    return dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)


def test_the_admin_login_leaves_the_server_after_the_first_boot_sql(tracking_stack):
    from orm_pack.local import processes

    for pid in {tracking_stack.tracking.pid, *processes.descendants(tracking_stack.tracking.pid)}:
        environ = _environ(pid)
        assert "MYSQL_ADMIN_PASSWORD" not in environ and "MYSQL_ADMIN_USER" not in environ, pid
        assert tracking_stack.mariadb.admin_password not in "\0".join(environ.values())


def test_server_runs_with_oci_checksum_settings_and_without_the_job_runner(tracking_stack):
    from orm_pack.local import processes

    environ = _environ(tracking_stack.tracking.pid)
    assert environ["AWS_REQUEST_CHECKSUM_CALCULATION"] == "when_required"
    assert environ["AWS_RESPONSE_CHECKSUM_VALIDATION"] == "when_required"
    assert environ["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    commands = [open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
                for pid in processes.descendants(tracking_stack.tracking.pid)]
    assert commands and not [command for command in commands if "huey" in command]


def test_the_image_healthcheck_passes_against_the_running_server(tracking_stack):
    command = healthcheck_command(RUNTIME.root / "docker" / "Dockerfile-tracking")
    port = tracking_stack.direct_url.rsplit(":", 1)[1]
    result = subprocess.run(command, env=dict(python_env(), MLFLOW_PORT=port), capture_output=True, timeout=30)
    assert result.returncode == 0, result.stderr
    down = subprocess.run(command, env=dict(python_env(), MLFLOW_PORT="1"), capture_output=True, timeout=30)
    assert down.returncode != 0


def test_every_write_leaves_an_audit_line_naming_the_shared_login(tracking_stack):
    """With the shared login nginx checks the password and tells MLflow who it was; what a client claims in that
    header is replaced, so nobody can write in another's name."""
    since = audit_trail.log_size(tracking_stack.log)
    http = requests.Session()
    http.verify, http.trust_env = CA_FILE, False  # the session's CA, whatever REQUESTS_CA_BUNDLE says
    http.auth = (tracking_stack.login.username, tracking_stack.login.password)
    http.headers["X-MLflow-OCI-User"] = "somebody-else"  # audit.USER_HEADER
    expected = audit_trail.do_the_writes(http, tracking_stack.url, "shared")
    lines = audit_trail.audit_lines(tracking_stack.log, since)
    audit_trail.check(lines, expected, {"user": tracking_stack.login.username, "login": "shared"})
    assert all("subject" not in line for line in lines)
