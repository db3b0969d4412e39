"""`orm-pack local up` as a test's MLflow: started as a user starts it, stopped (and checked gone) after."""
import contextlib
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from dataplane.stacks import CLIENT_ENV, RUNTIME
from harness import needs
from orm_pack.local.ports import free_port
from orm_pack.local.services import python_env

MODEL_HEADER = "X-MLflow-Model-URI"


@dataclass(frozen=True)
class LocalMlflow:
    tracking_url: str
    serving_url: str
    username: str
    password: str
    state_dir: Path
    tracking_port: int
    direct_tracking_url: str     # MLflow itself, behind the proxy

    @property
    def ca_file(self) -> Path:
        """local up's CA: what clients verify its certificate with"""
        return self.state_dir / "ca.pem"

    def client_env(self) -> dict:
        """A client's settings, verifying the proxy's certificate with local up's CA."""
        settings = {k: v for k, v in CLIENT_ENV.items() if k != "MLFLOW_TRACKING_SERVER_CERT_PATH"}
        env = {k: v for k, v in python_env().items() if k not in ("MLFLOW_TRACKING_INSECURE_TLS",
                                                                   "MLFLOW_TRACKING_SERVER_CERT_PATH")}
        return dict(env, **settings, MLFLOW_TRACKING_SERVER_CERT_PATH=str(self.ca_file),
                    MLFLOW_TRACKING_URI=self.tracking_url, MLFLOW_TRACKING_USERNAME=self.username,
                    MLFLOW_TRACKING_PASSWORD=self.password)

    def auth(self) -> tuple[str, str]:
        return self.username, self.password

    def train(self, *args: str) -> dict:
        """examples/wine/train.py as a notebook user runs it; its key=value output."""
        result = subprocess.run([sys.executable, str(RUNTIME.wine_example), *args], env=self.client_env(),
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"train.py failed:\n{result.stdout}\n{result.stderr[-3000:]}"
        return dict(pair.split("=", 1) for line in result.stdout.splitlines() for pair in line.split() if "=" in pair)

    def wait_serving(self, model_uri: str, timeout: float = 240) -> None:
        deadline, last = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            last = requests.get(f"{self.serving_url}/ping", auth=self.auth(), verify=str(self.ca_file), timeout=30)
            if last.headers.get(MODEL_HEADER) == model_uri:
                return
            time.sleep(1)
        log = (self.state_dir / "logs" / "serving.log").read_text()[-3000:]
        raise AssertionError(f"{model_uri} not served after {timeout}s (last {last.status_code}: {last.text})\n{log}")


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orm_pack.cli", *args], env=python_env(), capture_output=True,
                          text=True, timeout=timeout)


@contextlib.contextmanager
def local_mlflow(state_dir: Path, *extra: str):
    needs.used("dataplane")
    up = cli("local", "up", "--state-dir", str(state_dir), "--port", str(free_port()), "--serving-port",
             str(free_port()), "--poll-seconds", "1", "--json", *extra)
    assert up.returncode == 0, up.stdout + up.stderr
    started = json.loads(up.stdout)
    direct = next(s["url"] for s in started["services"] if s["name"] == "tracking")
    try:
        yield LocalMlflow(started["tracking_url"], started["serving_url"], started["username"], started["password"],
                          state_dir, int(started["tracking_url"].rsplit(":", 1)[1]), direct)
    finally:
        down = cli("local", "down", "--state-dir", str(state_dir))
        assert down.returncode == 0, down.stderr
