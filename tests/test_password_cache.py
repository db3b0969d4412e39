"""A password is checked once, then trusted for at most MLFLOW_OCI_PASSWORD_CACHE_SECONDS (≤ 60): the settings
file the entrypoint writes for MLflow's basic-auth app (docker/lib/mlflow_oci/auth_ini.py), and MLflow's
credential cache as that file sets it up, in a process of its own with a SQLite users' database (no server).
On real replicas, a password changed through one is refused by the other within the deadline:
tests/dataplane/test_mlflow_users.py."""
import configparser
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[1] / "docker" / "lib"
sys.path.insert(0, str(LIB))
from mlflow_oci import auth_ini  # noqa: E402
from mlflow_oci.signouts import MAX_CHECK_SECONDS  # noqa: E402

URI = {"MLFLOW_AUTH_DATABASE_URI": "mysql+pymysql://u:p%40ss@db:3306/mlflow_auth"}


def ini(environ: dict, mode: str = "mlflow") -> configparser.SectionProxy:
    parser = configparser.ConfigParser()
    parser.read_string(auth_ini.ini_text("READ", mode, environ))
    return parser["mlflow"]


def test_the_default_trusts_a_checked_password_within_the_products_deadline():
    assert 0 < auth_ini.password_cache_seconds({}) <= MAX_CHECK_SECONDS == 60
    written = ini(URI)
    assert int(written["auth_cache_ttl_seconds"]) == auth_ini.PASSWORD_CACHE_SECONDS == 30
    assert int(written["auth_cache_max_size"]) == 10_000
    assert written["database_uri"] == URI["MLFLOW_AUTH_DATABASE_URI"]  # the %-escape survives configparser
    assert written["authorization_function"] == "mlflow_oci.artifact_rules:authenticate_basic"
    assert ini(URI, "oidc")["authorization_function"] == "mlflow_oci.oidc_auth:authenticate"


@pytest.mark.parametrize("value, seconds", [("0", 0), ("1", 1), (" 60 ", 60)])
def test_the_setting_takes_0_to_60_seconds(value, seconds):
    assert int(ini(dict(URI, MLFLOW_OCI_PASSWORD_CACHE_SECONDS=value))["auth_cache_ttl_seconds"]) == seconds


@pytest.mark.parametrize("value", ["61", "3600", "-1", "30s", "", "1.5", "²"])
def test_a_longer_or_malformed_setting_is_refused(value):
    with pytest.raises(auth_ini.SettingsError, match="MLFLOW_OCI_PASSWORD_CACHE_SECONDS must be an integer between "
                                                     "0 and 60"):
        auth_ini.ini_text("READ", "mlflow", dict(URI, MLFLOW_OCI_PASSWORD_CACHE_SECONDS=value))


def test_the_command_refuses_at_start_and_writes_a_private_file(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(LIB), **URI)
    command = [sys.executable, "-m", "mlflow_oci.auth_ini"]
    refused = subprocess.run([*command, "check"], env=dict(env, MLFLOW_OCI_PASSWORD_CACHE_SECONDS="120"),
                             capture_output=True, text=True, timeout=30)
    assert refused.returncode == 3 and "between 0 and 60" in refused.stderr and "'120'" in refused.stderr
    checked = subprocess.run([*command, "check"], env=env, capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0 and "for 30 s" in checked.stdout, checked
    path = tmp_path / "auth.ini"
    written = subprocess.run([*command, "write", str(path), "READ", "mlflow"], env=env, capture_output=True,
                             text=True, timeout=30)
    assert written.returncode == 0, written.stderr
    assert oct(path.stat().st_mode & 0o777) == "0o600" and "auth_cache_ttl_seconds = 30" in path.read_text()


# MLflow's auth module in a process of its own (it reads its settings file once, at import), asked through the
# authorization function the entrypoint names, as the server asks it. It prints one JSON object.
CHILD = textwrap.dedent("""
    import base64, json, sys, time
    import mlflow.server.auth as auth
    from flask import Flask, Response
    from mlflow_oci.artifact_rules import authenticate_basic

    auth.store.init_db(auth.auth_config.database_uri)
    USER, PASSWORD, NEW = "reader", "Reader-Passw0rd-" + "x7Q2", "Changed-Passw0rd-" + "k9Z4"
    auth.store.create_user(USER, PASSWORD)
    app = Flask(__name__)

    def accepted(username, password):
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        with app.test_request_context("/api/2.0/mlflow/experiments/get",
                                      headers={"Authorization": "Basic " + token}):
            return not isinstance(authenticate_basic(), Response)

    cache = auth._USER_AUTH_CACHE
    out = {"ttl": cache.ttl, "maxsize": cache.maxsize}
    out["wrong"] = accepted(USER, "not-" + PASSWORD)
    out["after_wrong"] = len(cache)
    began = time.monotonic()
    out["right"] = accepted(USER, PASSWORD)
    cached_by = time.monotonic()
    out["after_right"] = len(cache)
    # Where the password could hide: the keys, the values, anything they hold, as text and as bytes.
    held = repr(list(cache.items())) + repr([vars(value) for value in cache.values()])
    keys = b"".join(part if isinstance(part, bytes) else part.encode() for key in cache.keys() for part in key)
    out["password_held"] = PASSWORD in held or PASSWORD.encode() in keys or PASSWORD.encode().hex() in held
    out["key_parts"] = [type(part).__name__ for part in next(iter(cache.keys()))]
    for n in range(5):  # guesses neither get in nor push the good entry out
        assert not accepted(USER, f"guess-{n}") and not accepted(f"nobody-{n}", PASSWORD)
    out["after_spray"] = len(cache) if time.monotonic() - began < cache.ttl else "too late to tell"
    # Another replica changes the password: this process is not told (the database only).
    auth.store.update_user(USER, password=NEW)
    old_accepted, asked_by = accepted(USER, PASSWORD), time.monotonic()
    out["old_within_ttl"] = old_accepted if asked_by - began < cache.ttl else "too late to tell"
    time.sleep(max(0.0, cached_by + cache.ttl + 0.2 - time.monotonic()))
    out["old_after_ttl"] = accepted(USER, PASSWORD)
    out["new"] = accepted(USER, NEW)
    print(json.dumps(out))
""")


def test_mlflows_credential_cache_as_configured_keeps_checks_not_passwords(tmp_path):
    environ = {"MLFLOW_AUTH_DATABASE_URI": f"sqlite:///{tmp_path / 'users.db'}", "MLFLOW_OCI_PASSWORD_CACHE_SECONDS": "3"}
    (tmp_path / "auth.ini").write_text(auth_ini.ini_text("READ", "mlflow", environ))
    env = dict(os.environ, PYTHONPATH=str(LIB), MLFLOW_AUTH_CONFIG_PATH=str(tmp_path / "auth.ini"),
               MLFLOW_AUTH_ADMIN_PASSWORD="Admin-Passw0rd-2026-unused")
    result = subprocess.run([sys.executable, "-c", CHILD], env=env, cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert (seen["ttl"], seen["maxsize"]) == (3, 10_000)   # the bound: entries and seconds
    assert seen["wrong"] is False and seen["after_wrong"] == 0  # a wrong password is not kept
    assert seen["right"] is True and seen["after_right"] == 1
    assert seen["password_held"] is False and seen["key_parts"] == ["str", "bytes"]  # user name, HMAC digest
    assert seen["after_spray"] in (1, "too late to tell")
    assert seen["old_within_ttl"] in (True, "too late to tell")  # served from the cache, not the database
    assert seen["old_after_ttl"] is False and seen["new"] is True  # the deadline
