"""commands.txt's password rotation (userdata/mlflow-rotate-password.sh, installed on both VMs) works for
every password the stack's form accepts, run natively with the real htpasswd and a systemctl stand-in."""
import os
import re
import subprocess
from pathlib import Path

import bcrypt
import pytest

from harness.tools import require_binary

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "userdata" / "mlflow-rotate-password.sh"
FORM_PATTERN = r"^[^\s\"'\\]{12,64}$"  # schema.yaml's mlflow_password pattern

# Passwords that broke the old sed-based rotation, and the form's edges.
PASSWORDS = ["new&pass/word|12", "a$HOME`id`;x{}<>", "%s%n%x-#!~*?[]()=+,.:@^", "x" * 12, "Y" * 64,
             "&&&&&&&&&&&&", "/etc/passwd/x", "ends-with-dollar$"]


@pytest.fixture
def vm(tmp_path):
    """An /etc/mlflow as cloud-init writes it on a serving VM, and a PATH whose systemctl only records."""
    require_binary("htpasswd", how="apt-get install apache2-utils")
    conf = tmp_path / "etc-mlflow"
    conf.mkdir()
    htpasswd = tmp_path / "htpasswd"
    subprocess.run(["htpasswd", "-iBc", str(htpasswd), "mlflow"], input="old-password-123\n", text=True, check=True,
                   capture_output=True)
    (conf / "proxy.env").write_text(f"PROXY_HTPASSWD_FILE={htpasswd}\nMLFLOW_UI_USER=mlflow\n")
    (conf / "ui-password").write_text("old-password-123\n")
    (conf / "serving.env").write_text("MLFLOW_TRACKING_URI=https://10.0.1.10\nMLFLOW_TRACKING_USERNAME=mlflow\n"
                                      "MLFLOW_TRACKING_PASSWORD=old-password-123\nSERVING_PORT=8080\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "systemctl").write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path}/systemctl.calls\n")
    (bin_dir / "systemctl").chmod(0o755)
    env = dict(os.environ, MLFLOW_CONF_DIR=str(conf), PATH=f"{bin_dir}:{os.environ['PATH']}")
    return conf, htpasswd, tmp_path / "systemctl.calls", env


def _rotate(env, password: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT)], input=password + "\n", env=env, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("password", PASSWORDS)
def test_any_password_the_form_accepts_is_rotated_everywhere(vm, password):
    assert re.fullmatch(FORM_PATTERN, password)
    conf, htpasswd, calls, env = vm
    result = _rotate(env, password)
    assert result.returncode == 0, result.stderr
    user, hashed = htpasswd.read_text().strip().split(":", 1)
    assert user == "mlflow" and bcrypt.checkpw(password.encode(), hashed.encode())
    assert (conf / "ui-password").read_text() == password + "\n"
    assert (conf / "serving.env").read_text() == ("MLFLOW_TRACKING_URI=https://10.0.1.10\nMLFLOW_TRACKING_USERNAME=mlflow\n"
                                                  f"MLFLOW_TRACKING_PASSWORD={password}\nSERVING_PORT=8080\n")
    assert oct((conf / "serving.env").stat().st_mode & 0o777) == "0o600"
    assert oct((conf / "ui-password").stat().st_mode & 0o777) == "0o600"
    assert calls.read_text().splitlines() == ["reload nginx", "restart mlflow-serving"]
    assert password not in result.stderr


@pytest.mark.parametrize("password, message", [
    ("short-pw", "12 to 64 characters"),
    ("z" * 65, "12 to 64 characters"),
    ("with a space in it", "without spaces, quotes or backslashes"),
    ("quote'inside-it", "without spaces, quotes or backslashes"),
    ('double"quote-here', "without spaces, quotes or backslashes"),
    ("back\\slash-in-it", "without spaces, quotes or backslashes"),
])
def test_a_password_the_form_refuses_changes_nothing(vm, password, message):
    assert not re.fullmatch(FORM_PATTERN, password)
    conf, htpasswd, calls, env = vm
    before = {path: path.read_text() for path in (htpasswd, conf / "ui-password", conf / "serving.env")}
    result = _rotate(env, password)
    assert result.returncode == 2 and message in result.stderr
    assert {path: path.read_text() for path in before} == before
    assert not calls.exists()


def test_on_the_tracking_vm_only_nginx_is_reloaded(vm):
    conf, htpasswd, calls, env = vm
    (conf / "serving.env").unlink()
    assert _rotate(env, "tracking-only-pw-1").returncode == 0
    assert calls.read_text().splitlines() == ["reload nginx"]
