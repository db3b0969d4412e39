"""Find the external tools the tests need.

A tool that is missing skips the test on a developer machine, but fails it when CI=true:
.ci/run installs every tool, so a missing one in CI is a broken install, not a reason to skip.
"""
import functools
import os
import shutil
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
CHECKOV_VENV_BIN = REPO_ROOT / ".venv-checkov" / "bin"
TOOLS_DIR = REPO_ROOT / ".tools"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def missing(what: str, how: str):
    """Skip locally, fail in CI."""
    message = f"{what} is not installed ({how})"
    if in_ci():
        pytest.fail(message + "; .ci/run should have installed it", pytrace=False)
    pytest.skip(message)


def find_binary(name: str, env_var: str | None = None, extra_dirs=()) -> str | None:
    override = os.environ.get(env_var) if env_var else None
    if override:
        return override if Path(override).exists() else None
    for directory in (VENV_BIN, *extra_dirs):
        candidate = Path(directory) / name
        if candidate.exists():
            return str(candidate)
    return shutil.which(name)


def require_binary(name: str, env_var: str | None = None, extra_dirs=(), how: str = "see .ci/run") -> str:
    path = find_binary(name, env_var, extra_dirs)
    if not path:
        missing(name, how)
    return path


# Resource Manager runs Terraform 1.5.x only; no 1.5 binary can be had on this machine (its image has
# 1.11.x, PyPI offers 1.0.3), so the tests run the `terraform` on PATH, which must be 1.5 or newer
# (the public CI workflow installs 1.5.7), and tests/stack/test_terraform_language.py keeps the HCL
# within 1.5's language.
OLDEST_TERRAFORM = (1, 5, 0)


def _version_of(binary: str) -> tuple[int, ...]:
    import json
    import subprocess

    out = subprocess.run([binary, "version", "-json"], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "CHECKPOINT_DISABLE": "1", "TF_CLI_CONFIG_FILE": "/dev/null"})
    text = json.loads(out.stdout)["terraform_version"]
    return tuple(int(p) for p in text.split("-")[0].split("."))


@functools.lru_cache(maxsize=1)
def _terraform_on_path() -> tuple[str, tuple[int, ...]] | None:
    binary = os.environ.get("TERRAFORM_BINARY") or shutil.which("terraform")
    return (binary, _version_of(binary)) if binary else None


def terraform() -> str:
    """The Terraform the tests run: `terraform` on PATH (or $TERRAFORM_BINARY), 1.5 or newer."""
    found = _terraform_on_path()
    if found is None:
        missing("Terraform", "terraform 1.5 or newer on PATH")
    binary, version = found
    if version < OLDEST_TERRAFORM:
        missing(f"Terraform {'.'.join(map(str, OLDEST_TERRAFORM))} or newer",
                f"{binary} is {'.'.join(map(str, version))}, older than what Resource Manager runs")
    return binary


def terraform_binaries() -> list[tuple[str, str]]:
    """(label, path) of every Terraform to test with: the one on PATH."""
    binary = terraform()
    return [(".".join(map(str, _terraform_on_path()[1])), binary)]


# Earlier MLflow releases a deployment may still run, each unpacked beside the project by .ci/run
# (pip install --no-deps --target .tools/mlflow-<version> mlflow mlflow-skinny mlflow-tracing). Put first on
# PYTHONPATH of this venv's interpreter, one shadows the pinned MLflow; its dependencies are the venv's.
OLDER_MLFLOWS = ("3.15.2", "3.16.1")
PREVIOUS_MLFLOW = "3.16.1"  # the previous minor version, which the auth upgrade test starts from


def older_mlflow(version: str) -> Path:
    """The directory of an earlier MLflow (one of OLDER_MLFLOWS), for the upgrade tests."""
    if version not in OLDER_MLFLOWS:
        raise ValueError(f"MLflow {version} is not one of {OLDER_MLFLOWS}; add it there and to .ci/run")
    target = TOOLS_DIR / f"mlflow-{version}"
    if not (target / "mlflow" / "__init__.py").exists():
        missing(f"MLflow {version}", f"pip install --no-deps --target {target} mlflow=={version} "
                f"mlflow-skinny=={version} mlflow-tracing=={version}")
    return target


def previous_mlflow() -> Path:
    """MLflow's previous minor version, PREVIOUS_MLFLOW."""
    return older_mlflow(PREVIOUS_MLFLOW)
