"""A served model's code finds no credential in its environment: the serving supervisor downloads the
version itself, with the registry login, and the model server serves that local copy with a clean
environment. Driven as an attacker would: a registered model whose predict() returns everything it can see
of its process (environment, working directory, its ancestors' command lines), served by the real
supervisor with a real login, asked over HTTP.
"""
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from dataplane.stacks import CLIENT_ENV, RUNTIME
from orm_pack.local import processes
from orm_pack.local.ports import free_port
from orm_pack.local.services import ServingConfig, serving_argv, serving_env

pytestmark = pytest.mark.dataplane

HUNTER = '''
import json, os
import mlflow
from mlflow.pyfunc import PythonModel


class CredentialHunter(PythonModel):
    def predict(self, context, model_input, params=None):
        chain, pid = [], os.getpid()
        for _ in range(5):  # this process and its ancestors, as far as they can be read
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    chain.append([part.decode() for part in f.read().split(b"\\0") if part])
                with open(f"/proc/{pid}/stat") as f:
                    pid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError):
                break
        return [json.dumps({"env": dict(os.environ), "cwd": os.getcwd(), "chain": chain})]


mlflow.models.set_model(CredentialHunter())
'''

REGISTER = '''
import sys, mlflow
with mlflow.start_run():
    info = mlflow.pyfunc.log_model(name="model", python_model=sys.argv[1], registered_model_name=sys.argv[2])
print(info.registered_model_version)
'''
SENSITIVE = ("MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN",
             "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "OCI_RESOURCE_PRINCIPAL_VERSION")


@pytest.fixture(scope="module")
def hunter_uri(tracking_stack, tmp_path_factory) -> str:
    workdir = tmp_path_factory.mktemp("hunter")
    (workdir / "hunter.py").write_text(HUNTER)
    result = subprocess.run([sys.executable, "-c", REGISTER, str(workdir / "hunter.py"), "credential-hunter"],
                            env=tracking_stack.client_env(), cwd=workdir, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return f"models:/credential-hunter/{result.stdout.split()[-1]}"


def test_a_served_models_code_finds_no_login_uri_or_secret(tracker, tracking_stack, hunter_uri, tmp_path):
    port = free_port()
    env = serving_env(ServingConfig(port=port, tracking_uri=tracking_stack.url, credentials=tracking_stack.login,
                                    model_uri=hunter_uri, poll_seconds=1))
    env.update(CLIENT_ENV, AWS_SECRET_ACCESS_KEY="a-key-the-supervisor-holds", SERVING_MODELS_DIR=str(tmp_path / "models"))
    log = tmp_path / "supervisor.log"
    supervisor = tracker.start("hunter-serving", serving_argv(RUNTIME), env, log)
    try:
        processes.wait_ready(supervisor, f"http://127.0.0.1:{port}/health", 240, accept=(200,))
        answer = requests.post(f"http://127.0.0.1:{port}/invocations", json={"inputs": [[0]]}, timeout=60)
        assert answer.status_code == 200, answer.text
        found = json.loads(answer.json()["predictions"][0])
    finally:
        tracker.remember_tree(supervisor)
        tracker.stop(supervisor)
    assert set(SENSITIVE) & set(found["env"]) == set(), sorted(found["env"])
    secrets = (tracking_stack.login.password, "a-key-the-supervisor-holds")
    assert not [name for name, value in found["env"].items() if any(secret in value for secret in secrets)]
    assert set(found["env"]) <= {"PATH", "HOME", "PYTHONUNBUFFERED", "LANG", "LC_ALL", "TZ"} | _set_by_mlflow(found)
    # the model server was given the downloaded copy, not the registry URI it would fetch with a login
    serve = next(argv for argv in found["chain"] if "serve" in argv and "-m" in argv)
    served = Path(serve[serve.index("-m", serve.index("serve")) + 1])
    assert served.is_relative_to(tmp_path / "models") and not str(served).startswith("models:/")
    assert Path(found["cwd"]).is_relative_to(tmp_path / "models")
    time.sleep(0.5)  # the supervisor removes the copy when it stops its model server
    assert list((tmp_path / "models").iterdir()) == []


def _set_by_mlflow(found: dict) -> set:
    """What `mlflow models serve` adds for its workers: the shell it starts them through (SHLVL, PWD, _),
    the model's path and its own settings (__pyfunc_model_path__, _MLFLOW_*, MLFLOW_SCORING_*); names only,
    their values are checked above."""
    return {name for name in found["env"]
            if name in ("SHLVL", "PWD", "OLDPWD", "_") or name.startswith(("__pyfunc", "_MLFLOW_", "MLFLOW_SCORING_"))}
