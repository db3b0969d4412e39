"""A stand-in for the one podman command the VMs' host scripts run with an image:

    podman run --rm --network host --env K=V ... --entrypoint python3 IMAGE ARG...

It runs `python3 ARG...` natively with this interpreter (which has the image's locked `oci` SDK), the
`--env` settings and the repository's docker/lib on PYTHONPATH, as the image has it under /opt/mlflow/lib.
Any other podman command is only recorded. Every call is appended to `calls_log`."""
import sys
from pathlib import Path

LIB = Path(__file__).resolve().parents[2] / "docker" / "lib"

SCRIPT = """#!/bin/bash
echo "podman $*" >> {calls_log}
[[ $1 == run ]] || exit 0
shift
settings=()
while (($#)); do
  case $1 in
    --env) settings+=("$2"); shift 2 ;;
    --network | --entrypoint) shift 2 ;;
    -*) shift ;;
    *) shift; break ;;  # the image
  esac
done
exec env "${{settings[@]}}" PYTHONPATH={lib} {python} "$@"
"""


def write(path: Path, calls_log: Path) -> Path:
    path.write_text(SCRIPT.format(calls_log=calls_log, lib=LIB, python=sys.executable))
    path.chmod(0o755)
    return path
