"""A stand-in for the one podman command the VMs' host scripts run with an image:

    podman run --rm --network host --env K=V ... --entrypoint python3 IMAGE ARG...

(`--env NAME` passes the host's value and `--env-file FILE` the file's, as podman does; `--volume` is the host's
own path here.)

It runs `python3 ARG...` natively with this interpreter (which has the image's locked `oci` SDK) and, as a
container, with none of the host's environment: only the `--env` settings (and the variables that route OCI's
endpoints to the fakes, which stand for the network). PYTHONPATH holds what that image's Dockerfile copies into
/opt/mlflow/lib, and nothing more: a module the serving image lacks fails here as in the image. An image of no
Dockerfile here is refused as podman refuses one it does not have. Any other podman command is only recorded.
Every call is appended to `calls_log`."""
import shutil
import sys
from pathlib import Path

from harness import dockerfiles

REPO = Path(__file__).resolve().parents[2]
LIB_IN_IMAGE = "/opt/mlflow/lib"
# The VMs build their images under these names (stack/cloudinit.tf) from these Dockerfiles.
IMAGES = {"mlflow-tracking": "Dockerfile-tracking", "mlflow-serving": "Dockerfile-serving"}

SCRIPT = """#!/bin/bash
echo "podman $*" >> {calls_log}
[[ $1 == run ]] || exit 0
shift
settings=()
while (($#)); do
  case $1 in
    --env) if [[ $2 == *=* ]]; then settings+=("$2"); else settings+=("$2=${{!2-}}"); fi; shift 2 ;;  # NAME: the host's value
    --env-file)  # KEY=VALUE lines; blank lines and # comments skipped, as podman reads them
      [[ -f $2 ]] || {{ echo "Error: open $2: no such file or directory" >&2; exit 125; }}
      while IFS= read -r line || [[ -n $line ]]; do
        [[ -z $line || $line == '#'* ]] || settings+=("$line")
      done <"$2"
      shift 2 ;;
    --network | --entrypoint | --user | --volume | --security-opt | --name) shift 2 ;;
    -*) shift ;;
    *) image=$1; shift; break ;;
  esac
done
name=${{image##*/}}
lib={libs}/${{name%%:*}}
if [[ ! -d $lib ]]; then
  echo "Error: $image: image not known" >&2
  exit 125
fi
# A container sees none of the host's environment, only its --env and --env-file settings. The variables that
# route OCI's endpoints to the test's fakes stand for the network, which the container shares (--network host).
network=()
for name in OCI_METADATA_BASE_URL NO_PROXY {endpoints}; do
  [[ -n ${{!name:-}} ]] && network+=("$name=${{!name}}")
done
# python3 in the image is the one with the SDK: this interpreter's, for what the command runs in turn
exec env -i "${{network[@]}}" HOME=/home/mlflow "${{settings[@]}}" PATH="{bindir}:/usr/bin:/bin" PYTHONPATH="$lib" \
  {python} "$@"
"""
# The fakes' endpoint overrides (tests/ocifakes/server.py runtime_env).
ENDPOINTS = ("MLFLOW_OCI_FEDERATION_ENDPOINT", "MLFLOW_OCI_SECRETS_ENDPOINT", "MLFLOW_OCI_OBJECT_STORAGE_ENDPOINT",
             "MLFLOW_OCI_CERTIFICATES_ENDPOINT", "MLFLOW_OCI_LOGGING_ENDPOINT", "MLFLOW_OCI_MONITORING_ENDPOINT")


def copied_into_lib(dockerfile: Path) -> list[tuple[Path, str]]:
    """(source in the repository, destination under /opt/mlflow/lib) of each COPY into the image's lib."""
    return [(REPO / source, destination.removeprefix(LIB_IN_IMAGE).strip("/"))
            for sources, destination in dockerfiles.copies(dockerfile) if destination.startswith(LIB_IN_IMAGE)
            for source in sources]


def image_lib(dockerfile: Path, target: Path) -> Path:
    """target filled as the image's /opt/mlflow/lib."""
    for source, destination in copied_into_lib(dockerfile):
        place = target / destination
        if source.is_dir():
            shutil.copytree(source, place, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            place.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, place / source.name)
    return target


def write(path: Path, calls_log: Path) -> Path:
    libs = path.parent / f"{path.name}-images"
    for name, dockerfile in IMAGES.items():
        image_lib(REPO / "docker" / dockerfile, libs / name)
    path.write_text(SCRIPT.format(calls_log=calls_log, libs=libs, python=sys.executable,
                                  bindir=Path(sys.executable).parent, endpoints=" ".join(ENDPOINTS)))
    path.chmod(0o755)
    return path
