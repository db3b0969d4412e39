#!/usr/bin/env python3
"""Refresh the hashed lock files of the images: docker/requirements-<image>.txt -> requirements-<image>.lock.

    python docker/refresh_locks.py            # every image
    python docker/refresh_locks.py tracking   # one
    python docker/refresh_locks.py tracking-3.16.1   # the tracking image with another MLflow

A `tracking-<version>` image is the tracking image with `mlflow[auth]==<version>` and every other pin of
requirements-tracking.txt: its requirements-tracking-<version>.txt is written from that file first (so the
versions a deployment can come from and go back to never drift from the pinned image's other pins), then
locked like the others. Dockerfile-tracking's MLFLOW_VERSION build argument picks such a lock.

pip resolves each requirements file for CPython 3.11 on Linux x86_64 and on Linux aarch64 (the Arm A1
and A2 shapes), wheels only, without installing anything, and reports the exact file it would take
for each package with its SHA-256. The lock lists every package of both resolutions with the hashes of
those files, so `pip install --require-hashes --no-deps -r requirements-<image>.lock` in the
Dockerfiles installs the same bytes next year as today. It needs the package index (network).
Environment markers that test the machine (platform_machine) are evaluated for the machine running
this script; no requirement of the images uses one today.
"""
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PYTHON_VERSION = "3.11"
# glibc of the images' base (Debian 12: 2.36) and every manylinux level below it that wheels use
MANYLINUX = ["manylinux2014"] + [f"manylinux_2_{minor}" for minor in (17, 24, 26, 27, 28, 31, 34, 35, 36)]
ARCHITECTURES = ("x86_64", "aarch64")
MLFLOW_PIN = re.compile(r"^mlflow\[auth\]==(\S+)$", re.MULTILINE)
VERSIONED_TRACKING = re.compile(r"^tracking-(\d+\.\d+\.\d+)$")
# Where an older MLflow's own requirements refuse a pin of requirements-tracking.txt, the newest release
# it accepts, with the reason. MLflow 3.15.2 requires cryptography<50.
PIN_EXCEPTIONS = {"3.15.2": {"cryptography": "49.0.0"}}


def versioned_tracking_requirements(version: str) -> str:
    """requirements-tracking.txt with `mlflow[auth]==<version>` in place of its pin, the rest unchanged."""
    base = (HERE / "requirements-tracking.txt").read_text()
    if len(MLFLOW_PIN.findall(base)) != 1:
        raise SystemExit("requirements-tracking.txt must pin mlflow[auth]==<version> on exactly one line")
    header = (f"# Written by docker/refresh_locks.py tracking-{version} from requirements-tracking.txt: the "
              f"tracking image with MLflow {version}\n# (a version a deployment may come from or go back to); "
              "edit requirements-tracking.txt, not this file.\n")
    text = MLFLOW_PIN.sub(f"mlflow[auth]=={version}", base)
    for name, pinned in PIN_EXCEPTIONS.get(version, {}).items():
        text, count = re.subn(rf"^{re.escape(name)}==\S+$",
                              f"# the newest {name} that MLflow {version} accepts\n{name}=={pinned}", text,
                              flags=re.MULTILINE | re.IGNORECASE)
        if count != 1:
            raise SystemExit(f"requirements-tracking.txt must pin {name}==<version> on exactly one line")
    return header + text


def resolve(requirements: Path, architecture: str) -> dict[str, tuple[str, str]]:
    """name -> (version, sha256 of the wheel pip would install) on Linux `architecture`."""
    platforms = [arg for tag in MANYLINUX for arg in ("--platform", f"{tag}_{architecture}")]
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--dry-run", "--ignore-installed",
                        "--only-binary=:all:", "--python-version", PYTHON_VERSION, "--implementation", "cp",
                        "--abi", "cp" + PYTHON_VERSION.replace(".", ""), *platforms, "--target", scratch,
                        "--report", str(report), "-r", str(requirements)], check=True)
        installs = json.loads(report.read_text())["install"]
    return {item["metadata"]["name"].lower(): (item["metadata"]["version"],
                                              item["download_info"]["archive_info"]["hashes"]["sha256"])
            for item in installs}


def lock_text(image: str, resolutions: dict[str, dict]) -> str:
    names = sorted(set().union(*resolutions.values()))
    lines = [f"# Locked from requirements-{image}.txt for CPython {PYTHON_VERSION} on Linux "
             f"{' and '.join(ARCHITECTURES)} (wheels only): every package, with the SHA-256 of the wheel each",
             "# architecture installs. Refresh: python docker/refresh_locks.py " + image]
    for name in names:
        versions = {resolutions[arch][name][0] for arch in ARCHITECTURES if name in resolutions[arch]}
        if len(versions) != 1 or any(name not in resolutions[arch] for arch in ARCHITECTURES):
            for arch in ARCHITECTURES:
                if name in resolutions[arch]:
                    version, digest = resolutions[arch][name]
                    lines.append(f'{name}=={version} ; platform_machine == "{arch}" \\\n    --hash=sha256:{digest}')
            continue
        digests = sorted({resolutions[arch][name][1] for arch in ARCHITECTURES})
        lines.append(f"{name}=={versions.pop()} \\\n" + " \\\n".join(f"    --hash=sha256:{d}" for d in digests))
    return "\n".join(lines) + "\n"


def main(images: list[str]) -> int:
    images = images or sorted(p.stem.removeprefix("requirements-") for p in HERE.glob("requirements-*.txt"))
    for image in images:
        requirements = HERE / f"requirements-{image}.txt"
        versioned = VERSIONED_TRACKING.match(image)
        if versioned:
            requirements.write_text(versioned_tracking_requirements(versioned.group(1)))
        resolutions = {arch: resolve(requirements, arch) for arch in ARCHITECTURES}
        target = HERE / f"requirements-{image}.lock"
        target.write_text(lock_text(image, resolutions))
        print(f"{target.relative_to(HERE.parent)}: {len(set().union(*resolutions.values()))} packages")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
