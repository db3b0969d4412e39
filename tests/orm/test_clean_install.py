"""orm-pack as a user installs it: the wheel and the sdist, each into a fresh virtual environment with no
extras, then every command run as a subprocess against the Resource Manager fake; and the [local] extra
running `local up` and `local down`. Nothing here uses the test environment's packages."""
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from harness.loopback import wait_healthy
from orm_pack.local.ports import free_port
from ormfake.testing import COMPARTMENT, FIXTURE_SOURCE, REPO_ROOT, cli_env

pytestmark = [pytest.mark.install, pytest.mark.dataplane, pytest.mark.terraform]

# The real stack's required inputs, given the way README tells users to give passwords.
STACK_SECRETS = {"ORM_PACK_VAR_mysql_admin_password": "Sup3r-Secret-pw",
                 "ORM_PACK_VAR_mlflow_password": "correct-horse-battery",
                 "ORM_PACK_VAR_allowed_ingress_cidr": "203.0.113.7/32"}


def _run(command, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def distributions(tmp_path_factory) -> dict:
    """The sdist and, built from it, the wheel, from a copy of the checkout (no build files left behind)."""
    work = tmp_path_factory.mktemp("dist")
    source = work / "source"
    shutil.copytree(REPO_ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv*", ".tools", "__pycache__", "*.egg-info", "build", "dist", ".pytest_cache", "bundle"))
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", work / "out", source], timeout=600)
    return {"wheel": next((work / "out").glob("*.whl")), "sdist": next((work / "out").glob("*.tar.gz"))}


def _requirement(kind: str, distributions: dict) -> str:
    return f"{distributions['wheel']}[local]" if kind == "local" else str(distributions[kind])


@pytest.fixture(scope="module")
def fresh_venvs(request, distributions, tmp_path_factory) -> dict:
    """kind -> the future bin directory of a fresh venv with that install ("wheel", "sdist", "local": the wheel
    with its [local] extra), for the kinds this run's tests use, all made at once: pip waits on the package
    index as much as it computes. A failed install fails only the test that uses it."""
    kinds = set()
    for item in request.session.items:
        if item.module is request.module and "fresh_venvs" in item.fixturenames:
            kinds.add(item.callspec.params.get("kind", "local") if hasattr(item, "callspec") else "local")
    paths = {kind: tmp_path_factory.mktemp(f"venv-{kind}") / "venv" for kind in sorted(kinds)}
    with ThreadPoolExecutor(max_workers=len(paths) or 1) as pool:
        futures = {kind: pool.submit(_fresh_venv, path, _requirement(kind, distributions))
                   for kind, path in paths.items()}
        yield futures


def _fresh_venv(path: Path, requirement: str) -> Path:
    _run([sys.executable, "-m", "venv", path], timeout=300)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    # --no-compile: byte-compiling site-packages is most of an install's time and changes nothing it tests
    _run([path / "bin" / "pip", "install", "-q", "--no-compile", "--disable-pip-version-check", requirement],
         timeout=1200, env=env)
    return path / "bin"


def test_the_sdist_carries_exactly_the_stack_files(distributions):
    import tarfile

    from orm_pack.stack import allowlist

    with tarfile.open(distributions["sdist"]) as archive:
        names = [m.name.split("/", 1)[1] for m in archive.getmembers() if m.isfile()]
    stack_parts = sorted(n for n in names if n in ("schema.yaml", "VERSION") or n.split("/")[0] in ("stack", "userdata", "docker", "oke"))
    assert stack_parts == sorted(relative for relative, _ in allowlist.select(REPO_ROOT))


@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_every_command_works_from_a_clean_install(kind, fresh_venvs, fake, oci_config, tmp_path):
    bin_dir = fresh_venvs[kind].result()
    extras = _run([bin_dir / "python", "-c", "import importlib.util as u; "
                   "print([m for m in ('requests', 'mlflow', 'pytest') if u.find_spec(m)])"]).stdout
    assert extras.strip() == "[]", "the clean install brought packages only the extras should"
    home = tmp_path / "home"
    home.mkdir()
    workdir = tmp_path / "work"  # not a checkout: build uses the stack bundled in the package
    workdir.mkdir()

    def orm_pack(*args, env=None, cloud=True):
        command = [bin_dir / "orm-pack", *args]
        if cloud:
            command += ["--config-file", oci_config, "--endpoint", fake.url, "--poll-interval", "0.2",
                        "--max-attempts", "1"]
        return subprocess.run([str(c) for c in command], capture_output=True, text=True, cwd=workdir, timeout=600,
                              env=cli_env(home, {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", **(env or {})}),
                              stdin=subprocess.DEVNULL)

    version = orm_pack("--version", cloud=False)
    assert version.returncode == 0 and version.stdout.startswith("orm-pack "), version

    built = orm_pack("build", "-o", "stack.zip", "--json", cloud=False)
    assert built.returncode == 0, built.stderr
    assert "site-packages/orm_pack/bundle" in json.loads(built.stdout)["source"]

    # the OKE manifests come with the package too: rendered from the bundle, offline
    settings_file = Path(__file__).resolve().parents[1] / "oke" / "settings.json"
    rendered = orm_pack("oke", "deploy", "--settings", settings_file, "--dry-run", cloud=False)
    assert rendered.returncode == 0, rendered.stderr
    assert "kind: Deployment" in rendered.stdout and "name: mlflow-migrate" in rendered.stdout

    # the real stack, as built from the bundle, plans in Resource Manager
    planned = orm_pack("plan", "--compartment", COMPARTMENT, "--stack-name", "real", "--zip", "stack.zip",
                       env=STACK_SECRETS)
    assert planned.returncode == 0, planned.stderr + planned.stdout
    assert "Estimated cost:" in planned.stdout and "to add, 0 to change, 0 to destroy." in planned.stdout
    assert not any(secret in planned.stdout + planned.stderr for secret in STACK_SECRETS.values()
                   if "/" not in secret)

    common = ("--compartment", COMPARTMENT, "--stack-name", "small")
    applied = orm_pack("apply", *common, "--source", str(FIXTURE_SOURCE), "--auto-approve")
    assert applied.returncode == 0, applied.stderr + applied.stdout
    assert "MLflow: https://" in applied.stdout
    outputs = orm_pack("outputs", *common, "--json")
    assert outputs.returncode == 0, outputs.stderr
    apply_job = json.loads(outputs.stdout)["job_id"]
    status = orm_pack("status", *common)
    assert status.returncode == 0 and apply_job in status.stdout, status
    logs = orm_pack("logs", apply_job)
    assert logs.returncode == 0 and "Apply complete!" in logs.stdout, logs
    destroyed = orm_pack("destroy", *common, "--auto-approve")
    assert destroyed.returncode == 0, destroyed.stderr + destroyed.stdout

    local = orm_pack("local", "up", "--state-dir", str(tmp_path / "state"), cloud=False)
    assert local.returncode == 2, local
    assert local.stderr.strip().splitlines()[-1].endswith("pip install 'oci-mlflow-stack[local]'")


def test_the_local_extra_runs_local_up_and_down(fresh_venvs, tmp_path):
    bin_dir = fresh_venvs["local"].result()
    state_dir = tmp_path / "state"
    port, serving_port = free_port(), free_port()
    env = cli_env(tmp_path, {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})

    def local(*args):
        return subprocess.run([str(bin_dir / "orm-pack"), "local", *args, "--state-dir", str(state_dir)],
                              capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)

    up = local("up", "--port", str(port), "--serving-port", str(serving_port))
    try:
        assert up.returncode == 0, up.stderr + up.stdout
        assert wait_healthy(f"https://127.0.0.1:{port}/health") == 200
        status = local("status")
        assert status.returncode == 0 and status.stdout.count(" running ") == 3, status.stdout
    finally:
        down = local("down")
    assert down.returncode == 0, down.stderr
    assert local("status").returncode == 1
