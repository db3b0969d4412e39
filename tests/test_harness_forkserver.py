"""The doubles' warm start (harness/forkserver.py) changes nothing but time: the provider a launcher gets
from the fork server runs in the launcher's directory with its environment, plans what a cold start
plans, and ends when Terraform kills the launcher; without a server the launcher serves by itself."""
import os
import subprocess
import time
from pathlib import Path

import pytest

from harness import forkserver
from harness.mirror import mirror_dir

# What Terraform gives every provider process it starts (go-plugin's handshake for protocol 6).
CONFIG = Path(__file__).resolve().parent / "fixtures" / "harness-config"
PLUGIN_ENV = {"TF_PLUGIN_MAGIC_COOKIE": "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2",
              "PLUGIN_PROTOCOL_VERSIONS": "6"}


@pytest.fixture(scope="module")
def tf_config_dir():
    return CONFIG


def _oci_launcher() -> Path:
    return next(mirror_dir().glob("mirror/registry.terraform.io/oracle/oci/*/*/terraform-provider-oci_v*"))


def _start(tmp_path: Path, server_address: str) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, **PLUGIN_ENV, forkserver.ENV_VAR: server_address,
           "OCI_DOUBLE_TRACE": str(tmp_path / "trace.jsonl")}
    launcher = subprocess.Popen([str(_oci_launcher())], cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True)
    handshake = launcher.stdout.readline()
    assert handshake.startswith("1|6|unix|"), handshake
    return launcher, handshake


def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _ended(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_forked_provider_is_the_launchers_process_and_ends_with_it(tmp_path):
    address, server = forkserver.server()
    launcher, _ = _start(tmp_path, address)
    try:
        provider = [pid for pid in _children(server.pid) if Path(f"/proc/{pid}/cwd").resolve() == tmp_path.resolve()]
        assert len(provider) == 1, "the provider is not a child of the fork server in the launcher's directory"
        assert (tmp_path / "trace.jsonl").exists(), "the provider did not get the launcher's environment"
    finally:
        launcher.kill()
        launcher.wait()
    deadline = time.monotonic() + 10
    while not _ended(provider[0]):
        assert time.monotonic() < deadline, "the provider outlived the launcher Terraform killed"
        time.sleep(0.05)


def test_without_a_server_the_launcher_serves_by_itself(tmp_path):
    launcher, _ = _start(tmp_path, str(tmp_path / "no-server-here"))
    try:
        assert (tmp_path / "trace.jsonl").exists()
        assert Path(f"/proc/{launcher.pid}/cwd").resolve() == tmp_path.resolve()
        assert not _children(launcher.pid) or all(
            "python" not in Path(f"/proc/{child}/comm").read_text() for child in _children(launcher.pid))
    finally:
        launcher.kill()
        launcher.wait()


@pytest.mark.terraform
def test_a_warm_start_plans_what_a_cold_start_plans(fresh_config):
    tf = fresh_config()
    warm = tf.plan()
    tf.env[forkserver.ENV_VAR] = str(tf.workdir / "no-server-here")
    cold = tf.plan()
    assert warm["resource_changes"] == cold["resource_changes"]
    assert len(warm["resource_changes"]) > 3
