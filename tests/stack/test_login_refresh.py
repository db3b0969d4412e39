"""commands.txt's password rotation: a new version of the login secret in Vault, then
`sudo mlflow-refresh-login` on each VM (userdata/mlflow-refresh-login.sh). Run natively with the real
htpasswd, the role's image stood in by this Python with docker/lib (ocifakes/podman.py), the instance
principal and Vault by the loopback fakes (ocifakes/server.py), and a systemctl that only records.

Vault rule the fake enforces: a secret bundle is readable only by a principal that a policy grants
`read secret-bundles` on it; otherwise 404 NotAuthorizedOrNotFound."""
import os
import subprocess
from pathlib import Path

import bcrypt
import pytest
from ocifakes import podman
from ocifakes.server import InstanceCloud

from harness.tools import require_binary

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "userdata" / "mlflow-refresh-login.sh"
LOGIN_SECRET = "ocid1.vaultsecret.oc1.iad.amaaaaaai4pccrkuqm4dl3ei66xfbj4inyzratwtgssuk66lvs6255jjxgpq"

# Passwords a user can type in the form (the old sed-based rotation broke on some), and one shaped
# like Vault's DBAAS_DEFAULT_PASSWORD template.
PASSWORDS = ["new&pass/word|12", "a$HOME`id`;x{}<>", "%s%n%x-#!~*?[]()=+,.:@^", "x" * 12, "Y" * 64,
             "/etc/passwd/x", "ends-with-dollar$", "Ab3_Xy9#Qr7-Lm2_Np8#Tv4-Gh6_Kd"]


@pytest.fixture
def vm(tmp_path):
    """A serving VM's /etc/mlflow, its old password file, and PATH stand-ins for podman and systemctl."""
    require_binary("htpasswd", how="apt-get install apache2-utils")
    cloud = InstanceCloud().start()
    conf = tmp_path / "etc-mlflow"
    conf.mkdir()
    htpasswd = tmp_path / "htpasswd"
    subprocess.run(["htpasswd", "-iBc", str(htpasswd), "mlflow"], input="old-password-123\n", text=True, check=True,
                   capture_output=True)
    (conf / "proxy.env").write_text(f"PROXY_HTPASSWD_FILE={htpasswd}\nMLFLOW_UI_USER=mlflow\n"
                                    f"MLFLOW_UI_PASSWORD_SECRET_OCID={LOGIN_SECRET}\n"
                                    "MLFLOW_IMAGE=localhost/mlflow-serving:latest\n")
    (conf / "serving.env").write_text(f"MLFLOW_TRACKING_PASSWORD_SECRET_OCID={LOGIN_SECRET}\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "systemctl").write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path}/systemctl.calls\n")
    (bin_dir / "systemctl").chmod(0o755)
    podman.write(bin_dir / "podman", tmp_path / "podman.calls")
    env = dict(os.environ, **cloud.runtime_env(), MLFLOW_CONF_DIR=str(conf), PATH=f"{bin_dir}:{os.environ['PATH']}")
    yield cloud, htpasswd, tmp_path / "systemctl.calls", env
    cloud.stop()


def _refresh(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=120)


def _logs_in(htpasswd: Path, password: str) -> bool:
    user, hashed = htpasswd.read_text().strip().split(":", 1)
    return user == "mlflow" and bcrypt.checkpw(password.encode(), hashed.encode())


@pytest.mark.parametrize("password", PASSWORDS)
def test_the_new_version_in_vault_becomes_the_login(vm, password):
    cloud, htpasswd, calls, env = vm
    cloud.add_secret("mlflow-login", password, ocid=LOGIN_SECRET)
    cloud.grant(secrets=[LOGIN_SECRET])
    result = _refresh(env)
    assert result.returncode == 0, result.stderr
    assert _logs_in(htpasswd, password) and not _logs_in(htpasswd, "old-password-123")
    assert oct(htpasswd.stat().st_mode & 0o777) == "0o640"
    assert calls.read_text().splitlines() == ["reload nginx", "restart mlflow-serving"]
    assert password not in result.stderr
    assert [kind for _, _, kind, _ in cloud.requests].count("session-token") >= 1  # the instance principal read it


def test_the_first_boot_writes_the_file_without_restarting_anything(vm):
    cloud, htpasswd, calls, env = vm
    cloud.add_secret("mlflow-login", "first-boot-login", ocid=LOGIN_SECRET)
    cloud.grant(secrets=[LOGIN_SECRET])
    result = _refresh(env, "--no-restart")
    assert result.returncode == 0, result.stderr
    assert _logs_in(htpasswd, "first-boot-login") and not calls.exists()


@pytest.mark.parametrize("case", ["no policy grants the secret", "the secret does not exist"])
def test_a_login_the_vm_cannot_read_changes_nothing(vm, case):
    cloud, htpasswd, calls, env = vm
    if case == "no policy grants the secret":
        cloud.add_secret("mlflow-login", "never-applied-pw", ocid=LOGIN_SECRET)
    else:
        cloud.grant(secrets=[LOGIN_SECRET])
    before = htpasswd.read_text()
    result = _refresh(env)
    assert result.returncode == 3
    assert f"could not read the login from Vault (secret {LOGIN_SECRET}); nothing was changed" in result.stderr
    assert "read secret-bundles" in result.stderr  # the resolver's own line says what to check
    assert htpasswd.read_text() == before and not calls.exists()
    assert not Path(f"{htpasswd}.new").exists()


def test_a_serving_proxy_that_asks_the_tracking_server_needs_no_login(vm):
    """Per-person users: the serving VM's proxy.env names no login (PROXY_AUTH=tracking), the VM may read none
    but its own: the first boot goes on without Vault, a refresh only restarts the supervisor."""
    cloud, htpasswd, calls, env = vm
    conf = Path(env["MLFLOW_CONF_DIR"])
    (conf / "proxy.env").write_text(f"PROXY_HTPASSWD_FILE={htpasswd}\nPROXY_AUTH=tracking\n"
                                    "PROXY_AUTH_URL=https://10.0.1.10\nMLFLOW_IMAGE=localhost/mlflow-serving:latest\n")
    before = htpasswd.read_text()
    first = _refresh(env, "--no-restart")
    assert first.returncode == 0, first.stderr
    assert "keeps no password file" in first.stderr and not calls.exists()
    again = _refresh(env)
    assert again.returncode == 0, again.stderr
    assert calls.read_text().splitlines() == ["restart mlflow-serving"]
    assert htpasswd.read_text() == before and cloud.requests == []  # Vault was never asked
