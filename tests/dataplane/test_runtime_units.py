"""The pieces of the runtime that decide things without a server: legacy request translation, the
backend switch used during reloads, and the settings checks of the supervisor and init_db."""
import importlib.util
import json
import os
import re
import threading
from pathlib import Path

import pytest

from harness.tools import missing

DOCKER = Path(__file__).resolve().parents[2] / "docker"


def load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    import sys

    sys.modules[path.stem] = module  # supervisor imports legacy_adapter by name
    spec.loader.exec_module(module)
    return module


adapter = load(DOCKER / "serving" / "legacy_adapter.py")
supervisor = load(DOCKER / "serving" / "supervisor.py")
launcher = supervisor.launcher  # as the supervisor imported it
init_db = load(DOCKER / "tracking" / "init_db.py")
served_model = load(DOCKER / "tracking" / "served_model.py")
service_users = load(DOCKER / "tracking" / "service_users.py")

SPLIT = {"columns": ["a", "b"], "data": [[1, 2]]}
RECORDS = [{"a": 1, "b": 2}]


@pytest.mark.parametrize("content_type, body, expected", [
    ("application/json; format=pandas-split", SPLIT, {"dataframe_split": SPLIT}),
    ("application/json;format=pandas-records", RECORDS, {"dataframe_records": RECORDS}),
    ("application/json", SPLIT, {"dataframe_split": SPLIT}),
    ("application/json", RECORDS, {"dataframe_records": RECORDS}),
    ("Application/JSON; charset=utf-8; format=pandas-split", SPLIT, {"dataframe_split": SPLIT}),
])
def test_legacy_bodies_become_current_ones(content_type, body, expected):
    new_type, new_body, legacy = adapter.translate_request(content_type, json.dumps(body).encode())
    assert (json.loads(new_body), legacy) == (expected, True)
    assert new_type.startswith("application/json") and "format" not in new_type


@pytest.mark.parametrize("content_type, body", [
    ("application/json", json.dumps({"dataframe_split": SPLIT}).encode()),
    ("application/json", json.dumps({"inputs": [[1, 2]]}).encode()),
    ("text/csv", b"a,b\n1,2\n"),
])
def test_current_bodies_pass_untouched(content_type, body):
    assert adapter.translate_request(content_type, body) == (content_type, body, False)


@pytest.mark.parametrize("content_type, body, message", [
    ("application/json; format=pandas-split", RECORDS, 'needs {"columns": [...], "data": [[...], ...]}'),
    ("application/json; format=pandas-records", SPLIT, "needs a list of records"),
    ("application/json; format=tf-instances", SPLIT, "format=tf-instances is not supported"),
])
def test_inconsistent_legacy_requests_are_explained(content_type, body, message):
    with pytest.raises(adapter.LegacyRequestError, match=message.replace("[", r"\[").replace("(", r"\(")):
        adapter.translate_request(content_type, json.dumps(body).encode())


@pytest.mark.parametrize("body, message", [
    (b"not json", "the body is not valid JSON"),
    (b"[" * 100_000, "nested too deeply"),
])
def test_json_that_cannot_be_parsed_is_a_client_error(body, message):
    with pytest.raises(adapter.LegacyRequestError, match=message):
        adapter.translate_request("application/json", body)


def test_legacy_answers_are_bare_prediction_lists():
    assert json.loads(adapter.translate_response(b'{"predictions": [5.5, 6.1]}')) == [5.5, 6.1]
    assert adapter.translate_response(b'{"predictions": [1], "extra": 1}') == b'{"predictions": [1], "extra": 1}'


def test_switch_waits_for_in_flight_requests_of_the_old_backend():
    switch = adapter.BackendSwitch()
    old = adapter.Backend(port=1, model_uri="models:/m/1")
    switch.switch_to(old)
    held = switch.acquire()
    previous = switch.switch_to(adapter.Backend(port=2, model_uri="models:/m/2"))
    assert previous is old and switch.acquire().model_uri == "models:/m/2"
    assert not adapter.BackendSwitch.wait_idle(old, timeout=0.1)
    threading.Timer(0.2, adapter.BackendSwitch.release, [held]).start()
    assert adapter.BackendSwitch.wait_idle(old, timeout=5)


@pytest.mark.parametrize("env, message", [
    ({"MLFLOW_TRACKING_URI": "https://x"}, "set SERVING_MODEL_NAME"),
    ({"SERVING_MODEL_NAME": "wine"}, "set MLFLOW_TRACKING_URI"),
    ({"MLFLOW_TRACKING_URI": "https://x", "SERVING_MODEL_NAME": "m", "SERVING_PORT": "http"},
     "SERVING_PORT must be a number"),
    ({"MLFLOW_TRACKING_URI": "https://x", "SERVING_MODEL_NAME": "m", "SERVING_POLL_SECONDS": "0"},
     "SERVING_POLL_SECONDS must be at least 0.2"),
])
def test_supervisor_settings_say_what_to_set(env, message):
    with pytest.raises(supervisor.SettingsError, match=message):
        supervisor.read_settings(env)


def test_supervisor_follows_the_alias_unless_a_uri_is_fixed():
    env = {"MLFLOW_TRACKING_URI": "https://x", "SERVING_MODEL_NAME": "wine"}
    assert supervisor.read_settings(env).target == "models:/wine@champion"
    assert supervisor.read_settings(dict(env, SERVING_MODEL_URI="models:/wine/3")).target == "models:/wine/3"


@pytest.mark.parametrize("users, message", [
    (("0", "10002"), "may not be root or in group 0"),
    (("10001", "10001"), "must be two users with groups of their own"),
    (("10001", "no-such-user-here"), "no user named 'no-such-user-here'"),
])
def test_the_model_servers_user_is_another_user_than_the_supervisors(monkeypatch, users, message):
    monkeypatch.setattr(supervisor.os, "geteuid", lambda: 0)
    env = {"SERVING_SUPERVISOR_USER": users[0], "SERVING_MODEL_USER": users[1]}
    with pytest.raises(supervisor.SettingsError, match=re.escape(message)):
        supervisor.separate_users(env)


def test_the_users_apply_only_to_a_root_supervisor(monkeypatch):
    env = {"SERVING_SUPERVISOR_USER": "10001", "SERVING_MODEL_USER": "10002"}
    monkeypatch.setattr(supervisor.os, "geteuid", lambda: 0)
    own, model = supervisor.separate_users(env)
    assert (own.uid, own.gid, model.uid, model.gid) == (10001, 10001, 10002, 10002)
    assert supervisor.separate_users({}) is None  # root without them: the model server runs as root (a warning)
    monkeypatch.setattr(supervisor.os, "geteuid", lambda: 1000)
    assert supervisor.separate_users(env) is None  # a laptop: the clean environment only


def test_the_root_launcher_does_only_what_it_is_for(tmp_path):
    """The launcher answers start, poll and stop alone; it takes no command, refuses what is not an absolute
    path and a port, enters the model's HOME as the model's user (not as root), and ends with its socket."""
    if os.geteuid() != 0:
        missing("root (the launcher)", "run the tests as root, as CI does")
    runner = launcher.launch(launcher.Account("10002", 10002, 10002, None))
    try:
        with pytest.raises(OSError, match="unknown request 'exec'"):
            runner._call(op="exec", argv=["sh", "-c", "id"])
        with pytest.raises(OSError, match="an absolute model_dir and home, and a port"):
            runner.start(Path("relative"), 5000, tmp_path)
        with pytest.raises(OSError, match="an absolute model_dir and home, and a port"):
            runner.start(tmp_path, 80, tmp_path)
        with pytest.raises(OSError, match="no model server 1"):
            runner.returncode(1)
        private = tmp_path / "private"  # root enters it; uid 10002 may not
        private.mkdir(mode=0o700)
        with pytest.raises(OSError, match="preexec_fn"):
            runner.start(tmp_path, 5000, private)
    finally:
        runner.close()
    with pytest.raises(ChildProcessError):
        os.waitpid(runner.launcher_pid, os.WNOHANG)  # reaped: it exited when the supervisor's end closed


@pytest.mark.parametrize("env, message", [
    ({}, "set MYSQL_ADMIN_USER, MYSQL_ADMIN_PASSWORD, MLFLOW_DB_HOST, MLFLOW_DB_USER, MLFLOW_DB_PASSWORD"),
    ({"MLFLOW_DB_NAME": "ml-flow"}, "MLFLOW_DB_NAME must be 1-32 letters, digits or underscores"),
    ({"MLFLOW_DB_USER": "x'; DROP"}, "MLFLOW_DB_USER must be 1-32 letters"),
    ({"MLFLOW_DB_PORT": "3306a"}, "MLFLOW_DB_PORT must be a number"),
])
def test_init_db_settings_say_what_to_set(env, message):
    complete = {"MYSQL_ADMIN_USER": "admin", "MYSQL_ADMIN_PASSWORD": "pw", "MLFLOW_DB_HOST": "db",
                "MLFLOW_DB_USER": "mlflow", "MLFLOW_DB_PASSWORD": "pw"}
    with pytest.raises(init_db.SettingsError, match=message):
        init_db.read_settings(dict(complete, **env) if env else {})


def test_primary_key_swap_is_sent_as_one_statement():
    """MLflow's migrations drop a primary key and add the new one in two statements; we send one."""
    merger = init_db.PrimaryKeySwapMerger()
    assert merger.rewrite("ALTER TABLE metrics DROP PRIMARY KEY") == "DO 0"
    assert merger.rewrite("ALTER TABLE metrics ADD CONSTRAINT metric_pk PRIMARY KEY (`key`, step)") == \
        "ALTER TABLE metrics DROP PRIMARY KEY, ADD CONSTRAINT metric_pk PRIMARY KEY (`key`, step)"
    assert merger.rewrite("SELECT 1") == "SELECT 1"
    merger.rewrite("ALTER TABLE runs DROP PRIMARY KEY")
    with pytest.raises(RuntimeError, match="dropped the primary key of runs without re-adding it"):
        merger.rewrite("INSERT INTO runs VALUES (1)")


def test_the_admin_connection_asks_for_tls_and_verifies_the_server_unless_told_off(tmp_path):
    import ssl

    from harness.certificates import Authority

    ca_file = Authority("the DB system's CA").write(tmp_path / "db-ca.pem")
    for ca in (None, ca_file):  # the system's trust store, or MLFLOW_DB_SSL_CA
        context = init_db.tls_options({"tls": "required", "ssl_ca": ca})
        assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, True)
    assert [c["subject"] for c in init_db.tls_options({"tls": "required", "ssl_ca": ca_file}).get_ca_certs()] == [
        ((("commonName", "the DB system's CA"),),)]
    assert init_db.tls_options({"tls": "off", "ssl_ca": None}) is None
    with pytest.raises(init_db.SettingsError, match="MLFLOW_DB_TLS must be required or off"):
        init_db.read_settings({"MYSQL_ADMIN_USER": "a", "MYSQL_ADMIN_PASSWORD": "b", "MLFLOW_DB_HOST": "h",
                               "MLFLOW_DB_USER": "u", "MLFLOW_DB_PASSWORD": "p", "MLFLOW_DB_TLS": "maybe"})


@pytest.mark.parametrize("code, message, says", [
    (20, "unable to get local issuer certificate", "it was not issued by that CA -> set MLFLOW_DB_SSL_CA to the CA"),
    (10, "certificate has expired", "it has expired -> renew the DB system's certificate"),
    (64, "IP address mismatch, certificate is not valid for '10.0.1.5'.",
     "it does not name 10.0.1.5, the address in MLFLOW_DB_HOST -> give the DB system a certificate for that address"),
    (26, "unsuitable certificate purpose", "unsuitable certificate purpose"),
])
def test_a_mysql_certificate_that_does_not_verify_is_named_in_one_line(code, message, says):
    import ssl

    import pymysql

    error = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: {message}")
    error.verify_code, error.verify_message = code, message
    wrapped = pymysql.err.OperationalError(2003, f"Can't connect to MySQL server on '10.0.1.5' ({error})")
    wrapped.original_exception = error  # as PyMySQL keeps it
    assert init_db.certificate_problem(wrapped) is error
    assert init_db.certificate_problem(pymysql.err.OperationalError(2003, "Connection refused")) is None
    line = init_db.certificate_refusal(error, "10.0.1.5", 3306, "/etc/pki/nginx/mlflow-ca.pem")
    assert line.startswith("MySQL at 10.0.1.5:3306 shows a certificate that does not verify with the CA in "
                           "/etc/pki/nginx/mlflow-ca.pem (MLFLOW_DB_SSL_CA): ")
    assert says in line
    assert "\n" not in line


def test_the_served_model_is_reserved_once_and_kept(tmp_path):
    """The entrypoint's first start creates the model endpoint's registered model; a later start (or a
    replica) finds it and changes nothing."""
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert served_model.reserve(uri, "wine-quality") is True
    assert served_model.reserve(uri, "wine-quality") is False
    model = SqlAlchemyStore(uri).get_registered_model("wine-quality")
    assert model.description == served_model.DESCRIPTION and model.latest_versions == []


def test_the_clients_users_take_their_current_password_at_every_start(tmp_path, monkeypatch, capsys):
    """The model endpoint's and the notebook's users: made non-admins with the secret's current version at
    each start, so a rotated secret applies and an admin flag given by hand does not last; the admin's
    name is refused for either."""
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

    uri = f"sqlite:///{tmp_path / 'users.db'}"
    env = {"MLFLOW_AUTH_DATABASE_URI": uri, "MLFLOW_AUTH_ADMIN_USERNAME": "mlflow",
           "MLFLOW_SERVED_MODEL_NAME": "wine-quality",
           "MLFLOW_SERVING_USERNAME": "mlflow-serving", "MLFLOW_SERVING_PASSWORD": "Serving-first-Passw0rd",
           "MLFLOW_NOTEBOOK_USERNAME": "mlflow-notebook", "MLFLOW_NOTEBOOK_PASSWORD": "Notebook-first-Passw0rd"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert service_users.main() == 0
    store = SqlAlchemyStore()
    store.init_db(uri)
    assert store.authenticate_user("mlflow-serving", "Serving-first-Passw0rd")
    store.update_user("mlflow-notebook", is_admin=True)  # someone made it an admin meanwhile
    monkeypatch.setenv("MLFLOW_SERVING_PASSWORD", "Serving-rotated-Passw0rd")
    assert service_users.main() == 0
    assert store.authenticate_user("mlflow-serving", "Serving-rotated-Passw0rd")
    assert not store.authenticate_user("mlflow-serving", "Serving-first-Passw0rd")
    assert not store.get_user("mlflow-notebook").is_admin and not store.get_user("mlflow-serving").is_admin
    grants = store.list_registered_model_permissions("mlflow-serving")
    assert [(g.name, g.permission) for g in grants] == [("wine-quality", "READ")]
    assert store.list_registered_model_permissions("mlflow-notebook") == []
    assert "Passw0rd" not in capsys.readouterr().err  # no password in the log
    monkeypatch.setenv("MLFLOW_NOTEBOOK_USERNAME", "MLflow")
    assert service_users.main() == 2
    assert "must not be the admin" in capsys.readouterr().err
