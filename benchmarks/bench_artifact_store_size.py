"""What each candidate `oci://` artifact store adds to the tracking image: installed size and the
memory and time of loading it in an MLflow process, measured in fresh venvs that start from the
tracking image's own lock (docker/requirements-tracking.lock, which already holds the OCI SDK):

  ours     docker/lib/mlflow_oci (on PYTHONPATH; the OCI SDK only)
  oracle   Oracle's oci-mlflow plugin from PyPI (pulls oracle-ads and ocifs)

    .venv/bin/python benchmarks/bench_artifact_store_size.py [--keep DIR]

Needs the package index (network). Prints one line per candidate.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCK = REPO_ROOT / "docker" / "requirements-tracking.lock"
ORACLE_PLUGIN = "oci-mlflow==1.0.3"
LOAD = """
import json, resource, sys, time
start = time.perf_counter()
import mlflow
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
mlflow_loaded = time.perf_counter()
repo = get_artifact_repository("oci://bucket@namespace/artifacts")
import oci.object_storage, oci.secrets  # what either store needs to reach Object Storage
print(json.dumps({"repository": type(repo).__module__ + "." + type(repo).__name__,
                  "load_s": round(time.perf_counter() - mlflow_loaded, 2),
                  "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
"""


def site_packages_mib(venv: Path) -> float:
    total = sum(f.stat().st_size for f in (venv / "lib").rglob("*") if f.is_file() and "__pycache__" not in f.parts)
    return total / 2**20


def venv_with_lock(path: Path) -> Path:
    if (path / "bin" / "python").exists():  # --keep DIR from an earlier run
        return path
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    pip = [str(path / "bin" / "python"), "-m", "pip", "install", "-q", "--no-compile"]
    subprocess.run(pip + ["--require-hashes", "--no-deps", "--only-binary=:all:", "-r", str(LOCK)], check=True,
                   stderr=subprocess.DEVNULL)
    return path


def load(venv: Path, pythonpath: str | None) -> dict:
    env = dict(os.environ, OCI_CONFIG_FILE="/nonexistent")
    env.pop("PYTHONPATH", None)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    result = subprocess.run([str(venv / "bin" / "python"), "-c", LOAD], env=env, capture_output=True, text=True)
    if result.returncode:
        return {"error": result.stderr.strip().splitlines()[-1]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="build the venvs here and keep them")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-artifact-store-"))
    base = venv_with_lock(root / "lock")
    base_mib = site_packages_mib(base)
    print(f"tracking lock alone: {base_mib:.0f} MiB installed (without bytecode)")

    ours = load(base, str(REPO_ROOT / "docker" / "lib"))
    ours_mib = sum(f.stat().st_size for f in (REPO_ROOT / "docker" / "lib").rglob("*.py")) / 2**20
    print(f"ours:   +{ours_mib:.2f} MiB installed, {json.dumps(ours)}")

    oracle = venv_with_lock(root / "oracle")
    subprocess.run([str(oracle / "bin" / "python"), "-m", "pip", "install", "-q", "--no-compile", ORACLE_PLUGIN],
                   check=True, stderr=subprocess.DEVNULL)
    changed = subprocess.run([str(oracle / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
                             capture_output=True, text=True, check=True).stdout
    base_list = subprocess.run([str(base / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
                               capture_output=True, text=True, check=True).stdout
    added = sorted(set(changed.split()) - set(base_list.split()))
    print(f"oracle: +{site_packages_mib(oracle) - base_mib:.0f} MiB installed, {len(added)} packages added or "
          f"changed ({', '.join(added[:12])}{' …' if len(added) > 12 else ''}), {json.dumps(load(oracle, None))}")


if __name__ == "__main__":
    main()
