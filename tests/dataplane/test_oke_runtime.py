"""The OKE pods' commands, run natively with the settings of the rendered manifests: the migrate Job
prepares MySQL (first-boot SQL and migrations) and exits, the tracking container serves from the same
database without the administrator's login, and the proxy's init container writes the same nginx config
as the runtime tests' renderer, whose login (read from Vault) nginx accepts. nginx presents the certificate
the stack's CA issued for the load balancer's address, clients verify it with that CA, and the proxy pod's
refresh sidecar swaps in a renewed version without dropping a request. The metrics pod posts the deployment's
figures to OCI Monitoring and serves them to Prometheus; the housekeeping CronJob's pod makes its pass. Secrets, certificates and the
bucket come from the loopback instance-principal fakes (tests/ocifakes), as on a node of the cluster; a
pod's emptyDir volumes are directories of the test's own."""
import base64
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from ocifakes.certificates import WITH_PRIVATE_KEY, PrivateCA

from dataplane import trust
from dataplane.stacks import RUNTIME
from harness.static import nginx_binary
from harness.tools import require_binary
from oke import images
from oke.conftest import REPO_ROOT, SETTINGS, pod_spec
from orm_pack.local import nginx, processes
from orm_pack.local.ports import free_port
from orm_pack.local.services import python_env
from orm_pack.oke import manifests as oke_manifests
from orm_pack.oke import settings, workflow

pytestmark = pytest.mark.dataplane

DATABASE = "mlflow_oke"
BUCKET = "mlflow-oke"
LOGIN_PASSWORD = "Oke-login p@ss:word"
SYSLOG_PORT = free_port()  # the proxy pod's 5140 (proxy.yaml), on this machine


@pytest.fixture(scope="module")
def manifests(cloud, mariadb) -> dict:
    """The rendered pods and ConfigMaps, for settings that point at MariaDB and the fakes' Vault and bucket."""
    admin = cloud.add_secret("oke-admin", mariadb.admin_password)
    db_password = cloud.add_secret("oke-db", "Oke-db/p&ss'word")
    login = cloud.add_secret("oke-login", LOGIN_PASSWORD)
    cloud.create_bucket(BUCKET)
    # The nodes' grants (stack/iam.tf) leave out the administrator's secret: orm-pack reads it instead.
    cloud.grant(secrets=[db_password, login], buckets=[BUCKET])
    # The stack's CA and the load balancer's certificate (stack/tls.tf), here for the address nginx listens on;
    # the nodes read it with its key and the CA's certificate (stack/iam.tf). The stack's CA also issues MySQL's
    # certificate: the lane's test CA, which issued MariaDB's (dataplane/trust.py), stands for it here.
    authority = cloud.add_private_ca("mlflow-ca-oke")
    authority.key, authority.certificate = trust.AUTHORITY.key, trust.AUTHORITY.cert
    assert Path(mariadb.ca_file).read_bytes() == trust.AUTHORITY.cert.public_bytes(serialization.Encoding.PEM)
    certificate = authority.issue("mlflow-oke-lb", ("127.0.0.1",))
    cloud.grant_certificate(certificate, bundle_types=(WITH_PRIVATE_KEY,), authorities=[authority.ocid])
    raw = json.loads(SETTINGS.read_text())
    tracking_env = json.loads(raw["tracking_env"])
    tracking_env.update(mariadb.client_env(), MLFLOW_DB_NAME=DATABASE,
                        MLFLOW_DB_USER=DATABASE, MLFLOW_DB_PASSWORD_SECRET_OCID=db_password, MLFLOW_WORKERS="1",
                        MLFLOW_ARTIFACTS_DESTINATION=f"oci://{BUCKET}@{cloud.namespace}/artifacts")
    del tracking_env["MLFLOW_DB_SSL_CA"]  # as in the stack's output: the manifests name the pods' own CA file
    raw.update(tracking_env=json.dumps(tracking_env), login_password_secret_ocid=login,
               migrate_env=json.dumps({"MYSQL_ADMIN_USER": mariadb.admin_user,
                                       "MYSQL_ADMIN_PASSWORD_SECRET_OCID": admin}),
               tls_certificate_id=certificate, tls_ca_id=authority.ocid)
    _, documents = oke_manifests.render(REPO_ROOT / "oke", settings.from_output(raw), "kubectl")
    config_maps = {d["metadata"]["name"].rsplit("-", 1)[0]: d["data"] for d in documents if d["kind"] == "ConfigMap"}
    pods = {d["metadata"]["name"]: pod_spec(d) for d in documents if d["kind"] in ("Job", "Deployment", "CronJob")}
    # What `orm-pack oke deploy` creates for the Job from the password it read with the user's key.
    secret = workflow.admin_secret(mariadb.admin_password)
    return {"config_maps": config_maps, "pods": pods, "secrets": {secret["metadata"]["name"]: secret["stringData"]},
            "authority": authority, "certificate": certificate}


def pod_env(manifests, container: dict, cloud, home, pod: dict | None = None, volumes=None) -> dict:
    """What the container sees: its ConfigMaps and env, (as on an OKE node) the instance principal, the
    Secrets its pod mounts, as files under `home`/mounts where a setting names their mount path, and the
    pod's emptyDir volumes as directories under `volumes` (one per volume, shared by the pod's containers)."""
    env = python_env()
    for source in container.get("envFrom", []):
        prefix = source["configMapRef"]["name"].rsplit("-", 1)[0]
        env.update(manifests["config_maps"][prefix])
    env.update({item["name"]: item["value"] for item in container.get("env", [])})
    # each setting is mapped once, from what the manifests say (a mapped path may lie under a mount path)
    settings = {name: value for name, value in env.items() if name not in python_env()}
    secret_volumes = {v["name"]: v["secret"]["secretName"] for v in (pod or {}).get("volumes", []) if "secret" in v}
    for mount in container.get("volumeMounts", []):
        if mount["name"] not in secret_volumes or secret_volumes[mount["name"]] not in manifests["secrets"]:
            continue
        local = home.parent / "mounts" / mount["name"]
        local.mkdir(parents=True, exist_ok=True)
        for key, value in manifests["secrets"][secret_volumes[mount["name"]]].items():
            (local / key).write_text(value)
        env.update({name: value.replace(mount["mountPath"], str(local)) for name, value in settings.items()
                    if value.startswith(mount["mountPath"] + "/")})
    empty_dirs = {v["name"] for v in (pod or {}).get("volumes", []) if "emptyDir" in v}
    for mount in container.get("volumeMounts", []) if volumes else []:
        if mount["name"] in empty_dirs:
            local = volumes / mount["name"]
            local.mkdir(parents=True, exist_ok=True)
            env.update({name: str(local) + value[len(mount["mountPath"]):] for name, value in settings.items()
                        if value == mount["mountPath"] or value.startswith(mount["mountPath"] + "/")})
    env.update(cloud.runtime_env())
    home.mkdir(parents=True, exist_ok=True)
    env.update(HOME=str(home), TMPDIR=str(home))
    return env


def run_init_containers(manifests, pod: dict, cloud, workdir) -> None:
    """The pod's init containers, in order, natively; each must succeed."""
    for container in pod.get("initContainers", []):
        env = pod_env(manifests, container, cloud, workdir / "home", pod, workdir / "volumes")
        result = subprocess.run(images.native_argv(container), env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, (container["name"], result.stderr[-3000:])


def mysql_ca(env: dict, manifests) -> dict:
    """The pod verifies MySQL with MLFLOW_DB_SSL_CA: the stack's CA, as the pod's init container wrote it."""
    assert Path(env["MLFLOW_DB_SSL_CA"]).read_text() == manifests["authority"].authority_bundle()["certificatePem"]
    return env


@pytest.fixture(scope="module")
def migrated(manifests, cloud, tmp_path_factory):
    pod = manifests["pods"]["mlflow-migrate"]
    job = pod["containers"][0]
    workdir = tmp_path_factory.mktemp("migrate")
    run_init_containers(manifests, pod, cloud, workdir)
    env = mysql_ca(pod_env(manifests, job, cloud, workdir / "home", pod, workdir / "volumes"), manifests)
    assert "MYSQL_ADMIN_PASSWORD" not in env  # a file, not a setting
    result = subprocess.run(images.native_argv(job), env=env, capture_output=True, text=True, timeout=600)
    return result


def test_the_migrate_job_prepares_the_database_and_exits(migrated, mariadb):
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    assert f"database `{DATABASE}` and user '{DATABASE}'@'%' are ready" in migrated.stderr
    assert "migrate: the database is ready; not starting the server" in migrated.stderr
    with mariadb.admin(DATABASE) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT version_num FROM alembic_version")
        assert cursor.fetchone()[0]
    assert "Oke-db" not in migrated.stderr and mariadb.admin_password not in migrated.stderr


@pytest.fixture(scope="module")
def tracking(migrated, manifests, cloud, tracker, tmp_path_factory):
    assert migrated.returncode == 0
    pod = manifests["pods"]["mlflow-tracking"]
    container = pod["containers"][0]
    workdir = tmp_path_factory.mktemp("oke-tracking")
    run_init_containers(manifests, pod, cloud, workdir)
    env = mysql_ca(pod_env(manifests, container, cloud, workdir / "home", pod, workdir / "volumes"), manifests)
    port = free_port()
    env["MLFLOW_PORT"] = str(port)  # each pod has its own network; here they share the machine's
    service = tracker.start("oke-tracking", images.native_argv(container), env, workdir / "tracking.log")
    processes.wait_ready(service, f"http://127.0.0.1:{port}/health", 300)
    tracker.remember_tree(service)
    yield port, workdir / "tracking.log"
    tracker.stop(service)


def test_the_tracking_container_serves_without_the_administrators_login(tracking):
    port, log = tracking
    text = log.read_text()
    assert "MLflow schema is at revision" in text
    assert "are ready on" not in text  # no first-boot SQL: the Job did it, with a login the pods never get
    # MySQL's certificate verified with the CA file the pod's init container wrote (its tls volume), name too
    assert re.search(r"ssl_ca=[^&\s]*%2Fvolumes%2Ftls%2Fca\.pem&ssl_check_hostname=true", text), text[-2000:]
    created = requests.post(f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/create", json={"name": "oke"},
                            timeout=30)
    assert created.status_code == 200, created.text


def setup_proxy_pod(manifests, cloud, tracking, workdir: Path, syslog_port: int) -> tuple[Path, str, str]:
    """The proxy pod's init container, run natively; listen and upstream are this machine's ports, and so is the
    request-metrics sidecar's syslog port. Its shared volume (proxy-files) is workdir/volumes/proxy-files."""
    pod = manifests["pods"]["mlflow-proxy"]
    setup = pod["initContainers"][0]
    env = pod_env(manifests, setup, cloud, workdir / "home", pod, workdir / "volumes")
    listen, upstream = f"127.0.0.1:{free_port()}", f"127.0.0.1:{tracking[0]}"
    # the request log goes to the request-metrics sidecar on the pod's loopback
    assert env["PROXY_REQUEST_LOG"] == "syslog:server=127.0.0.1:5140"
    env.update(PROXY_LISTEN_PORT=listen, PROXY_UPSTREAM=upstream,
               PROXY_REQUEST_LOG=f"syslog:server=127.0.0.1:{syslog_port}")
    result = subprocess.run(images.native_argv(setup), env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert LOGIN_PASSWORD not in result.stderr
    assert env["PROXY_DIR"] == str(workdir / "volumes" / "proxy-files")
    return workdir, listen, upstream


def start_proxy_nginx(tracker, workdir: Path, listen: str):
    """nginx with the files the init container wrote (its own image's main config here: the pid file is in
    workdir/nginx), answering /health."""
    files = workdir / "volumes" / "proxy-files"
    conf = nginx.write_main_conf(workdir / "nginx", [files / "conf.d" / "mlflow.conf"])
    binary = nginx_binary()
    nginx.check_config(binary, conf)
    service = tracker.start("oke-nginx", nginx.nginx_argv(binary, conf), dict(os.environ), workdir / "nginx.log")
    try:
        processes.wait_ready(service, f"https://{listen}/health", 30, accept=(200,))
    except Exception:
        tracker.stop(service)
        raise
    return service


@pytest.fixture(scope="module")
def proxy_files(manifests, cloud, tracking, tmp_path_factory):
    """(workdir, listen, upstream) of the proxy pod's setup: see setup_proxy_pod."""
    return setup_proxy_pod(manifests, cloud, tracking, tmp_path_factory.mktemp("oke-proxy"), SYSLOG_PORT)


def test_the_proxy_config_is_the_runtime_renderers_for_the_same_settings(proxy_files, manifests):
    workdir, listen, upstream = proxy_files
    files = workdir / "volumes" / "proxy-files"
    proxy_settings = manifests["config_maps"]["mlflow-proxy"]
    assert proxy_settings["PROXY_UPSTREAM"] == "mlflow-tracking:5000" and proxy_settings["PROXY_LISTEN_PORT"] == "8443"
    reference = nginx.render_proxy(RUNTIME, workdir / "reference.conf", listen=listen, upstream=upstream,
                                   htpasswd=files / "htpasswd", tls_cert=files / "tls" / "cert.pem",
                                   tls_key=files / "tls" / "key.pem", server_name=proxy_settings["PROXY_SERVER_NAME"],
                                   request_log=f"syslog:server=127.0.0.1:{SYSLOG_PORT}")
    assert (files / "conf.d" / "mlflow.conf").read_text() == reference.read_text()
    assert oct((files / "htpasswd").stat().st_mode & 0o777) == "0o640"


@pytest.fixture(scope="module")
def proxy_nginx(proxy_files, tracker):
    """nginx of the proxy pod; yields (url, pid file, CA file the init container wrote)."""
    workdir, listen, _ = proxy_files
    service = start_proxy_nginx(tracker, workdir, listen)
    try:
        yield f"https://{listen}", workdir / "nginx" / "nginx.pid", workdir / "volumes" / "proxy-files" / "tls" / "ca.pem"
    finally:
        tracker.stop(service)


def test_nginx_accepts_the_login_from_vault_and_nothing_else(proxy_nginx, manifests):
    url, _, ca_file = proxy_nginx
    search = f"{url}/api/2.0/mlflow/experiments/search?max_results=10"
    user = manifests["config_maps"]["mlflow-proxy"]["PROXY_LOGIN_USER"]
    good = requests.get(search, auth=(user, LOGIN_PASSWORD), verify=str(ca_file), timeout=30)
    assert good.status_code == 200, good.text
    assert "oke" in [e["name"] for e in good.json()["experiments"]]
    assert requests.get(search, auth=(user, LOGIN_PASSWORD + "x"), verify=str(ca_file), timeout=30).status_code == 401


def _served(address: str, ca_file) -> x509.Certificate:
    """The certificate a new connection is shown, verified with the CA for the address (IP SAN)."""
    host, port = address.rsplit(":", 1)
    context = ssl.create_default_context(cafile=str(ca_file))
    with socket.create_connection((host, int(port)), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=host) as tls:
        return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def _wait_until_served(wanted: x509.Certificate, address: str, ca_file, before: x509.Certificate) -> None:
    """nginx's reload starts new workers before it tells the old ones to stop listening, so for a moment a new
    connection may still reach an old worker: wait (bounded) until new connections get `wanted`."""
    deadline = time.monotonic() + 15
    while (served := _served(address, ca_file)).serial_number != wanted.serial_number:
        old = served.serial_number == before.serial_number
        assert time.monotonic() < deadline, f"nginx still presents {'the old' if old else 'another'} certificate"
        time.sleep(0.2)


def _nginx_workers(pid_file: Path) -> set[int]:
    """The master's children (Linux lists them in /proc)."""
    master = pid_file.read_text().strip()
    return {int(pid) for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split()}


def _wait_until_gone(pids: set[int]) -> None:
    """An old worker leaves once its last connection is done: lingering close may keep it a few seconds."""
    deadline = time.monotonic() + 30
    while left := {pid for pid in pids if Path(f"/proc/{pid}").exists()}:
        assert time.monotonic() < deadline, f"nginx's old workers {sorted(left)} did not leave"
        time.sleep(0.2)


def test_the_proxy_pod_presents_the_certificate_the_stacks_ca_issued_for_the_load_balancers_address(
        proxy_nginx, proxy_files, manifests):
    """Before: a self-signed certificate no client could verify (MLFLOW_TRACKING_INSECURE_TLS)."""
    _, _, ca_file = proxy_nginx
    authority = manifests["authority"]
    assert ca_file.read_text() == authority.authority_bundle()["certificatePem"]
    served = _served(proxy_files[1], ca_file)
    current = authority.issued[manifests["certificate"]].versions[-1].certificate
    assert served.serial_number == current.serial_number and served.issuer == authority.certificate.subject
    # the key stays the pod user's
    assert oct((ca_file.parent / "key.pem").stat().st_mode & 0o777) == "0o600"
    # another CA's certificate does not verify it
    other = PrivateCA("another-ca")
    other_file = ca_file.parent.parent.parent / "other-ca.pem"
    other_file.write_text(other.authority_bundle()["certificatePem"])
    with pytest.raises(ssl.SSLCertVerificationError):
        _served(proxy_files[1], other_file)


def test_the_refresh_sidecar_swaps_in_a_renewed_certificate_without_dropping_a_request(
        proxy_nginx, proxy_files, manifests, cloud):
    """OCI renews the certificate (a new version); the sidecar's pass installs it and reloads nginx: a request
    whose body is still arriving finishes on the old connection, new connections get the new version."""
    url, pid_file, ca_file = proxy_nginx
    workdir, listen, _ = proxy_files
    pod = manifests["pods"]["mlflow-proxy"]
    sidecar = [c for c in pod["containers"] if c["name"] == "tls-refresh"][0]
    env = pod_env(manifests, sidecar, cloud, workdir / "sidecar-home", pod, workdir / "volumes")
    assert env["TLS_DIR"] == str(ca_file.parent)
    env["NGINX_PID_FILE"] = str(pid_file)  # in the pod: nginx's /tmp, mounted read-only (proxy.yaml)
    argv = images.native_argv(sidecar) + ["--once"]
    before = _served(listen, ca_file)
    old_workers = _nginx_workers(pid_file)
    assert old_workers, "nginx runs no worker"

    # nothing renewed: the pass changes nothing and does not reload nginx
    quiet = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 0 and "reloads" not in quiet.stderr, quiet.stderr

    user = manifests["config_maps"]["mlflow-proxy"]["PROXY_LOGIN_USER"]
    body = json.dumps({"name": "oke-across-a-reload"}).encode()
    host, port = listen.rsplit(":", 1)
    context = ssl.create_default_context(cafile=str(ca_file))
    with socket.create_connection((host, int(port)), timeout=30) as raw, \
            context.wrap_socket(raw, server_hostname=host) as connection:
        token = base64.b64encode(f"{user}:{LOGIN_PASSWORD}".encode()).decode()
        connection.sendall((f"POST /api/2.0/mlflow/experiments/create HTTP/1.1\r\nHost: {listen}\r\n"
                            f"Authorization: Basic {token}\r\nContent-Type: application/json\r\n"
                            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body[:5])
        cloud.private_cas[manifests["authority"].ocid].renew(manifests["certificate"])
        renewed = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        assert renewed.returncode == 0 and "reloads with the new certificate" in renewed.stderr, renewed.stderr
        current = manifests["authority"].issued[manifests["certificate"]].versions[-1].certificate
        assert current.serial_number != before.serial_number
        _wait_until_served(current, listen, ca_file, before)
        connection.sendall(body[5:])
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
    # Once the old worker has finished the request it leaves (nginx's master tells it to stop listening only
    # 100 ms after starting the new one, later on a loaded machine): then every new connection gets the new version.
    _wait_until_gone(old_workers)
    assert all(_served(listen, ca_file).serial_number == current.serial_number for _ in range(5))
    check = requests.get(f"{url}/api/2.0/mlflow/experiments/get-by-name?experiment_name=oke-across-a-reload",
                         auth=(user, LOGIN_PASSWORD), verify=str(ca_file), timeout=30)
    assert check.status_code == 200, check.text


def test_with_mlflows_own_users_the_proxy_pods_pass_logins_on(tmp_path):
    """tracking_env with MLFLOW_AUTH=mlflow: the proxy ConfigMap says PROXY_AUTH=upstream, and the init
    container then reads no login from Vault and renders a config that checks none."""
    raw = json.loads(SETTINGS.read_text())
    raw["tracking_env"] = json.dumps({**json.loads(raw["tracking_env"]), "MLFLOW_AUTH": "mlflow"})
    raw["max_request_body_mb"] = "128"  # the stack's form setting
    _, documents = oke_manifests.render(REPO_ROOT / "oke", settings.from_output(raw), require_binary("kubectl"))
    proxy_settings = [d["data"] for d in documents
                      if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("mlflow-proxy-")][0]
    assert proxy_settings["PROXY_AUTH"] == "upstream" and proxy_settings["PROXY_MAX_BODY_MB"] == "128"
    setup = [d for d in documents if d["kind"] == "Deployment" and d["metadata"]["name"] == "mlflow-proxy"][0]
    container = setup["spec"]["template"]["spec"]["initContainers"][0]
    env = {**python_env(), **proxy_settings, "PROXY_DIR": str(tmp_path / "files"), "HOME": str(tmp_path),
           "PROXY_LISTEN_PORT": "127.0.0.1:18443", "PROXY_UPSTREAM": "127.0.0.1:15000",
           "OCI_METADATA_BASE_URL": "http://127.0.0.1:9/opc/v2"}  # Vault is unreachable: it must not be asked
    result = subprocess.run(images.native_argv(container), env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    conf = (tmp_path / "files" / "conf.d" / "mlflow.conf").read_text()
    assert "auth_basic_user_file" not in conf and 'Authorization ""' not in conf and "proxy_intercept_errors on;" in conf
    assert "client_max_body_size    128m;" in conf
    assert not (tmp_path / "files" / "htpasswd").exists()


def _count(mariadb, query: str) -> int:
    with mariadb.admin(DATABASE) as connection, connection.cursor() as cursor:
        cursor.execute(query)
        return int(cursor.fetchone()[0])


def test_the_metrics_pod_posts_the_deployments_figures_and_serves_them_to_prometheus(
        manifests, cloud, tracking, tracker, mariadb, tmp_path):
    """oke/base/metrics.yaml's pod, natively: its first pass reaches MySQL with the MLflow user (the CA its init
    container wrote), asks the tracking servers' health through the Service (here the tracking pod's port), posts
    to the Monitoring fake with the node's instance principal, and /metrics shows Prometheus the same values."""
    pod = manifests["pods"]["mlflow-metrics"]
    container = pod["containers"][0]
    run_init_containers(manifests, pod, cloud, tmp_path)
    env = mysql_ca(pod_env(manifests, container, cloud, tmp_path / "home", pod, tmp_path / "volumes"), manifests)
    assert env["MLFLOW_METRICS_HEALTH_URL"] == "http://mlflow-tracking:5000/health"
    env["MLFLOW_METRICS_HEALTH_URL"] = f"http://127.0.0.1:{tracking[0]}/health"  # the Service, on this machine
    cloud.grants[cloud.instance.instance_ocid].metric_namespaces.add("mlflow")
    argv, port = images.native_argv(container), free_port()
    assert argv[-2:] == ["--prometheus-port", "9464"]
    service = tracker.start("oke-metrics", [*argv[:-1], str(port)], env, tmp_path / "metrics.log")
    try:
        processes.wait_ready(service, f"http://127.0.0.1:{port}/metrics", 120)  # 503 until the first pass
        exposition = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        deadline = time.monotonic() + 60
        while not cloud.metrics and time.monotonic() < deadline:  # the pass posts once it has shown its values
            time.sleep(0.2)
    finally:
        tracker.stop(service)
    log = (tmp_path / "metrics.log").read_text()
    assert "Oke-db" not in log and mariadb.admin_password not in log
    posted = {m["name"]: m for m in cloud.metrics}
    # as the stack's alarms filter them (stack/alarms.tf): the stack's name prefix, the tracking role
    assert {(m["dimensions"]["deployment"], m["dimensions"]["role"]) for m in cloud.metrics} == {("mlflow", "tracking")}
    expected = {
        "mlflow.up": 1,
        "mlflow.runs": _count(mariadb, "SELECT count(*) FROM runs WHERE lifecycle_stage = 'active'"),
        "mlflow.experiments": _count(mariadb, "SELECT count(*) FROM experiments WHERE lifecycle_stage = 'active'"),
        "mlflow.registered_models": _count(mariadb, "SELECT count(*) FROM registered_models"),
    }
    assert {name: posted[name]["datapoints"][0]["value"] for name in expected} == expected
    assert expected["mlflow.experiments"] >= 1
    assert posted["mlflow.database_bytes"]["datapoints"][0]["value"] > 0
    assert "mlflow.disk_used_percent" not in posted  # a pod's file system is the node's
    shown = dict(line.rsplit(" ", 1) for line in exposition.splitlines() if not line.startswith("#"))
    labels = '{{deployment="{}",role="tracking"}}'.format(posted["mlflow.up"]["dimensions"]["deployment"])
    for name, value in expected.items():
        assert float(shown[name.replace(".", "_") + labels]) == value, name


def test_the_housekeeping_cronjob_removes_a_run_deleted_long_ago_with_the_mlflow_user(
        manifests, cloud, tracking, mariadb, tmp_path):
    """oke/base/housekeeping.yaml's pod, natively, with the tracking pods' settings (deleted runs kept 30 days) and
    never the administrator's login: a dry run removes nothing; the pass removes the run deleted 40 days ago and
    keeps the one deleted today."""
    api = f"http://127.0.0.1:{tracking[0]}/api/2.0/mlflow"
    experiment = requests.post(f"{api}/experiments/create", json={"name": "oke-housekeeping"}, timeout=30).json()
    runs = [requests.post(f"{api}/runs/create", json={"experiment_id": experiment["experiment_id"]},
                          timeout=30).json()["run"]["info"]["run_id"] for _ in range(2)]
    for run in runs:
        assert requests.post(f"{api}/runs/delete", json={"run_id": run}, timeout=30).status_code == 200
    long_ago = int((time.time() - 40 * 86400) * 1000)
    with mariadb.admin(DATABASE) as connection, connection.cursor() as cursor:
        cursor.execute("UPDATE runs SET deleted_time = %s WHERE run_uuid = %s", (long_ago, runs[0]))
        connection.commit()
    pod = manifests["pods"]["mlflow-housekeeping"]
    container = pod["containers"][0]
    run_init_containers(manifests, pod, cloud, tmp_path)
    env = mysql_ca(pod_env(manifests, container, cloud, tmp_path / "home", pod, tmp_path / "volumes"), manifests)
    assert env["MLFLOW_DELETED_RUNS_KEPT_DAYS"] == "30" and "MYSQL_ADMIN_USER" not in env

    def kept() -> set:
        with mariadb.admin(DATABASE) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT run_uuid FROM runs WHERE run_uuid IN (%s, %s)", tuple(runs))
            return {row[0] for row in cursor.fetchall()}

    for extra, left in ((["--dry-run"], set(runs)), ([], {runs[1]})):
        result = subprocess.run(images.native_argv(container) + extra, env=env, capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        assert json.loads(result.stdout.strip().splitlines()[-1])["dry_run"] is bool(extra)
        assert kept() == left, extra
        assert "Oke-db" not in result.stderr + result.stdout


def _totals(cloud, name: str, *dimensions: str) -> dict:
    """The values of every post of a metric, added up per the named dimensions."""
    totals: dict = {}
    for metric in cloud.metrics:
        if metric["name"] == name:
            key = tuple(metric["dimensions"][d] for d in dimensions)
            totals[key] = totals.get(key, 0) + sum(point["value"] for point in metric["datapoints"])
    return totals


def test_the_proxy_pods_request_metrics_reach_monitoring_and_prometheus(manifests, cloud, tracking, tracker,
                                                                        tmp_path):
    """nginx's request log as syslog datagrams (render.sh) to the request-metrics sidecar (proxy.yaml), natively,
    in a proxy pod of its own: its passes post the requests per route and status, their latency and the refused
    login, as the VMs' pass does, and show Prometheus the same; nothing of the login reaches it. (A datagram sent
    while nothing listens makes that nginx worker's next send fail: here the sidecar listens first.)"""
    pod = manifests["pods"]["mlflow-proxy"]
    sidecar = [c for c in pod["containers"] if c["name"] == "request-metrics"][0]
    env = pod_env(manifests, sidecar, cloud, tmp_path / "home", pod, tmp_path / "volumes")
    env["PYTHONPATH"] = str(REPO_ROOT / "docker" / "lib")  # the image's /opt/mlflow/lib
    cloud.grants[cloud.instance.instance_ocid].metric_namespaces.add("mlflow")
    assert sidecar["args"] == ["--every", "60", "--requests-syslog", "5140", "--prometheus-port", "9465"]
    syslog, prometheus = free_port(), free_port()
    argv = [sys.executable, *sidecar["command"][1:], "--every", "10", "--requests-syslog", str(syslog),
            "--prometheus-port", str(prometheus)]
    service = tracker.start("oke-request-metrics", argv, env, tmp_path / "request-metrics.log")
    processes.wait_ready(service, f"http://127.0.0.1:{prometheus}/metrics", 60)  # the first pass: no request yet
    workdir, listen, _ = setup_proxy_pod(manifests, cloud, tracking, tmp_path / "pod", syslog)
    proxy = start_proxy_nginx(tracker, workdir, listen)
    user = manifests["config_maps"]["mlflow-proxy"]["PROXY_LOGIN_USER"]
    ca_file = str(workdir / "volumes" / "proxy-files" / "tls" / "ca.pem")
    try:
        search = f"https://{listen}/api/2.0/mlflow/experiments/search?max_results=10"
        statuses = [requests.get(search, auth=(user, LOGIN_PASSWORD), verify=ca_file, timeout=30).status_code
                    for _ in range(11)]
        statuses.append(requests.get(search, auth=(user, "not-" + LOGIN_PASSWORD), verify=ca_file,
                                     timeout=30).status_code)
        assert statuses == [200] * 11 + [401]
        # the requests may straddle two passes (every 10 s here): what the passes posted adds up to them
        deadline = time.monotonic() + 60
        while (counts := _totals(cloud, "mlflow.requests", "route", "status")) != {
                ("api", "2xx"): 11, ("api", "4xx"): 1, ("health", "2xx"): 1} and time.monotonic() < deadline:
            time.sleep(0.5)
        deadline = time.monotonic() + 30
        while "mlflow_requests" not in (exposition := requests.get(f"http://127.0.0.1:{prometheus}/metrics",
                                                                    timeout=10).text) and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        tracker.stop(proxy)
        tracker.stop(service)
    # 11 searches and the refused one; nginx's start was asked /health once
    assert counts == {("api", "2xx"): 11, ("api", "4xx"): 1, ("health", "2xx"): 1}
    assert _totals(cloud, "mlflow.login_failures") == {(): 1}
    latency = [m["datapoints"][0]["value"] for m in cloud.metrics if m["name"] == "mlflow.latency_p99_ms"]
    assert latency and all(value > 0 for value in latency)
    assert {(m["dimensions"]["deployment"], m["dimensions"]["role"]) for m in cloud.metrics} == {("mlflow", "tracking")}
    assert re.search(r'^mlflow_requests\{deployment="mlflow",role="tracking",route="api",status="2xx"\} \d+$',
                     exposition, re.MULTILINE), exposition
    log = (tmp_path / "request-metrics.log").read_text()
    assert LOGIN_PASSWORD not in log and "not-" not in log
