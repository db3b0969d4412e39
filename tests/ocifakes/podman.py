"""A stand-in for the one podman command the VMs' host scripts run with an image:

    podman run --rm --network host --env K=V ... --entrypoint python3 IMAGE ARG...

(`--env NAME` passes the host's value, as podman does; `--volume` is the host's own path here.)

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
    --env) if [[ $2 == *=* ]]; then settings+=("$2"); else settings+=("$2=${{!2-}}"); fi; shift 2 ;;  # NAME: the host's value
    --network | --entrypoint | --user | --volume | --security-opt) shift 2 ;;
    -*) shift ;;
    *) shift; break ;;  # the image
  esac
done
# python3 in the image is the one with the SDK: this interpreter's, for what the command runs in turn
exec env "${{settings[@]}}" PATH="{bindir}:$PATH" PYTHONPATH={lib} {python} "$@"
"""


def write(path: Path, calls_log: Path) -> Path:
    path.write_text(SCRIPT.format(calls_log=calls_log, lib=LIB, python=sys.executable, bindir=Path(sys.executable).parent))
    path.chmod(0o755)
    return path
