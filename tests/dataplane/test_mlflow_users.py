"""A login per person: MLflow's own users (its basic-auth app, MLFLOW_AUTH=mlflow) on two tracking replicas
that share one MariaDB, behind the auth proxy passing logins on (PROXY_AUTH=upstream), managed with
`orm-pack users` as an admin would."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from dataplane.stacks import CLIENT_ENV, serving_proxy_asking, start_proxy, start_tracking_replicas
from dataplane.trust import CA_FILE
from harness import audit_trail
from orm_pack.local import credentials
from orm_pack.local.services import python_env

pytestmark = pytest.mark.dataplane

DATABASE = "mlflow_users"
ADMIN = credentials.Credentials("mlflow", "Admin-login-Passw0rd-2026")
ADMIN_AUTH = (ADMIN.username, ADMIN.password)
# The model endpoint's and the notebook's own users, as the stack names them (stack/vault.tf).
SERVING = credentials.Credentials("mlflow-serving", "Serving-login-Passw0rd-2026")
NOTEBOOK = credentials.Credentials("mlflow-notebook", "Notebook-login-Passw0rd-2026")
SERVED_MODEL = "wine-quality"
# How long a replica trusts a password it checked, here (the product's default: 30 s, at most 60).
PASSWORD_CACHE_SECONDS = 6
AUTH_ENV = (("MLFLOW_AUTH", "mlflow"), ("MLFLOW_AUTH_ADMIN_USERNAME", ADMIN.username),
            ("MLFLOW_OCI_PASSWORD_CACHE_SECONDS", str(PASSWORD_CACHE_SECONDS)),
            ("MLFLOW_AUTH_ADMIN_PASSWORD", ADMIN.password), ("MLFLOW_AUTH_DEFAULT_PERMISSION", "READ"),
            ("MLFLOW_FLASK_SERVER_SECRET_KEY", "one-key-for-every-replica-0123456789"),
            ("MLFLOW_SERVED_MODEL_NAME", SERVED_MODEL),
            ("MLFLOW_SERVING_USERNAME", SERVING.username), ("MLFLOW_SERVING_PASSWORD", SERVING.password),
            ("MLFLOW_NOTEBOOK_USERNAME", NOTEBOOK.username), ("MLFLOW_NOTEBOOK_PASSWORD", NOTEBOOK.password))


@pytest.fixture(scope="module")
def replicas(tracker, tmp_path_factory, mariadb, s3):
    workdir = tmp_path_factory.mktemp("users")
    first, second = start_tracking_replicas(tracker, mariadb, s3, workdir, ("a", "b"), database=DATABASE,
                                            s3_prefix="users", extra_env=AUTH_ENV)
    proxy, url = start_proxy(tracker, workdir / "proxy", [first.port, second.port], ADMIN, auth="upstream")
    yield first, second, url
    for service in (proxy, second.service, first.service):
        tracker.stop(service)


def users(url: str, *args: str, login=ADMIN, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = dict(python_env(), **CLIENT_ENV, MLFLOW_TRACKING_USERNAME=login.username,
               MLFLOW_TRACKING_PASSWORD=login.password)
    return subprocess.run([sys.executable, "-m", "orm_pack.cli", "users", *args[:1], "--url", url, *args[1:]],
                          env=env, capture_output=True, text=True, timeout=120, input=stdin)


def current_user(url: str, login) -> requests.Response:
    return requests.get(f"{url}/api/2.0/mlflow/users/current", auth=login, verify=CA_FILE, timeout=30)


def test_a_user_added_through_one_replica_logs_in_through_the_other(replicas):
    first, second, _ = replicas
    added = users(first.url, "add", "alice")
    assert added.returncode == 0, added.stderr
    alice = (("alice", added.stdout.strip()))
    assert len(alice[1]) >= 20
    answer = current_user(second.url, alice)
    assert answer.status_code == 200, answer.text
    assert answer.json()["user"]["username"] == "alice"
    listed = users(second.url, "list")
    assert listed.returncode == 0 and listed.stdout.split("\n")[:2] == ["alice", "mlflow  (admin)"], listed


def test_new_users_get_the_default_permission_and_a_grant_widens_it(replicas):
    first, _, url = replicas
    users(first.url, "add", "bob", "--password-stdin", stdin="Bob-login-Passw0rd\n")
    bob = ("bob", "Bob-login-Passw0rd")
    admin = requests.post(f"{url}/api/2.0/mlflow/experiments/create", json={"name": "shared"}, auth=ADMIN_AUTH,
                          verify=CA_FILE, timeout=30)
    assert admin.status_code == 200, admin.text
    experiment = admin.json()["experiment_id"]
    read = requests.get(f"{url}/api/2.0/mlflow/experiments/get", params={"experiment_id": experiment}, auth=bob,
                        verify=CA_FILE, timeout=30)
    assert read.status_code == 200  # READ, the default chosen for new users
    write = {"experiment_id": experiment}
    refused = requests.post(f"{url}/api/2.0/mlflow/runs/create", json=write, auth=bob, verify=CA_FILE, timeout=30)
    assert refused.status_code == 403, refused.text
    granted = users(url, "grant", "bob", "--experiment", "shared", "--permission", "edit")
    assert granted.returncode == 0, granted.stderr
    allowed = requests.post(f"{url}/api/2.0/mlflow/runs/create", json=write, auth=bob, verify=CA_FILE, timeout=30)
    assert allowed.status_code == 200, allowed.text
    assert users(url, "grant", "bob", "--experiment", experiment, "--permission", "READ").returncode == 0
    again = requests.post(f"{url}/api/2.0/mlflow/runs/create", json=write, auth=bob, verify=CA_FILE, timeout=30)
    assert again.status_code == 403  # a grant replaces the earlier one


def test_the_proxy_passes_logins_on_and_still_limits_failed_ones(replicas):
    _, _, url = replicas
    assert current_user(url, ADMIN_AUTH).json()["user"]["username"] == "mlflow"
    wrong = current_user(url, ("mlflow", "not-the-password"))
    assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"] == 'Basic realm="mlflow"'  # MLflow's, once
    assert wrong.text == "Login required: MLflow user and password (HTTP basic auth)\n"
    statuses = [current_user(url, ("nobody", f"guess-{n}")).status_code for n in range(14)]
    assert statuses[0] == 401 and statuses[-1] == 429, statuses


def test_a_non_admin_cannot_manage_users_and_a_removed_user_is_locked_out(replicas):
    first, second, _ = replicas
    users(first.url, "add", "carol", "--password-stdin", stdin="Carol-login-Passw0rd\n")
    carol = credentials.Credentials("carol", "Carol-login-Passw0rd")
    refused = users(first.url, "add", "mallory", login=carol)
    assert refused.returncode == 3 and "may not do this (403)" in refused.stderr, refused
    assert users(first.url, "remove", "mlflow").returncode == 2  # not the admin you are logged in as
    removed = users(first.url, "remove", "carol")
    assert removed.returncode == 0, removed.stderr
    assert current_user(second.url, (carol.username, carol.password)).status_code == 401


def test_the_serving_endpoint_accepts_the_same_identities(replicas, tracker, tmp_path):
    """The serving VM's proxy in PROXY_AUTH=tracking: the tracking server decides who may call the model."""
    first, second, _ = replicas
    with serving_proxy_asking(tracker, tmp_path, second.url, ADMIN) as url:
        users(first.url, "add", "dave", "--password-stdin", stdin="Dave-login-Passw0rd\n")
        dave = ("dave", "Dave-login-Passw0rd")
        answer = requests.get(f"{url}/invocations", auth=dave, verify=CA_FILE, timeout=30)
        assert answer.status_code == 200 and answer.text == "a prediction\n"
        assert requests.get(f"{url}/invocations", auth=("dave", "wrong"), verify=CA_FILE, timeout=30).status_code == 401
        assert requests.get(f"{url}/invocations", verify=CA_FILE, timeout=30).status_code == 401
        users(second.url, "remove", "dave")  # the replica asked: it drops dave's check at once (the other: below)
        assert requests.get(f"{url}/invocations", auth=dave, verify=CA_FILE, timeout=30).status_code == 401


def test_a_changed_password_is_refused_by_every_replica_within_the_deadline(replicas):
    """A replica trusts a password it checked for MLFLOW_OCI_PASSWORD_CACHE_SECONDS (not the database on every
    request): the replica that changes it refuses the old one at once, the other as soon as its check expires."""
    first, second, _ = replicas
    old, new = ("erin", "Erin-login-Passw0rd"), ("erin", "Erin-changed-Passw0rd-2026")
    assert users(first.url, "add", old[0], "--password-stdin", stdin=old[1] + "\n").returncode == 0
    began = time.monotonic()
    assert current_user(second.url, old).status_code == 200  # checked, and kept by the second replica
    checked_by = time.monotonic()
    changed = requests.patch(f"{first.url}/api/2.0/mlflow/users/update-password", auth=ADMIN_AUTH, timeout=30,
                             json={"username": old[0], "password": new[1]})
    assert changed.status_code == 200, changed.text
    assert current_user(first.url, old).status_code == 401
    stale, asked_by = current_user(second.url, old).status_code, time.monotonic()
    if asked_by - began < PASSWORD_CACHE_SECONDS:  # (a machine too busy to ask in time cannot tell)
        assert stale == 200, "the second replica checked the password again instead of trusting its check"
    time.sleep(max(0.0, checked_by + PASSWORD_CACHE_SECONDS + 0.5 - time.monotonic()))
    assert current_user(second.url, old).status_code == 401  # the deadline: its check has expired
    assert current_user(second.url, new).status_code == 200


def test_users_live_in_their_own_database_beside_mlflows(replicas, mariadb):
    with mariadb.admin(f"{DATABASE}_auth") as connection, connection.cursor() as cursor:
        cursor.execute("SELECT username, is_admin FROM users ORDER BY username")
        rows = dict(cursor.fetchall())
        cursor.execute("SELECT version_num FROM alembic_version_auth")
        assert cursor.fetchone()[0]
    assert rows["mlflow"] == 1 and rows["alice"] == 0
    for replica in replicas[:2]:
        for directory in replica.dirs:
            assert not list(directory.rglob("*.db")), directory


def test_the_readme_user_commands_manage_a_person(replicas, tmp_path):
    """README's block, as an admin types it (the password already exported), against the proxy."""
    from harness.readme import block_starting, fill

    _, _, url = replicas
    requests.post(f"{url}/api/2.0/mlflow/experiments/create", json={"name": "wine"}, auth=ADMIN_AUTH, verify=CA_FILE,
                  timeout=30)
    again = users(url, "add", "alice")  # she exists (the first test): refused, with no detail
    assert again.returncode == 5 and "User (username=alice) already exists" in again.stderr, again
    assert "password_hash" not in again.stderr and "scrypt" not in again.stderr
    assert users(url, "remove", "alice").returncode == 0
    # The lane's CA stands in for the stack's CA that `orm-pack apply` saves: the block verifies the server with
    # it, and nothing turns verification off.
    script = fill(block_starting("export MLFLOW_TRACKING_USERNAME=mlflow MLFLOW_TRACKING_PASSWORD"),
                  {"https://<tracking-ip>": url, "~/.oci/oci-mlflow-ca.pem": CA_FILE})
    env = {k: v for k, v in python_env().items() if k not in ("MLFLOW_TRACKING_INSECURE_TLS",
                                                               "MLFLOW_TRACKING_SERVER_CERT_PATH")}
    env.update({k: v for k, v in CLIENT_ENV.items() if k != "MLFLOW_TRACKING_SERVER_CERT_PATH"},
               MLFLOW_TRACKING_PASSWORD=ADMIN.password, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    result = subprocess.run(["bash", "-e", "-c", script], env=env, capture_output=True, text=True, timeout=300,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr and "insecure" not in result.stderr.lower()
    assert "alice" in result.stdout.splitlines()  # listed before she is removed
    assert "alice: EDIT on experiment" in result.stderr
    assert current_user(url, ("alice", "anything")).status_code == 401


def test_nobody_names_an_artifact_location_the_server_would_open_for_them(replicas, s3):
    """The server reads artifacts with its own identity: a store URI a user names (as a model version's
    source, or as a new experiment's location) would let them read another experiment's files through
    `get-artifact`. Only locations MLflow checks against their permissions are taken."""
    first, _, url = replicas
    users(first.url, "add", "mallory", "--password-stdin", stdin="Mallory-login-Passw0rd\n")
    mallory = ("mallory", "Mallory-login-Passw0rd")

    def post(path: str, body: dict, auth) -> requests.Response:
        return requests.post(f"{url}/api/2.0/mlflow/{path}", json=body, auth=auth, verify=CA_FILE, timeout=30)

    private = post("experiments/create", {"name": "someone-elses-work"}, ADMIN_AUTH).json()["experiment_id"]
    run = post("runs/create", {"experiment_id": private}, ADMIN_AUTH).json()["run"]["info"]["run_id"]
    files = f"s3://{s3.bucket}/users/{private}/{run}/artifacts"  # where that run's artifacts are stored

    assert post("registered-models/create", {"name": "mallorys-model"}, mallory).status_code == 200
    stolen = post("model-versions/create", {"name": "mallorys-model", "source": f"{files}/model"}, mallory)
    assert stolen.status_code == 400 and "Invalid model version source" in stolen.text, stolen.text
    elsewhere = post("experiments/create", {"name": "mallorys-window", "artifact_location": files}, mallory)
    assert elsewhere.status_code == 400 and "artifact_location is chosen by the server" in elsewhere.text

    own = post("experiments/create", {"name": "mallorys-own"}, mallory).json()["experiment_id"]
    own_run = post("runs/create", {"experiment_id": own}, mallory).json()["run"]["info"]["run_id"]
    registered = post("model-versions/create", {"name": "mallorys-model", "source": f"runs:/{own_run}/model",
                                                "run_id": own_run}, mallory)
    assert registered.status_code == 200, registered.text


def test_a_version_registered_before_the_source_rule_is_not_served_from_elsewhere(replicas, mariadb, s3):
    """A version registered before MLflow refused store-URI sources may name another experiment's files;
    `get-artifact` would read them with the server's own identity. Made here as that server stored it."""
    first, _, url = replicas
    users(first.url, "add", "trudy", "--password-stdin", stdin="Trudy-login-Passw0rd\n")
    trudy = ("trudy", "Trudy-login-Passw0rd")

    def post(path: str, body: dict, auth) -> requests.Response:
        return requests.post(f"{url}/api/2.0/mlflow/{path}", json=body, auth=auth, verify=CA_FILE, timeout=30)

    def upload(experiment: str, run: str, name: str, content: bytes, auth) -> None:
        put = requests.put(f"{url}/api/2.0/mlflow-artifacts/artifacts/{experiment}/{run}/artifacts/model/{name}",
                           data=content, auth=auth, verify=CA_FILE, timeout=30)
        assert put.status_code == 200, put.text

    def download(version: str, name: str, auth) -> requests.Response:
        return requests.get(f"{url}/model-versions/get-artifact", params={
            "name": "trudys-model", "version": version, "path": name}, auth=auth, verify=CA_FILE, timeout=30)

    private = post("experiments/create", {"name": "the-admins-secrets"}, ADMIN_AUTH).json()["experiment_id"]
    run = post("runs/create", {"experiment_id": private}, ADMIN_AUTH).json()["run"]["info"]["run_id"]
    upload(private, run, "secret.txt", b"the admin's secret", ADMIN_AUTH)
    own = post("experiments/create", {"name": "trudys-own"}, trudy).json()["experiment_id"]
    own_run = post("runs/create", {"experiment_id": own}, trudy).json()["run"]["info"]["run_id"]
    upload(own, own_run, "own.txt", b"trudy's model", trudy)
    assert post("registered-models/create", {"name": "trudys-model"}, trudy).status_code == 200
    for _ in range(2):  # her own run's files, by the location get-artifact serves them from
        created = post("model-versions/create", {"name": "trudys-model", "run_id": own_run,
                                                 "source": f"mlflow-artifacts:/{own}/{own_run}/artifacts/model"}, trudy)
        assert created.status_code == 200, created.text
    # version 2 as the server before the rule stored a store-URI source: the location as given
    elsewhere = f"s3://{s3.bucket}/users/{private}/{run}/artifacts/model"  # the admin's run's files
    with mariadb.admin(DATABASE) as connection, connection.cursor() as cursor:
        cursor.execute("UPDATE model_versions SET source = %s, storage_location = %s "
                       "WHERE name = 'trudys-model' AND version = 2", (elsewhere, elsewhere))
        assert cursor.rowcount == 1

    own_file = download("1", "own.txt", trudy)
    assert own_file.content == b"trudy's model", own_file.text
    for who in (trudy, ADMIN_AUTH):
        refused = download("2", "secret.txt", who)
        assert refused.status_code == 403, (refused.status_code, refused.text)
        assert b"the admin's secret" not in refused.content
        assert "outside the server's artifact root" in refused.json()["message"]


def test_the_endpoint_and_the_notebook_log_in_as_users_of_their_own_not_as_admins(replicas):
    """The serving VM's and the notebook's logins (stack: serving-login, notebook-login) are MLflow users the
    tracking server made: neither is an admin, the endpoint's may read the model it serves but not change it
    nor grant anything, and the notebook's works like anyone's."""
    first, second, url = replicas
    serving, notebook = (SERVING.username, SERVING.password), (NOTEBOOK.username, NOTEBOOK.password)

    def call(method: str, path: str, auth, version: str = "2.0", **body) -> requests.Response:
        return requests.request(method, f"{url}/api/{version}/mlflow/{path}", auth=auth, verify=CA_FILE, timeout=30,
                                **({"params": body} if method == "GET" else {"json": body}))

    for login in (serving, notebook):
        me = call("GET", "users/current", login)
        assert me.status_code == 200, me.text
        assert me.json()["user"]["username"] == login[0] and me.json()["user"]["is_admin"] is False
    listed = call("GET", "users/permissions/list", ADMIN_AUTH, "3.0", username=SERVING.username)
    assert listed.status_code == 200, listed.text
    own_grants = {(row["resource_type"], row["resource_pattern"], row["permission"])
                  for row in listed.json()["permissions"]}
    assert own_grants == {("registered_model", SERVED_MODEL, "READ")}, listed.text
    assert call("GET", "registered-models/get", serving, name=SERVED_MODEL).status_code == 200
    edited = call("PATCH", "registered-models/update", serving, name=SERVED_MODEL, description="mine now")
    assert edited.status_code == 403, edited.text
    experiment = call("POST", "experiments/create", ADMIN_AUTH, name="the-endpoint-may-not-grant").json()["experiment_id"]
    widened = call("POST", "users/permissions/grant", serving, "3.0", username=SERVING.username,
                   resource_type="experiment", resource_id=experiment, permission="MANAGE")
    assert widened.status_code == 403, widened.text
    assert call("POST", "users/create", serving, username="mallory", password="Mallory-Passw0rd-1").status_code == 403
    # the notebook's user logs runs in an experiment of its own, like any user
    own = call("POST", "experiments/create", notebook, name="from-the-notebook")
    assert own.status_code == 200, own.text
    assert call("POST", "runs/create", notebook, experiment_id=own.json()["experiment_id"]).status_code == 200


def test_every_write_leaves_an_audit_line_naming_the_person(replicas):
    """Each person by their own login, whichever replica answered; a header claiming another name is ignored."""
    first, second, url = replicas
    added = users(url, "add", "dora")
    assert added.returncode == 0, added.stderr
    logs = [first.service.log, second.service.log]
    since = [audit_trail.log_size(log) for log in logs]
    http = requests.Session()
    http.verify, http.trust_env = CA_FILE, False  # the session's CA, whatever REQUESTS_CA_BUNDLE says
    http.auth = ("dora", added.stdout.strip())
    http.headers["X-MLflow-OCI-User"] = ADMIN.username  # audit.USER_HEADER: only the shared login's proxy sets it
    expected = audit_trail.do_the_writes(http, url, "per-person")
    lines = sorted((line for log, start in zip(logs, since, strict=True) for line in audit_trail.audit_lines(log, start)),
                   key=lambda line: line["time"])
    audit_trail.check(lines, expected, {"user": "dora", "login": "mlflow"})
    assert users(url, "remove", "dora").returncode == 0
