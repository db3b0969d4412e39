#!/usr/bin/env bash
# Day two on the tracking VM: what an upgrade of MLflow would do to the database, and how the VM is.
# orm-pack upgrade runs it through OCI Run Command, whose commands run as the user ocarun:
#   sudo /usr/local/sbin/mlflow-upgrade plan VERSION
#   sudo /usr/local/sbin/mlflow-upgrade status
# (/etc/sudoers.d/mlflow-upgrade lets ocarun run this script as root and nothing else; sudo resets the
# environment, so only root can point it elsewhere).
#   plan VERSION   gets MLflow VERSION's tracking image (the release's from its registry, else built from
#                  /opt/mlflow/src with --build-arg MLFLOW_VERSION=VERSION), tagged
#                  localhost/mlflow-tracking:VERSION, and runs its entrypoint's `plan --json` with the
#                  tracking server's own podman options and settings. The JSON on stdout as one line,
#                  printed last (Run Command returns only the last 1 KB of a command's output), progress on
#                  stderr before it; the plan's exit code passed through (0: the upgrade may go on, 3: its
#                  pre-checks or rehearsal refuse it, the JSON says why; 2: the database cannot be read).
#                  Nothing in the database changes.
#   status         the last 40 lines of the bootstrap log and of the container's journal (neither holds a
#                  secret), then, last (Run Command returns the end of the output), the tracking service's
#                  state, the MLflow version the stack sets and the one its image runs, the versions this
#                  release runs, and the last refused upgrade (/var/lib/mlflow/upgrade-refused: the SQL that fixes
#                  each problem as "fix: " lines, then "refused: <why>").
#   image VERSION  gets that version's image as plan does and prints its tag (the boot's fallback to the
#                  version that last served the database: mlflow-bootstrap.sh).
# VERSION must be one of MLFLOW_VERSIONS in /etc/mlflow/image.env (the versions this release runs),
# exactly. Exit 2: usage or setup error; 1: the image could not be had.
# MLFLOW_BOOTSTRAP_ROOT prefixes every path (the tests run it in a scratch tree).
set -euo pipefail

ROOT=${MLFLOW_BOOTSTRAP_ROOT:-}
CONF=$ROOT/etc/mlflow
STATE=$ROOT/var/lib/mlflow
SRC=$ROOT/opt/mlflow/src
BOOT_LOG=$ROOT/var/log/mlflow-bootstrap.log
SERVICE=mlflow-tracking
REPOSITORY=localhost/mlflow-tracking

log() { printf '%s mlflow-upgrade: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() {
  log "ERROR: $2"
  exit "$1"
}
usage() { die 2 "usage: $0 plan VERSION | status | image VERSION${1:+ ($1)}"; }

[[ $EUID -eq 0 ]] || die 2 "run as root: sudo $0 ${*:-status}"
for f in "$CONF/image.env" "$CONF/runtime.env" "$CONF/tracking.env"; do
  [[ -f $f ]] || die 2 "$f is missing: this is not an MLflow tracking VM, or cloud-init has not run"
done
set -a
# shellcheck source=/dev/null
. "$CONF/image.env"
# shellcheck source=/dev/null
. "$CONF/runtime.env"
set +a
IFS=, read -r -a VERSIONS <<<"${MLFLOW_VERSIONS:-}"
PYTHON=$(command -v python3 || command -v /usr/libexec/platform-python) ||
  die 2 "neither python3 nor /usr/libexec/platform-python is installed"
((${#VERSIONS[@]} > 0)) || die 2 "$CONF/image.env names no MLFLOW_VERSIONS"

# supported VERSION: succeeds when VERSION is, character for character, one this release runs.
supported() {
  local known
  [[ $1 =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || return 1
  for known in "${VERSIONS[@]}"; do
    [[ $1 == "$known" ]] && return 0
  done
  return 1
}

# retry TRIES COMMAND...: Object Storage and the registry can fail for a moment.
retry() {
  local tries=$1 attempt=1
  shift
  until "$@"; do
    ((attempt < tries)) || return 1
    sleep "${MLFLOW_UPGRADE_RETRY_SECONDS:-15}"
    attempt=$((attempt + 1))
  done
}

# fetch_lock VERSION: the version's hashed requirements lock from the stack's runtime bucket (runtime.tf),
# at the path Dockerfile-tracking takes it from, once it matches the SHA-256 in runtime.env. The URL is a
# read-only pre-authenticated request: it is not printed.
fetch_lock() {
  local version=$1 url_var=REQUIREMENTS_LOCK_URL sha_var=REQUIREMENTS_LOCK_SHA256 lock=$SRC/docker/requirements-tracking.lock
  if [[ $version != "${VERSIONS[0]}" ]]; then
    url_var=REQUIREMENTS_LOCK_URL_${version//./_}
    sha_var=REQUIREMENTS_LOCK_SHA256_${version//./_}
    lock=$SRC/docker/requirements-tracking-$version.lock
  fi
  [[ -n ${!url_var:-} && -n ${!sha_var:-} ]] || die 2 "$CONF/runtime.env names no lock for MLflow $version ($url_var)"
  retry 5 curl -fsS --max-time 120 -o "$lock.part" "${!url_var}" ||
    die 1 "could not download MLflow $version's requirements lock from Object Storage"
  if ! sha256sum --check --status <<<"${!sha_var}  $lock.part"; then
    rm -f "$lock.part"
    die 1 "MLflow $version's downloaded requirements lock does not match its SHA-256 from the stack"
  fi
  mv "$lock.part" "$lock"
}

# version_image VERSION: makes localhost/mlflow-tracking:VERSION (kept once made) and prints that tag.
version_image() {
  local version=$1 tag=$REPOSITORY:$1 released_var=RELEASED_IMAGE_${1//./_}
  local released=${!released_var:-}
  if podman image exists "$tag"; then
    log "image: $tag is here"
  elif [[ -n $released ]] && retry 3 podman pull --quiet "$released" >&2; then
    podman tag "$released" "$tag"
    log "image: pulled $released as $tag"
  else
    [[ -z $released ]] || log "image: could not pull $released; building MLflow $version's image instead"
    [[ -f $SRC/docker/Dockerfile-tracking ]] ||
      die 2 "$SRC/docker/Dockerfile-tracking is missing: the first boot has not fetched the runtime files (see $BOOT_LOG)"
    fetch_lock "$version"
    log "image: building $tag from $SRC/docker/Dockerfile-tracking (a few minutes)"
    podman build --pull=missing --build-arg "MLFLOW_VERSION=$version" --tag "$tag" \
      --file "$SRC/docker/Dockerfile-tracking" "$SRC" >&2 ||
      die 1 "podman build of MLflow $version's image failed"
  fi
  printf '%s\n' "$tag"
}

# The tracking server's own container options (userdata/container.service.tftpl), for a one-off run.
tracking_run() {
  podman run --rm --network host --volume "$STATE/tls:/opt/mlflow/tls:ro,z" --env-file "$CONF/tracking.env" "$@"
}

mode=${1:-}
case $mode in
  plan | image)
    (($# == 2)) || usage
    supported "$2" || usage "VERSION must be one of ${VERSIONS[*]}, got $(printf '%q' "$2")"
    tag=$(version_image "$2")
    if [[ $mode == image ]]; then
      printf '%s\n' "$tag"
      exit 0
    fi
    log "plan: what MLflow $2 would do to the database (nothing is changed)"
    code=0
    plan=$(tracking_run "$tag" plan --json) || code=$?
    case $code in
      0) log "plan: MLflow $2 may upgrade this database" ;;
      3) log "plan: MLflow $2 would be refused: see the JSON's problems" ;;
      *) log "plan: exit $code: the plan could not be made (journalctl -u $SERVICE, or the lines above)" ;;
    esac
    # One line, and the last: Run Command hands back only the end of the output.
    compact=$("$PYTHON" -I -c 'import json, sys; print(json.dumps(json.load(sys.stdin), separators=(",", ":")))' \
      <<<"$plan" 2>/dev/null) || compact=$plan
    [[ -z $compact ]] || printf '%s\n' "$compact"
    exit "$code"
    ;;
  status)
    (($# == 1)) || usage
    state=$(systemctl is-active "$SERVICE" 2>/dev/null) || true
    running=$(podman run --rm --entrypoint python3 "$REPOSITORY:latest" -c \
      'import importlib.metadata as m; print(m.version("mlflow"))' 2>/dev/null) || running=unknown
    printf -- '--- last 40 lines of %s\n' "${BOOT_LOG#"$ROOT"}"
    tail -n 40 "$BOOT_LOG" 2>/dev/null || printf '(no bootstrap log yet)\n'
    printf -- '--- last 40 lines of journalctl -u %s\n' "$SERVICE"
    journalctl -u "$SERVICE" -n 40 --no-pager -o short-iso 2>/dev/null || printf '(no journal)\n'
    printf -- '---\n'
    printf 'service: %s %s\n' "$SERVICE" "${state:-unknown}"
    printf 'mlflow_version: %s (the stack), %s (the image it runs: %s:latest)\n' "${MLFLOW_VERSION:-unknown}" \
      "$running" "$REPOSITORY"
    printf 'versions: %s\n' "${VERSIONS[*]}"
    if [[ -s $STATE/upgrade-refused ]]; then
      # The fixes' SQL first, the refusal last: Run Command keeps the end of the output, and orm-pack reads
      # the last line.
      sed -n '2,$p' "$STATE/upgrade-refused"
      printf 'refused: %s\n' "$(sed -n 1p "$STATE/upgrade-refused")"
    else
      printf 'refused: none\n'
    fi
    ;;
  *) usage ;;
esac
