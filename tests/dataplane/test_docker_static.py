"""docker/ as the VMs get it: lint-clean Dockerfiles and scripts, a proxy config nginx accepts, pinned
requirements, and entrypoints that refuse bad settings with a message saying what to set."""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness import dockerfiles
from harness.static import hadolint_errors, nginx_test_errors, shellcheck_errors

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKER = REPO_ROOT / "docker"
DOCKERFILES = sorted(DOCKER.glob("Dockerfile-*"))
RENDER = DOCKER / "nginx" / "render.sh"
TLS_SELF_SIGNED = DOCKER / "nginx" / "tls-self-signed.sh"
ENTRYPOINT = DOCKER / "tracking" / "entrypoint.sh"


def test_each_image_has_a_dockerfile_requirements_and_a_lock():
    images = [path.name.removeprefix("Dockerfile-") for path in DOCKERFILES]
    assert images == ["serving", "tracking", "training"]
    for image in images:
        assert (DOCKER / f"requirements-{image}.txt").is_file() and (DOCKER / f"requirements-{image}.lock").is_file()


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_dockerfile_is_hadolint_clean(dockerfile):
    assert hadolint_errors(dockerfile) == []


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_dockerfile_runs_as_non_root_with_a_healthcheck_and_no_secret(dockerfile):
    text = dockerfile.read_text()
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK\s", text, re.MULTILINE)
    env_lines = re.findall(r"^(?:ENV|ARG)\s.*(?:\n\s+.*)*", text, re.MULTILINE)
    assert not [line for line in env_lines if re.search(r"PASSWORD|SECRET|AWS_", line)]
    base = re.search(r"^FROM\s+(\S+)", text, re.MULTILINE).group(1)
    # an exact version: the same base next year (python:3.11.11-slim-bookworm, not python:3.11-slim)
    assert re.search(r":\d+\.\d+\.\d+(-[a-z0-9-]+)?$", base), base
    # podman on Oracle Linux refuses short image names when no terminal can ask which registry
    assert base.split("/")[0] in ("docker.io", "container-registry.oracle.com"), base


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_dockerfile_copies_files_that_exist(dockerfile):
    """Build context: the repository (or stack zip) root, where docker/ and examples/ sit."""
    for sources, _ in dockerfiles.copies(dockerfile):
        for source in sources:  # a pattern (the tracking image's locks) must match at least one file
            assert list(REPO_ROOT.glob(source)), f"{dockerfile.name}: COPY {source} does not exist"


@pytest.mark.parametrize("requirements", sorted(DOCKER.glob("requirements-*.txt")), ids=lambda path: path.name)
def test_requirements_are_pinned(requirements):
    lines = [line.strip() for line in requirements.read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines and all(re.fullmatch(r"[A-Za-z0-9_.-]+(\[[a-z,]+\])?==[0-9][A-Za-z0-9.]*", line)
                         for line in lines), lines
    # the default images run the pinned MLflow; requirements-tracking-<version>.txt the version it names
    version = requirements.stem.removeprefix("requirements-tracking-") if "tracking-" in requirements.stem else "3.17.2"
    assert [line for line in lines if re.fullmatch(r"mlflow(\[[a-z,]+\])?==" + re.escape(version), line)]


# The MLflow versions this release runs: the pinned one and the two a deployment may come from and go back to.
PREVIOUS_MLFLOW = ("3.16.1", "3.15.2")


def _refresh_locks():
    import importlib.util

    spec = importlib.util.spec_from_file_location("refresh_locks", DOCKER / "refresh_locks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_previous_mlflow_versions_keep_every_other_pin_of_the_tracking_image():
    """requirements-tracking-<version>.txt is the pinned image's requirements with another MLflow (written by
    refresh_locks.py, so they cannot drift); where that MLflow refuses a pin, the exception says so."""
    refresh = _refresh_locks()
    versioned = sorted(DOCKER.glob("requirements-tracking-*.txt"))
    assert [p.name for p in versioned] == sorted(f"requirements-tracking-{v}.txt" for v in PREVIOUS_MLFLOW)
    base = _pins(DOCKER / "requirements-tracking.txt")
    for path in versioned:
        version = path.stem.removeprefix("requirements-tracking-")
        assert path.read_text() == refresh.versioned_tracking_requirements(version), f"{path.name}: stale, refresh it"
        pins = _pins(path)
        exceptions = refresh.PIN_EXCEPTIONS.get(version, {})
        assert pins == {**base, "mlflow[auth]": version, **exceptions}, path.name
    # MLflow 3.15.2 declares cryptography<50: the one exception, and it is real
    assert refresh.PIN_EXCEPTIONS == {"3.15.2": {"cryptography": "49.0.0"}}


def _pins(requirements: Path) -> dict[str, str]:
    return dict(line.strip().split("==") for line in requirements.read_text().splitlines()
                if line.strip() and not line.startswith("#"))


def _lock_entries(lock: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, sha256 hashes) of a hashed pip requirements file."""
    entries = {}
    for entry in re.split(r"\n(?=[A-Za-z0-9])", lock.read_text().split("\n", 2)[2].strip()):
        head, *hashes = [part.strip() for part in entry.split("\\")]
        name, version = head.split(" ;")[0].split("==")
        entries[name.lower()] = (version, [h.removeprefix("--hash=sha256:") for h in hashes])
    return entries


@pytest.mark.parametrize("image", ["serving", "tracking", "training"] + [f"tracking-{v}" for v in PREVIOUS_MLFLOW])
def test_the_lock_pins_every_package_with_hashes_for_both_architectures(image):
    """Every package of the image, not only the top-level ones, pinned with the SHA-256 of its wheel;
    a compiled package has one wheel per architecture (x86_64, and aarch64 for the A1 shapes)."""
    lock = DOCKER / f"requirements-{image}.lock"
    entries = _lock_entries(lock)
    assert f"Refresh: python docker/refresh_locks.py {image}" in lock.read_text().splitlines()[1]
    for line in (DOCKER / f"requirements-{image}.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.strip().split("==")
            name = name.split("[")[0]  # extras add packages of their own, which the lock lists too
            assert entries[name.lower()][0] == version, f"{name}: the lock is stale, refresh it"
    assert len(entries) > 50  # the transitive dependencies too
    for name, (_, hashes) in entries.items():
        assert 1 <= len(hashes) <= 2 and all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes), name
    for compiled in ("numpy", "sqlalchemy", "cryptography" if image.startswith("tracking") else "pyarrow"):
        assert len(entries[compiled][1]) == 2, f"{compiled}: one wheel per architecture"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_the_image_installs_its_lock_and_nothing_else(dockerfile):
    image = dockerfile.name.removeprefix("Dockerfile-")
    text = dockerfile.read_text().replace("\\\n", " ")
    installs = [" ".join(found.split()) for found in re.findall(r"pip install ([^&]+)", text)]
    if image == "tracking":  # one of its locks, chosen by MLFLOW_VERSION (test_the_tracking_image_...)
        assert "COPY docker/requirements-tracking*.lock /tmp/locks/" in text
        assert installs == ['--no-cache-dir --require-hashes --no-deps --only-binary=:all: -r "$lock"']
        return
    assert f"COPY docker/requirements-{image}.lock /tmp/requirements.lock" in text
    assert installs == ["--no-cache-dir --require-hashes --no-deps --only-binary=:all: -r /tmp/requirements.lock"]


@pytest.mark.parametrize(("version", "lock"), [("", "requirements-tracking.lock"), ("3.17.2", "requirements-tracking.lock"),
                                               *[(v, f"requirements-tracking-{v}.lock") for v in PREVIOUS_MLFLOW],
                                               ("3.14.0", None), ("../../etc/passwd", None), ("3.16.1 x", None)])
def test_the_tracking_image_installs_the_lock_of_the_mlflow_version_it_is_built_with(tmp_path, version, lock):
    """Dockerfile-tracking's RUN, as the build runs it (bash, pipefail) over the COPY'd locks with pip
    recorded: the pinned lock by default and for the pinned version, requirements-tracking-<version>.lock for
    a previous one, and a version this release does not run fails the build with one line naming those it does."""
    text = (DOCKER / "Dockerfile-tracking").read_text().replace("\\\n", " ")
    (run,) = [line.removeprefix("RUN ") for line in text.splitlines() if "pip install" in line]
    locks = tmp_path / "locks"
    locks.mkdir()
    for path in DOCKER.glob("requirements-tracking*.lock"):
        (locks / path.name).write_bytes(path.read_bytes())
    (tmp_path / "bin").mkdir()
    for tool, body in (("pip", 'echo "pip $*"'), ("useradd", "true")):
        (tmp_path / "bin" / tool).write_text(f"#!/bin/sh\n{body}\n")
        (tmp_path / "bin" / tool).chmod(0o755)
    result = subprocess.run(["bash", "-o", "pipefail", "-c", run.replace("/tmp/locks", str(locks))],
                            env=dict(os.environ, MLFLOW_VERSION=version, PATH=f"{tmp_path / 'bin'}:{os.environ['PATH']}"),
                            capture_output=True, text=True, timeout=60)
    if lock is None:
        assert result.returncode != 0 and "pip install" not in result.stdout
        assert result.stderr.strip() == (f"MLFLOW_VERSION={version}: this release runs MLflow 3.15.2 3.16.1 3.17.2, "
                                         "no other (docker/requirements-tracking-<version>.lock)")
        return
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == str(locks / lock)
    assert not locks.exists()  # removed in the same layer


@pytest.mark.parametrize("script", [ENTRYPOINT, RENDER, TLS_SELF_SIGNED], ids=lambda path: path.name)
def test_shell_script_is_strict_and_shellcheck_clean(script):
    text = script.read_text()
    assert "set -euo pipefail" in text
    assert shellcheck_errors(text, script.name) == []


def proxy_env(tmp_path, **overrides) -> dict:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("mlflow:$2b$05$abcdefghijklmnopqrstuuJ0m2xHzGQ5U8zXg9QdGmE0i3d6wVWm2\n")
    env = dict(os.environ, PROXY_LISTEN_PORT="443", PROXY_UPSTREAM="127.0.0.1:5000",
               PROXY_HTPASSWD_FILE=str(htpasswd), PROXY_TLS_CERT=str(tmp_path / "tls" / "proxy.crt"),
               PROXY_TLS_KEY=str(tmp_path / "tls" / "proxy.key"), PROXY_SERVER_NAME="mlflow.example.test 10.0.0.5")
    return {**env, **overrides}


def self_signed(tmp_path, **overrides) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(TLS_SELF_SIGNED)], env=proxy_env(tmp_path, **overrides), capture_output=True,
                          text=True, timeout=60)


def render(tmp_path, script: Path = RENDER, **overrides) -> subprocess.CompletedProcess:
    """render.sh as every caller runs it: after tls-self-signed.sh."""
    made = self_signed(tmp_path, **overrides)
    if made.returncode != 0:
        return made
    return subprocess.run(["bash", str(script), str(tmp_path / "out.conf")], env=proxy_env(tmp_path, **overrides),
                          capture_output=True, text=True, timeout=60)


def test_rendered_proxy_config_has_the_settings_uploads_and_mlflow_need(tmp_path):
    result = render(tmp_path)
    assert result.returncode == 0, result.stderr
    conf = (tmp_path / "out.conf").read_text()
    for directive in ("listen 443 ssl;", "server 127.0.0.1:5000;", "keepalive 16;", "client_max_body_size    64m;",
                      "client_max_body_size 0;", "limit_conn              p443_conns 256;",
                      "proxy_request_buffering off;", "proxy_set_header   Host $http_host;",
                      "server_name mlflow.example.test 10.0.0.5;", "auth_basic off;",
                      f"auth_basic_user_file {tmp_path / 'htpasswd'};"):
        assert directive in conf
    assert "${PROXY_" not in conf


def test_rendered_proxy_config_passes_nginx_t(tmp_path):
    assert render(tmp_path).returncode == 0
    main = f"pid {tmp_path}/nginx.pid;\nevents {{}}\nhttp {{\n    include {tmp_path / 'out.conf'};\n}}\n"
    assert nginx_test_errors(main) == []


@pytest.mark.parametrize("auth", ["proxy", "upstream", "tracking"])
@pytest.mark.parametrize("fronts", ["tracking", "serving"])
def test_every_mode_renders_its_own_files_into_one_config_nginx_accepts(tmp_path, auth, fronts):
    """render.sh writes auth-<PROXY_AUTH>.conf and fronts-<PROXY_FRONTS>.conf in place of the template's
    include lines: the result stands alone (no include left) and nginx accepts it."""
    result = render(tmp_path, PROXY_AUTH=auth, PROXY_FRONTS=fronts, PROXY_AUTH_URL="https://10.0.1.10")
    assert result.returncode == 0, result.stderr
    conf = (tmp_path / "out.conf").read_text()
    assert not re.search(r"^\s*include\s", conf, re.MULTILINE)
    for name in (f"auth-{auth}.conf", f"fronts-{fronts}.conf"):
        first_directive = next(line for line in (RENDER.parent / name).read_text().splitlines()
                               if line and not line.startswith("#"))
        assert first_directive.replace("$${PROXY_ID}", "$p443") in conf, name
    assert ("auth_basic_user_file" in conf) == (auth == "proxy")
    assert ("/.mlflow-login-here" in conf) == (auth == "upstream")
    assert ("https://10.0.1.10/api/2.0/mlflow/users/current" in conf) == (auth == "tracking")
    assert ('proxy_set_header   Cookie "";' in conf) == (fronts == "serving")
    main = f"pid {tmp_path}/nginx.pid;\nevents {{}}\nhttp {{\n    include {tmp_path / 'out.conf'};\n}}\n"
    assert nginx_test_errors(main) == []


def test_a_mode_whose_file_is_missing_is_refused_by_name(tmp_path):
    copy = tmp_path / "nginx"
    shutil.copytree(RENDER.parent, copy)
    (copy / "auth-tracking.conf").unlink()
    result = render(tmp_path, script=copy / "render.sh", PROXY_AUTH="tracking", PROXY_AUTH_URL="https://10.0.1.10")
    assert result.returncode == 2
    assert f"the template includes auth-tracking.conf, which is not beside it in {copy}" in result.stderr
    assert not (tmp_path / "out.conf").exists()


def test_a_self_signed_pair_is_made_once_for_the_server_names_and_a_given_one_kept(tmp_path):
    assert self_signed(tmp_path).returncode == 0
    cert, key = tmp_path / "tls" / "proxy.crt", tmp_path / "tls" / "proxy.key"
    text = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-text"], capture_output=True,
                          text=True, check=True).stdout
    assert "DNS:mlflow.example.test" in text and "IP Address:10.0.0.5" in text
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    before = cert.read_bytes()
    assert self_signed(tmp_path).returncode == 0
    assert cert.read_bytes() == before


def test_render_only_substitutes_and_refuses_a_missing_certificate(tmp_path):
    """render.sh makes no certificate: without a pair it says where one comes from and writes nothing."""
    result = subprocess.run(["bash", str(RENDER), str(tmp_path / "out.conf")], env=proxy_env(tmp_path),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "tls-self-signed.sh beside this script" in result.stderr
    assert not (tmp_path / "tls").exists() and not (tmp_path / "out.conf").exists()


def test_render_puts_each_listed_upstream_on_a_server_line_of_its_own(tmp_path):
    result = render(tmp_path, PROXY_UPSTREAM="127.0.0.1:5000, 127.0.0.1:5001 10.0.1.6:5000")
    assert result.returncode == 0, result.stderr
    conf = (tmp_path / "out.conf").read_text()
    upstream_block = conf.split("\nupstream ", 1)[1].split("}", 1)[0].splitlines()[1:]
    directives = [line.strip() for line in upstream_block if line.strip() and not line.strip().startswith("#")]
    assert directives == ["server 127.0.0.1:5000;", "server 127.0.0.1:5001;", "server 10.0.1.6:5000;",
                          "keepalive 16;", "keepalive_timeout 4s;"]
    assert "127.0.0.1:5001" not in conf.replace("server 127.0.0.1:5001;", "", 1)  # the list itself nowhere else
    main = f"pid {tmp_path}/nginx.pid;\nevents {{}}\nhttp {{\n    include {tmp_path / 'out.conf'};\n}}\n"
    assert nginx_test_errors(main) == []


@pytest.mark.parametrize("overrides, message", [
    ({"PROXY_LISTEN_PORT": "443; include /etc/passwd"}, "PROXY_LISTEN_PORT contains whitespace"),
    ({"PROXY_LISTEN_PORT": "99999"}, "PROXY_LISTEN_PORT must be a port"),
    ({"PROXY_UPSTREAM": "127.0.0.1"}, "PROXY_UPSTREAM must be host:port"),
    ({"PROXY_UPSTREAM": "127.0.0.1:5000, 127.0.0.1 127.0.0.1:5002"},
     "PROXY_UPSTREAM must be host:port, e.g. 127.0.0.1:5000 (got '127.0.0.1')"),
    ({"PROXY_UPSTREAM": "127.0.0.1:5000\ninclude /etc/passwd;"}, "PROXY_UPSTREAM must be host:port"),
    ({"PROXY_UPSTREAM": "127.0.0.1:5000 127.0.0.1:5001;"}, "PROXY_UPSTREAM contains whitespace or one of"),
    ({"PROXY_UPSTREAM": " , "}, "PROXY_UPSTREAM lists no host:port"),
    ({"PROXY_HTPASSWD_FILE": "/nonexistent/htpasswd"}, "htpasswd -cB /nonexistent/htpasswd"),
    ({"PROXY_TLS_CERT": ""}, "PROXY_TLS_CERT is not set"),
    ({"PROXY_FRONTS": "model"}, "PROXY_FRONTS must be tracking or serving (got 'model')"),
    ({"PROXY_MAX_BODY_MB": "64m"}, "PROXY_MAX_BODY_MB must be a whole number of MiB from 1 to 99999 (got '64m')"),
    ({"PROXY_MAX_CONNECTIONS_PER_ADDRESS": "0"}, "PROXY_MAX_CONNECTIONS_PER_ADDRESS must be a whole number"),
    ({"PROXY_REQUEST_LOG": "requests.log"}, "PROXY_REQUEST_LOG must be an absolute file path or syslog:server="),
    # the request log never leaves the machine (or pod): no syslog server but the loopback's
    ({"PROXY_REQUEST_LOG": "syslog:server=10.0.0.5:5140"}, "PROXY_REQUEST_LOG must be an absolute file path"),
    ({"PROXY_REQUEST_LOG": "syslog:server=127.0.0.1:70000"}, "PROXY_REQUEST_LOG's syslog port must be 1-65535"),
], ids=["injection", "port-range", "upstream-without-port", "upstream-list-entry-without-port",
        "upstream-list-line-injection", "upstream-list-entry-injection", "upstream-list-empty", "missing-htpasswd",
        "missing-cert-path", "unknown-kind-of-upstream", "body-cap-with-unit", "no-connections",
        "relative-request-log", "remote-syslog", "syslog-port-range"])
def test_render_refuses_bad_settings(tmp_path, overrides, message):
    result = render(tmp_path, **overrides)
    assert result.returncode == 2 and message in result.stderr
    assert not (tmp_path / "out.conf").exists()


def test_half_a_certificate_pair_is_refused(tmp_path):
    (tmp_path / "tls").mkdir()
    (tmp_path / "tls" / "proxy.crt").write_text("only the certificate")
    result = render(tmp_path)
    assert result.returncode == 2 and "give both, or neither" in result.stderr


def entrypoint(**env) -> subprocess.CompletedProcess:
    from orm_pack.local.services import python_env

    clean = {"PATH": python_env()["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run(["bash", str(ENTRYPOINT)], env=dict(clean, **env), capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("env, message", [
    ({}, "set MLFLOW_DB_HOST MLFLOW_DB_USER MLFLOW_DB_PASSWORD (the MySQL connection) or MLFLOW_BACKEND_STORE_URI"),
    ({"MLFLOW_BACKEND_STORE_URI": "sqlite:////tmp/x.db"}, "set MLFLOW_ARTIFACTS_DESTINATION to oci://<bucket>@<namespace>/<prefix>"),
    ({"MLFLOW_BACKEND_STORE_URI": "sqlite:////tmp/x.db", "MLFLOW_ARTIFACTS_DESTINATION": "s3://bucket/mlflow"},
     "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set"),
    ({"MLFLOW_BACKEND_STORE_URI": "sqlite:////tmp/x.db", "MLFLOW_ARTIFACTS_DESTINATION": "gs://bucket"},
     "must be oci://…, s3://… or a local directory"),
    ({"MLFLOW_WORKERS": "many"}, "MLFLOW_WORKERS must be an integer between 1 and 64"),
    ({"MLFLOW_DB_HOST": "127.0.0.1", "MLFLOW_DB_PORT": "1", "MLFLOW_DB_USER": "u", "MLFLOW_DB_PASSWORD": "p",
      "MLFLOW_DB_WAIT_SECONDS": "0", "MLFLOW_ARTIFACTS_DESTINATION": "/tmp/mlflow-artifacts-test"},
     "database 127.0.0.1:1 is not reachable after 0 s"),
    ({"MLFLOW_BACKEND_STORE_URI": "sqlite:////tmp/x.db", "MLFLOW_ARTIFACTS_DESTINATION": "/tmp/mlflow-artifacts-test",
      "MLFLOW_AUTH": "mlflow", "MLFLOW_AUTH_ADMIN_USERNAME": "mlflow", "MLFLOW_AUTH_ADMIN_PASSWORD": "Admin-Passw0rd-1",
      "MLFLOW_FLASK_SERVER_SECRET_KEY": "k" * 32, "MLFLOW_OCI_PASSWORD_CACHE_SECONDS": "61"},
     "MLFLOW_OCI_PASSWORD_CACHE_SECONDS must be an integer between 0 and 60"),
], ids=["no-backend", "no-artifacts", "s3-without-keys", "unknown-scheme", "bad-workers", "db-unreachable",
        "password-trusted-too-long"])
def test_tracking_entrypoint_refuses_bad_settings(env, message):
    result = entrypoint(**env)
    assert result.returncode == 2 and message in result.stderr, result.stderr


def test_tracking_entrypoint_masks_the_password_of_a_given_uri(tmp_path):
    result = entrypoint(MLFLOW_BACKEND_STORE_URI="mysql+pymysql://mlflow:Sup3r-secret@127.0.0.1:1/mlflow",
                        MLFLOW_ARTIFACTS_DESTINATION=str(tmp_path / "artifacts"))
    assert result.returncode == 2
    assert "mysql+pymysql://mlflow:***@127.0.0.1:1/mlflow" in result.stderr
    assert "cannot connect to the MLflow database as its user" in result.stderr
    assert "Sup3r-secret" not in result.stderr


IMAGES_AND_ARCHITECTURES = [(image, architecture) for image in ("serving", "tracking", *(f"tracking-{v}" for v in PREVIOUS_MLFLOW))
                           for architecture in ("x86_64", "aarch64")]


@pytest.fixture(scope="module")
def lock_resolutions(tmp_path_factory) -> dict:
    """pip's dry-run install of each image's lock for each architecture, the four at once (they wait on the
    package index more than they compute): {(image, architecture): (result, report path)}."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("refresh_locks", DOCKER / "refresh_locks.py")
    refresh_locks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(refresh_locks)
    running = {}
    for image, architecture in IMAGES_AND_ARCHITECTURES:
        target = tmp_path_factory.mktemp(f"{image}-{architecture}")
        platforms = [arg for tag in refresh_locks.MANYLINUX for arg in ("--platform", f"{tag}_{architecture}")]
        running[image, architecture] = target, subprocess.Popen(
            [sys.executable, "-m", "pip", "install", "--quiet", "--dry-run", "--ignore-installed", "--require-hashes",
             "--no-deps", "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
             *platforms, "--target", str(target), "--report", str(target / "report.json"),
             "-r", str(DOCKER / f"requirements-{image}.lock")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    resolutions = {}
    for key, (target, process) in running.items():
        _, stderr = process.communicate(timeout=600)
        resolutions[key] = process.returncode, stderr, target / "report.json"
    return resolutions


@pytest.mark.dataplane  # pip resolves the image's lock against the package index
@pytest.mark.parametrize(("image", "architecture"), IMAGES_AND_ARCHITECTURES)
def test_pip_finds_a_wheel_with_a_locked_hash_for_each_architecture(image, architecture, lock_resolutions):
    """What the VM's `pip install --require-hashes` will do, resolved against the package index for a
    Linux x86_64 VM and an Arm (A1) VM: every package has a wheel whose hash the lock allows."""
    import json

    returncode, stderr, report = lock_resolutions[image, architecture]
    assert returncode == 0, stderr[-3000:]
    chosen = json.loads(report.read_text())["install"]
    assert len(chosen) == len(_lock_entries(DOCKER / f"requirements-{image}.lock"))
    assert all(architecture in item["download_info"]["url"] or "none-any" in item["download_info"]["url"]
               or "abi3" in item["download_info"]["url"] for item in chosen)
