"""`orm-pack connect` prints what an MLflow client needs, for bash (eval) or Python: the URL, the CA it verifies
with (MLFLOW_TRACKING_SERVER_CERT_PATH), the user, and the password read from where it is kept, never printed
unless asked. `--local` reads the running `local up` (here a state directory whose recorded proxy is this
test's own process); `--insecure` is allowed only with a warning. The end-to-end run against a real local
MLflow is in tests/dataplane/test_doctor.py."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.certificates import Authority
from orm_pack.local import processes
from orm_pack.local.services import python_env
from orm_pack.local.state import ServiceRecord, StateDir

PASSWORD = "a-generated-Password_123"
CLIENT = ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_SERVER_CERT_PATH", "MLFLOW_TRACKING_USERNAME",
          "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_INSECURE_TLS")


@pytest.fixture
def state(tmp_path):
    state = StateDir(tmp_path / "state dir")  # a space: the exports are quoted
    state.create()
    state.credentials_file.write_text(json.dumps({"username": "mlflow", "password": PASSWORD}))
    state.ca_file.write_text("-----BEGIN CERTIFICATE-----\n")
    me = os.getpid()
    state.save_services([ServiceRecord("proxy", me, processes.start_time(me), "proxy.log", "https://127.0.0.1:18443")])
    return state


def _env() -> dict:
    return {k: v for k, v in python_env().items() if not k.startswith("MLFLOW_")}


def connect(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orm_pack.cli", "connect", *args], env=_env(), capture_output=True,
                          text=True, timeout=60)


def _evaluated_in_bash(exports: str) -> dict:
    script = exports + "\n" + "".join(f'printf "%s=%s\\n" {name} "${{{name}-unset}}"\n' for name in CLIENT)
    result = subprocess.run(["bash", "-e", "-c", script], env=_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return dict(line.split("=", 1) for line in result.stdout.splitlines())


def _run_as_python(snippet: str) -> dict:
    probe = snippet + f"\nimport json, os\nprint(json.dumps({{k: os.environ.get(k, 'unset') for k in {CLIENT!r}}}))\n"
    result = subprocess.run([sys.executable, "-c", probe], env=_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_local_exports_set_everything_without_printing_the_password(state):
    result = connect("--local", "--state-dir", str(state.root))
    assert result.returncode == 0, result.stderr
    assert PASSWORD not in result.stdout and "INSECURE" not in result.stdout and result.stderr == ""
    assert _evaluated_in_bash(result.stdout) == {
        "MLFLOW_TRACKING_URI": "https://127.0.0.1:18443", "MLFLOW_TRACKING_SERVER_CERT_PATH": str(state.ca_file),
        "MLFLOW_TRACKING_USERNAME": "mlflow", "MLFLOW_TRACKING_PASSWORD": PASSWORD,
        "MLFLOW_TRACKING_INSECURE_TLS": "unset"}


def test_local_python_sets_the_same(state):
    result = connect("--local", "--state-dir", str(state.root), "--python")
    assert result.returncode == 0 and PASSWORD not in result.stdout, result
    assert _run_as_python(result.stdout) == {
        "MLFLOW_TRACKING_URI": "https://127.0.0.1:18443", "MLFLOW_TRACKING_SERVER_CERT_PATH": str(state.ca_file),
        "MLFLOW_TRACKING_USERNAME": "mlflow", "MLFLOW_TRACKING_PASSWORD": PASSWORD,
        "MLFLOW_TRACKING_INSECURE_TLS": "unset"}


def test_show_password_prints_it(state):
    for flag in ((), ("--python",)):
        result = connect("--local", "--state-dir", str(state.root), "--show-password", *flag)
        assert result.returncode == 0 and PASSWORD in result.stdout, result


def test_insecure_turns_verification_off_only_with_a_warning(state):
    result = connect("--local", "--state-dir", str(state.root), "--insecure")
    assert result.returncode == 0, result.stderr
    assert "WARNING: --insecure: the server's certificate is not verified" in result.stderr
    exported = _evaluated_in_bash(result.stdout)
    assert exported["MLFLOW_TRACKING_INSECURE_TLS"] == "true"
    assert exported["MLFLOW_TRACKING_SERVER_CERT_PATH"] == "unset"


def test_local_when_nothing_runs(tmp_path):
    result = connect("--local", "--state-dir", str(tmp_path))
    assert result.returncode == 4 and "orm-pack local is not running from" in result.stderr


def test_a_deployment_needs_its_ca_and_never_gets_a_password_printed(state, tmp_path):
    ca = Path(Authority("deployment CA").write(tmp_path / "deployment-ca.pem"))
    result = connect("--url", "https://203.0.113.7/", "--ca-file", str(ca), "--username", "alice")
    assert result.returncode == 0, result.stderr
    exported = _evaluated_in_bash(result.stdout)
    assert (exported["MLFLOW_TRACKING_URI"], exported["MLFLOW_TRACKING_SERVER_CERT_PATH"]) == (
        "https://203.0.113.7", str(ca))
    assert exported["MLFLOW_TRACKING_USERNAME"] == "alice" and exported["MLFLOW_TRACKING_PASSWORD"] == "unset"
    assert "mlflow_password_command" in result.stdout
    python = connect("--url", "https://203.0.113.7", "--ca-file", str(ca), "--python")
    assert _run_as_python(python.stdout)["MLFLOW_TRACKING_SERVER_CERT_PATH"] == str(ca)
    without = connect("--url", "https://203.0.113.7")
    assert without.returncode == 2 and "--ca-file" in without.stderr
    shown = connect("--url", "https://203.0.113.7", "--ca-file", str(ca), "--show-password")
    assert shown.returncode == 2 and "--show-password goes with --local" in shown.stderr
