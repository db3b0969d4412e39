"""`mlflow-upgrade` on the tracking VM, as orm-pack upgrade runs it through Run Command
(`sudo /usr/local/sbin/mlflow-upgrade plan VERSION | status`): run natively with the files cloud-init writes
(taken from the plan's user_data), a podman that records its calls (the image's own entrypoint stood in by a
scripted plan, `--entrypoint python3` by ocifakes/podman.py), the version's lock served as Object Storage
would at its pre-authenticated request's path, and a systemctl and journalctl that answer as the VM's do.
A VERSION that is not, character for character, one this release runs is refused before anything runs."""
import json
import os
import subprocess
from functools import partial
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from ocifakes import podman as native_podman

from harness import loopback, static

from .conftest import REPO, instance_user_data

pytestmark = pytest.mark.terraform

RELEASE = (REPO / "VERSION").read_text().strip()
TRACKING = 'oci_core_instance.vm["tracking"]'
PLAN = {"database": "mlflow", "from_revision": "b7e2c1a4d9f3", "from_mlflow": "3.16.1", "to_revision": "dc11669786a5",
        "to_mlflow": "3.17.2", "steps": [], "problems": [], "seconds": 0.4, "refused": False}
PODMAN = """#!/bin/bash
echo "podman $*" >> "{state}/calls.log"
case $1 in
  image) [[ $2 == exists && -e "{state}/have-image" ]]; exit ;;
  pull) [[ -e "{state}/registry-up" ]]; exit ;;
  tag | build) exit 0 ;;
  run)
    [[ " $* " == *" --entrypoint "* ]] && exec "{state}/podman-native" "$@"
    cat "{state}/plan.json"
    echo "tracking-entrypoint: waiting for the database" >&2
    exit "$(cat "{state}/plan.exit")" ;;
esac
exit 1
"""
SYSTEMCTL = '#!/bin/bash\necho "systemctl $*" >> "{state}/calls.log"\n[[ $1 == is-active ]] && echo active\nexit 0\n'
JOURNALCTL = '#!/bin/bash\necho "journalctl $*" >> "{state}/calls.log"\necho "2026-12-07T00:00:00+0000 vm mlflow[1]: started"\n'


@pytest.fixture
def vm(deployed, tmp_path):
    """The tracking VM's files as cloud-init writes them, under tmp_path/vm; stand-ins on PATH."""
    encoded = instance_user_data(deployed("default").replan)[TRACKING]
    root, state, bin_dir = tmp_path / "vm", tmp_path / "state", tmp_path / "bin"
    for entry in yaml.safe_load(static.decode_user_data(encoded))["write_files"]:
        target = root / entry["path"].lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(entry["content"])
    (root / "opt/mlflow/src/docker").mkdir(parents=True)
    (root / "opt/mlflow/src/docker/Dockerfile-tracking").write_bytes((REPO / "docker/Dockerfile-tracking").read_bytes())
    (root / "var/lib/mlflow/tls").mkdir(parents=True)
    (root / "var/log").mkdir(parents=True)
    state.mkdir()
    bin_dir.mkdir()
    for name, text in (("podman", PODMAN), ("systemctl", SYSTEMCTL), ("journalctl", JOURNALCTL)):
        (bin_dir / name).write_text(text.format(state=state))
        (bin_dir / name).chmod(0o755)
    native_podman.write(state / "podman-native", state / "native.log")
    (state / "plan.json").write_text(json.dumps(PLAN, indent=1) + "\n")
    (state / "plan.exit").write_text("0")
    env = dict(os.environ, MLFLOW_BOOTSTRAP_ROOT=str(root), MLFLOW_UPGRADE_RETRY_SECONDS="0",
               PATH=f"{bin_dir}:{os.environ['PATH']}")
    return root, state, env


def _run(root: Path, env: dict, *args) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(root / "usr/local/sbin/mlflow-upgrade"), *args], env=env,
                          capture_output=True, text=True, timeout=120)


def _calls(state: Path) -> list[str]:
    path = state / "calls.log"
    return path.read_text().splitlines() if path.exists() else []


def _lock_server(root: Path, tmp_path: Path, version: str, body: bytes):
    """Serves `body` at the path of the version's pre-authenticated request; runtime.env pointed at it."""
    settings = root / "etc/mlflow/runtime.env"
    values = dict(line.split("=", 1) for line in settings.read_text().splitlines() if line)
    name = f"REQUIREMENTS_LOCK_URL_{version.replace('.', '_')}"
    path = urlsplit(values[name]).path
    served = tmp_path / "served"
    (served / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
    (served / path.lstrip("/")).write_bytes(body)
    handler = type("Quiet", (SimpleHTTPRequestHandler,), {"log_message": lambda *a: None})
    server = loopback.serve(partial(handler, directory=str(served)))
    values[name] = f"http://127.0.0.1:{server.server_address[1]}{path}"
    settings.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return server, values[name]


@pytest.mark.parametrize("code", [0, 3, 2])
def test_plan_runs_the_version_s_released_image_as_the_server_runs_and_passes_its_answer_through(vm, code):
    root, state, env = vm
    (state / "registry-up").touch()
    (state / "plan.exit").write_text(str(code))
    result = _run(root, env, "plan", "3.16.1")
    assert result.returncode == code, result.stderr
    # the plan's JSON alone on stdout, as one line printed last: Run Command returns only the output's last 1 KB,
    # and orm-pack upgrade reads its last JSON line
    assert result.stdout == json.dumps(PLAN, separators=(",", ":")) + "\n"
    assert json.loads(result.stdout) == PLAN
    assert "waiting for the database" in result.stderr  # progress on stderr
    released = f"ghcr.io/oracle-quickstart/oci-mlflow-tracking:{RELEASE}-mlflow3.16.1"
    calls = _calls(state)
    assert calls[:3] == ["podman image exists localhost/mlflow-tracking:3.16.1", f"podman pull --quiet {released}",
                         f"podman tag {released} localhost/mlflow-tracking:3.16.1"]
    (run,) = [c for c in calls if c.startswith("podman run")]
    # the tracking server's own options (its unit, as cloud-init writes it), for a one-off run of that image
    unit = (root / "etc/systemd/system/mlflow-tracking.service").read_text()
    (server,) = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    options = server.removeprefix("ExecStart=/usr/bin/podman run ").replace("--name mlflow-tracking ", "")
    options = options.replace("/var/lib/mlflow", f"{root}/var/lib/mlflow").replace("/etc/mlflow", f"{root}/etc/mlflow")
    assert run == "podman run " + options.replace("localhost/mlflow-tracking:latest", "localhost/mlflow-tracking:3.16.1") \
        + " plan --json"
    assert not any(c.startswith("podman build") for c in calls)


def test_without_the_registry_plan_builds_the_version_from_its_checked_lock(vm, tmp_path):
    root, state, env = vm
    lock = (REPO / "docker/requirements-tracking-3.15.2.lock").read_bytes()
    server, url = _lock_server(root, tmp_path, "3.15.2", lock)
    try:
        result = _run(root, env, "plan", "3.15.2")
    finally:
        loopback.stop(server)
    assert result.returncode == 0, result.stderr
    assert (root / "opt/mlflow/src/docker/requirements-tracking-3.15.2.lock").read_bytes() == lock
    src = root / "opt/mlflow/src"
    assert (f"podman build --pull=missing --build-arg MLFLOW_VERSION=3.15.2 --tag localhost/mlflow-tracking:3.15.2 "
            f"--file {src}/docker/Dockerfile-tracking {src}") in _calls(state)
    assert "could not pull ghcr.io/oracle-quickstart/oci-mlflow-tracking:" in result.stderr
    assert urlsplit(url).path not in result.stderr  # the pre-authenticated URL stays out of the output


def test_a_lock_that_does_not_match_its_sha256_is_never_built_with(vm, tmp_path):
    root, state, env = vm
    tampered = (REPO / "docker/requirements-tracking-3.16.1.lock").read_bytes().replace(b"mlflow==", b"mlflow>=")
    server, _ = _lock_server(root, tmp_path, "3.16.1", tampered)
    try:
        result = _run(root, env, "plan", "3.16.1")
    finally:
        loopback.stop(server)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].endswith(
        "ERROR: MLflow 3.16.1's downloaded requirements lock does not match its SHA-256 from the stack")
    assert not (root / "opt/mlflow/src/docker/requirements-tracking-3.16.1.lock").exists()
    assert not any(c.startswith(("podman build", "podman run")) for c in _calls(state))


def test_an_image_made_before_is_used_again(vm):
    root, state, env = vm
    (state / "have-image").touch()
    result = _run(root, env, "plan", "3.17.2")
    assert result.returncode == 0, result.stderr
    assert not any(c.startswith(("podman pull", "podman build")) for c in _calls(state))
    assert _calls(state)[-1].endswith("localhost/mlflow-tracking:3.17.2 plan --json")


@pytest.mark.parametrize("args", [["plan", "3.18.0"], ["plan", "3.16"], ["plan", "3.16.1;id"], ["plan", "../3.16.1"],
                                  ["plan", ""], ["plan", "3.16.1 3.15.2"], ["plan", " 3.16.1"], ["plan", "3.16.1\n"],
                                  ["plan"], ["plan", "3.16.1", "--force"], ["status", "now"], ["upgrade", "3.16.1"], [],
                                  ["image", "latest"]])
def test_anything_but_a_supported_version_is_refused_before_anything_runs(vm, args):
    root, state, env = vm
    (state / "registry-up").touch()
    result = _run(root, env, *args)
    assert result.returncode == 2
    assert "usage: " in result.stderr and "plan VERSION | status" in result.stderr
    if len(args) == 2 and args[0] in ("plan", "image"):
        assert "VERSION must be one of 3.17.2 3.16.1 3.15.2" in result.stderr
    assert _calls(state) == [] and result.stdout == ""


def test_status_says_how_the_vm_is_without_a_secret(vm):
    root, state, env = vm
    log = root / "var/log/mlflow-bootstrap.log"
    log.write_text("".join(f"2026-12-07T00:00:00Z [tracking] step {i}\n" for i in range(1, 51)))
    result = _run(root, env, "status")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "--- last 40 lines of /var/log/mlflow-bootstrap.log"
    assert lines[1:41] == [f"2026-12-07T00:00:00Z [tracking] step {i}" for i in range(11, 51)]
    assert lines[41:43] == ["--- last 40 lines of journalctl -u mlflow-tracking", "2026-12-07T00:00:00+0000 vm mlflow[1]: started"]
    # the summary last: Run Command hands back only the end of the output
    assert lines[43:] == ["---", "service: mlflow-tracking active",
                          "mlflow_version: 3.17.2 (the stack), 3.17.2 (the image it runs: localhost/mlflow-tracking:latest)",
                          "versions: 3.17.2 3.16.1 3.15.2", "refused: none"]
    assert "journalctl -u mlflow-tracking -n 40 --no-pager -o short-iso" in _calls(state)
    settings = (root / "etc/mlflow/tracking.env").read_text() + (root / "etc/mlflow/runtime.env").read_text()
    for line in settings.splitlines():
        value = line.split("=", 1)[1]
        if len(value) > 12:
            assert value not in result.stdout + result.stderr, line.split("=", 1)[0]
    # a refused upgrade at boot is reported
    (root / "var/lib/mlflow/upgrade-refused").write_text("2026-12-07T00:00:00Z upgrade to MLflow 3.17.2 refused: x\n"
                                                         "fix: ALTER TABLE `jobs` CONVERT TO CHARACTER SET utf8mb4;\n")
    again = _run(root, env, "status")
    # the fix's SQL, then the refusal last (Run Command keeps the end; orm-pack reads the last line)
    assert again.stdout.splitlines()[-2:] == ["fix: ALTER TABLE `jobs` CONVERT TO CHARACTER SET utf8mb4;",
                                              "refused: 2026-12-07T00:00:00Z upgrade to MLflow 3.17.2 refused: x"]


def test_the_script_is_strict_and_shellcheck_clean():
    text = (REPO / "userdata/mlflow-upgrade.sh").read_text()
    assert "set -euo pipefail" in text
    assert static.shellcheck_errors(text, "mlflow-upgrade.sh") == []
