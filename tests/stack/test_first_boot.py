"""A first boot that heals itself. cloud-init runs `runcmd` once per instance, so the setup runs from a
systemd unit that retries with a growing pause until it succeeds. Shown natively: the units pass
`systemd-analyze verify`, and the bootstrap script, given the files cloud-init writes (taken from the
plan's user_data), the image's requirements lock served as Object Storage would, the login in a Vault
fake read through the instance principal, and stand-ins for dnf, podman, systemctl and firewall-cmd that
fail the first time, gets through on a later attempt and leaves the services enabled; a lock that does
not match its SHA-256 is never built with, and a login the VM's policy does not grant stops the attempt
with one line."""
import contextlib
import hashlib
import os
import shutil
import stat
import subprocess
from functools import partial
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from urllib.parse import urlsplit

import bcrypt
import pytest
import yaml
from ocifakes import podman
from ocifakes.server import InstanceCloud

from harness import loopback, static
from harness.tools import require_binary

from .conftest import REPO, instance_user_data

pytestmark = pytest.mark.terraform

ROLES = {'oci_core_instance.vm["tracking"]': "tracking", 'oci_core_instance.vm["serving"]': "serving"}
# A stand-in that records its call and fails the first time it is called (`is-active` always succeeds,
# so the bootstrap takes the running-firewalld path; `podman pull` fails unless the test allows it,
# as when the registry cannot be reached).
STUB = """#!/bin/bash
echo "$(basename "$0") $*" >> "{state}/calls.log"
[[ $(basename "$0") == systemctl && $1 == is-active ]] && exit 0
[[ $(basename "$0") == podman && $1 == pull ]] && {{ [[ -e "{state}/registry-up" ]]; exit; }}
[[ $(basename "$0") == podman && $1 == tag ]] && exit 0
[[ $(basename "$0") == podman && $1 == run ]] && exec "{state}/podman-run" "$@"
count_file="{state}/$(basename "$0").count"
count=$(( $(cat "$count_file" 2>/dev/null || echo 0) + 1 ))
echo "$count" > "$count_file"
(( count > 1 )) || {{ echo "$(basename "$0"): temporary failure" >&2; exit 1; }}
"""
SUCCEEDS = '#!/bin/bash\necho "$(basename "$0") $*" >> "{state}/calls.log"\n'
# install and chown: the VM's nginx group does not exist here; the modes and paths still apply.
INSTALL = '#!/bin/bash\nargs=(); while (($#)); do case $1 in -o|-g) shift 2;; *) args+=("$1"); shift;; esac; done\n' \
          'exec /usr/bin/install "${{args[@]}}"\n'
SELINUX_OFF = "#!/bin/sh\nexit 1\n"


def _cloud_config(deployed, role: str) -> dict:
    encoded = {ROLES[a]: ud for a, ud in instance_user_data(deployed("default").replan).items()}[role]
    return yaml.safe_load(static.decode_user_data(encoded))


def _write_files(config: dict, root: Path) -> None:
    """What cloud-init's write_files does, under `root`; the proxy's paths are moved under it too."""
    for entry in config["write_files"]:
        target = root / entry["path"].lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        content = entry["content"]
        if entry["path"] == "/etc/mlflow/proxy.env":
            content = "".join(f"{k}={root}{v}\n" if v.startswith("/") else f"{k}={v}\n"
                              for k, v in (line.split("=", 1) for line in content.splitlines() if line))
        target.write_text(content)
        target.chmod(int(entry["permissions"], 8))


def _stubs(bin_dir: Path, state: Path) -> None:
    bin_dir.mkdir()
    scripts = {name: STUB for name in ("dnf", "podman", "systemctl", "firewall-cmd")}
    scripts.update({name: SUCCEEDS for name in ("firewall-offline-cmd", "semanage", "setsebool", "restorecon",
                                                 "nginx", "chown")})
    scripts.update(install=INSTALL, selinuxenabled=SELINUX_OFF)
    for name, text in scripts.items():
        (bin_dir / name).write_text(text.format(state=state))
        (bin_dir / name).chmod(0o755)
    podman.write(state / "podman-run", state / "podman-run.log")  # the image reading Vault


@contextlib.contextmanager
def _object_storage(root: Path, tmp_path: Path, lock: bytes):
    """The lock served at the pre-authenticated request's path; the VM's lock.env pointed at it."""
    settings = root / "etc/mlflow/requirements-lock.env"
    values = dict(line.split("=", 1) for line in settings.read_text().splitlines())
    path = urlsplit(values["REQUIREMENTS_LOCK_URL"]).path
    served = tmp_path / "served"
    (served / path.lstrip("/")).parent.mkdir(parents=True)
    (served / path.lstrip("/")).write_bytes(lock)
    server = loopback.serve(partial(SimpleHTTPRequestHandler, directory=str(served)))
    values["REQUIREMENTS_LOCK_URL"] = f"http://127.0.0.1:{server.server_address[1]}{path}"
    settings.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    try:
        yield values
    finally:
        loopback.stop(server)


@pytest.fixture
def cloud():
    server = InstanceCloud().start()
    yield server
    server.stop()


def _vault_login(cloud: InstanceCloud, root: Path, password: str, granted: bool = True) -> str:
    """The login secret the VM's proxy.env names, in the Vault fake (granted to the VM or not)."""
    proxy = dict(line.split("=", 1) for line in (root / "etc/mlflow/proxy.env").read_text().splitlines() if line)
    ocid = cloud.add_secret("mlflow-login", password, ocid=proxy["MLFLOW_UI_PASSWORD_SECRET_OCID"])
    if granted:
        cloud.grant(secrets=[ocid])
    return ocid


def _bootstrap_env(root: Path, tmp_path: Path, cloud: InstanceCloud | None = None) -> dict:
    return dict(os.environ, **(cloud.runtime_env() if cloud else {}),
                MLFLOW_BOOTSTRAP_ROOT=str(root), MLFLOW_BOOTSTRAP_RETRY_SECONDS="1",
                MLFLOW_BOOTSTRAP_RETRY_MAX_SECONDS="2", MLFLOW_BOOTSTRAP_STEP_DELAY="0",
                PATH=f"{tmp_path / 'bin'}:{os.environ['PATH']}")


def _vm(deployed, tmp_path: Path) -> tuple[Path, Path]:
    require_binary("htpasswd", how="apt-get install apache2-utils")
    require_binary("openssl", how="apt-get install openssl")
    require_binary("curl", how="apt-get install curl")
    root, state = tmp_path / "vm", tmp_path / "stubs"
    state.mkdir()
    (root / "var/log").mkdir(parents=True)
    _write_files(_cloud_config(deployed, "tracking"), root)
    _stubs(tmp_path / "bin", state)
    return root, state


def test_the_vm_gets_the_lock_the_stack_uploaded(deployed):
    files = {e["path"]: e["content"] for e in _cloud_config(deployed, "tracking")["write_files"]}
    values = dict(line.split("=", 1) for line in files["/etc/mlflow/requirements-lock.env"].splitlines())
    lock = (REPO / "docker" / "requirements-tracking.lock").read_bytes()
    assert values["REQUIREMENTS_LOCK_SHA256"] == hashlib.sha256(lock).hexdigest()
    par = deployed("default").replan["planned_values"]["root_module"]["resources"]
    (tracking_par,) = [r for r in par if r["address"] == 'oci_objectstorage_preauthrequest.requirements_lock["tracking"]']
    assert values["REQUIREMENTS_LOCK_URL"] == tracking_par["values"]["full_path"]
    assert tracking_par["values"]["access_type"] == "ObjectRead"
    assert tracking_par["values"]["object_name"] == "requirements-tracking.lock"


def test_a_lock_that_does_not_match_its_sha256_is_never_built_with(deployed, tmp_path):
    root, state = _vm(deployed, tmp_path)
    for stub in ("dnf", "podman", "systemctl", "firewall-cmd"):  # a healthy network this time
        (state / f"{stub}.count").write_text("1")
    tampered = (REPO / "docker" / "requirements-tracking.lock").read_bytes().replace(b"mlflow==", b"mlflow>=")
    with _object_storage(root, tmp_path, tampered):
        result = subprocess.run(["bash", str(root / "usr/local/sbin/mlflow-bootstrap.sh"), "tracking"],
                                env=_bootstrap_env(root, tmp_path), capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "the downloaded requirements lock does not match its SHA-256 from the stack" in result.stderr
    assert not (root / "opt/mlflow/src/docker/requirements-tracking.lock").exists()
    assert not any(c.startswith("podman build") for c in (state / "calls.log").read_text().splitlines())


def test_the_bootstrap_retries_until_a_flaky_first_boot_succeeds(deployed, tmp_path, cloud):
    root, state = _vm(deployed, tmp_path)
    _vault_login(cloud, root, "login-from-vault-1")
    script = root / "usr/local/sbin/mlflow-bootstrap.sh"
    lock = (REPO / "docker" / "requirements-tracking.lock").read_bytes()
    with _object_storage(root, tmp_path, lock) as served:
        result = subprocess.run(["bash", str(script), "--until-done", "tracking"],
                                env=_bootstrap_env(root, tmp_path, cloud),
                                capture_output=True, text=True, timeout=300)
    log = (root / "var/log/mlflow-bootstrap.log").read_text()
    assert result.returncode == 0, log + result.stderr
    # dnf and podman fail once inside their own step retries; firewall-cmd and systemctl fail an attempt
    failed = [line.split("] ", 1)[1] for line in log.splitlines() if "failed; the next one in" in line]
    assert [f.split(" (")[0] for f in failed] == ["attempt 1 failed; the next one in 1s",
                                                   "attempt 2 failed; the next one in 2s"], log
    assert (root / "var/lib/mlflow/bootstrap-tracking.done").exists()
    assert "image: could not pull ghcr.io/oracle-quickstart/oci-mlflow-tracking:" in log
    assert "image: built from" in log
    calls = (state / "calls.log").read_text().splitlines()
    assert calls.count("dnf -y install podman nginx httpd-tools openssl policycoreutils-python-utils firewalld") >= 2
    assert "systemctl enable --now mlflow-tracking.service" in calls and "systemctl restart nginx.service" in calls
    assert any(c.startswith("podman build") for c in calls)
    assert "mlflow_upstream" in (root / "etc/nginx/conf.d/mlflow-tracking.conf").read_text()
    assert (root / "home/opc/commands.txt").read_text() == (root / "etc/mlflow/commands.txt").read_text()
    assert (root / "opt/mlflow/src/docker/requirements-tracking.lock").read_bytes() == lock  # what podman builds with
    par_path = urlsplit(served["REQUIREMENTS_LOCK_URL"]).path
    assert par_path not in log + result.stderr  # the pre-authenticated URL stays out of the log
    user, hashed = (root / "etc/nginx/mlflow/htpasswd").read_text().strip().split(":", 1)
    assert user == "mlflow" and bcrypt.checkpw(b"login-from-vault-1", hashed.encode())
    assert "login-from-vault-1" not in log + result.stderr


def test_a_login_the_policy_does_not_grant_stops_the_attempt_with_one_line(deployed, tmp_path, cloud):
    root, state = _vm(deployed, tmp_path)
    (state / "registry-up").touch()
    for stub in ("dnf", "podman", "systemctl", "firewall-cmd"):
        (state / f"{stub}.count").write_text("1")
    ocid = _vault_login(cloud, root, "not-for-this-vm", granted=False)
    result = subprocess.run(["bash", str(root / "usr/local/sbin/mlflow-bootstrap.sh"), "tracking"],
                            env=_bootstrap_env(root, tmp_path, cloud), capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].endswith(
        "ERROR: could not read the MLflow login from Vault: the policy of this VM's dynamic group must allow "
        f"'read secret-bundles' on it (see {root}/var/log/mlflow-bootstrap.log)")
    log = (root / "var/log/mlflow-bootstrap.log").read_text()
    assert f"could not read the login from Vault (secret {ocid})" in log
    assert not (root / "etc/nginx/mlflow/htpasswd").exists()
    assert "systemctl enable --now mlflow-tracking.service" not in (state / "calls.log").read_text()


def test_a_vm_takes_the_released_image_when_the_registry_answers(deployed, tmp_path, cloud):
    root, state = _vm(deployed, tmp_path)
    _vault_login(cloud, root, "login-from-vault-2")
    (state / "registry-up").touch()
    for stub in ("dnf", "podman", "systemctl", "firewall-cmd"):
        (state / f"{stub}.count").write_text("1")
    result = subprocess.run(["bash", str(root / "usr/local/sbin/mlflow-bootstrap.sh"), "tracking"],
                            env=_bootstrap_env(root, tmp_path, cloud), capture_output=True, text=True, timeout=120)
    log = (root / "var/log/mlflow-bootstrap.log").read_text()
    assert result.returncode == 0, log + result.stderr
    released = f"ghcr.io/oracle-quickstart/oci-mlflow-tracking:{(REPO / 'VERSION').read_text().strip()}"
    assert f"image: pulled {released}" in log
    calls = (state / "calls.log").read_text().splitlines()
    assert f"podman tag {released} localhost/mlflow-tracking:latest" in calls
    assert not any(c.startswith("podman build") for c in calls)
    assert not (root / "opt/mlflow/src/docker/requirements-tracking.lock").exists()  # only a build needs it


def _systemd_root(tmp_path: Path, units: dict[str, str], executables: list[str]) -> Path:
    root = tmp_path / "sysroot"
    system = root / "usr/lib/systemd/system"
    system.mkdir(parents=True)
    for unit in Path("/usr/lib/systemd/system").iterdir():  # the targets the units refer to
        if unit.is_file() and unit.suffix in (".target", ".slice"):
            shutil.copy(unit, system / unit.name)
    (root / "etc/systemd/system").mkdir(parents=True)
    for name, text in units.items():
        (root / "etc/systemd/system" / name).write_text(text)
    for path in executables:
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("#!/bin/sh\n")
        target.chmod(target.stat().st_mode | stat.S_IXUSR)
    return root


@pytest.mark.parametrize("role", ["tracking", "serving"])
def test_the_units_pass_systemd_analyze_verify(deployed, tmp_path, role):
    analyze = require_binary("systemd-analyze", how="apt-get install systemd")
    files = {e["path"]: e["content"] for e in _cloud_config(deployed, role)["write_files"]}
    units = {Path(p).name: c for p, c in files.items() if p.startswith("/etc/systemd/system/")}
    assert set(units) == {"mlflow-bootstrap@.service", f"mlflow-{role}.service"}
    root = _systemd_root(tmp_path, units, ["/usr/local/sbin/mlflow-bootstrap.sh", "/usr/bin/podman"])
    for unit in (f"mlflow-bootstrap@{role}.service", f"mlflow-{role}.service"):
        result = subprocess.run([analyze, "verify", f"--root={root}", unit], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert "mlflow" not in result.stderr, result.stderr
    # and the check bites: a unit whose program is missing fails
    (root / "usr/local/sbin/mlflow-bootstrap.sh").unlink()
    missing = subprocess.run([analyze, "verify", f"--root={root}", f"mlflow-bootstrap@{role}.service"],
                             capture_output=True, text=True)
    assert missing.returncode != 0 and "mlflow-bootstrap.sh is not executable" in missing.stderr
