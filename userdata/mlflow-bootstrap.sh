#!/usr/bin/env bash
# Boot-time setup of an MLflow VM on Oracle Linux 8/9:
#   mlflow-bootstrap.sh tracking|serving               one attempt
#   mlflow-bootstrap.sh --until-done tracking|serving  attempts until one succeeds, pausing 30 s, 60 s,
#                                                      ... up to 15 min between them (the systemd unit
#                                                      mlflow-bootstrap@ROLE, started by cloud-init)
# It first fetches the role's docker/ files from the stack's runtime bucket (they do not fit in
# user_data) and unpacks them to /opt/mlflow/src once their SHA-256 matches the one the stack wrote
# into /etc/mlflow/runtime.env; then it installs podman and nginx from the OS repositories, pulls the
# release's image or builds it from /opt/mlflow/src, opens the host firewall and SELinux for the
# proxy, installs the VM's TLS certificate from the stack's CA (mlflow-refresh-tls), renders the nginx
# auth proxy and starts the systemd units (with the certificate's refresh timer). On the tracking VM it first runs
# the image once in `migrate` mode: the database is migrated after the image's pre-checks, and when they refuse
# (nothing changed) the VM runs the MLflow version that last served the database instead, saying why in this log
# and in /var/lib/mlflow/upgrade-refused (an upgrade in the form that the database is not ready for leaves
# MLflow as it was). On the serving VM it also bars the
# model server's user from the instance metadata service (docker/serving/model-egress.sh, nftables; the
# serving unit loads it again before every start). Idempotent: running it again
# (e.g. `sudo /usr/local/sbin/mlflow-bootstrap.sh tracking`) repairs a half-finished boot.
# Needs bash, curl, sha256sum and a Python 3 (python3, else EL8's /usr/libexec/platform-python, the
# one dnf and cloud-init run on), all in Oracle Linux 8/9 images; the rest comes from dnf.
# Every step is logged with a UTC timestamp to /var/log/mlflow-bootstrap.log.
# MLFLOW_BOOTSTRAP_ROOT prefixes every path it writes (the tests run it in a scratch tree), and
# MLFLOW_BOOTSTRAP_RETRY_SECONDS / _RETRY_MAX_SECONDS / _STEP_DELAY change its pauses.
set -euo pipefail

ROOT=${MLFLOW_BOOTSTRAP_ROOT:-}
LOG=$ROOT/var/log/mlflow-bootstrap.log
SRC=$ROOT/opt/mlflow/src
CONF=$ROOT/etc/mlflow
STATE=$ROOT/var/lib/mlflow
NGINX_CONF_D=$ROOT/etc/nginx/conf.d
OPC_HOME=$ROOT/home/opc

if [[ ${1:-} == --until-done ]]; then
  ROLE=${2:-}
  delay=${MLFLOW_BOOTSTRAP_RETRY_SECONDS:-30}
  max_delay=${MLFLOW_BOOTSTRAP_RETRY_MAX_SECONDS:-900}
  attempt=1
  mkdir -p "$(dirname "$LOG")"
  until "$BASH" "$0" "$ROLE"; do
    printf '%s [%s] attempt %d failed; the next one in %ds (sudo journalctl -u mlflow-bootstrap@%s -f)\n' \
      "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$ROLE" "$attempt" "$delay" "$ROLE" | tee -a "$LOG" >&2
    sleep "$delay"
    delay=$((delay * 2 > max_delay ? max_delay : delay * 2))
    attempt=$((attempt + 1))
  done
  mkdir -p "$STATE"
  touch "$STATE/bootstrap-$ROLE.done"
  exit 0
fi

ROLE=${1:-}

log() { printf '%s [%s] %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${ROLE:-bootstrap}" "$*" | tee -a "$LOG" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}
# retry TRIES DELAY_SECONDS COMMAND...: the reserved public IP is attached a little after the VM
# starts, so the first package downloads can fail for a minute.
retry() {
  local tries=$1 delay=${MLFLOW_BOOTSTRAP_STEP_DELAY:-$2} attempt=1
  shift 2
  until "$@" >>"$LOG" 2>&1; do
    ((attempt < tries)) || return 1
    log "attempt $attempt/$tries failed, retrying in ${delay}s: $*"
    sleep "$delay"
    attempt=$((attempt + 1))
  done
}
step() { log "step: $*"; }
# par_get OUTPUT URL_VARIABLE: download a pre-authenticated request named by a variable, so that
# retry's log line names the variable and the URL stays out of the log.
par_get() { curl -fsS --max-time 120 -o "$1" "${!2}"; }

# unpack_runtime_files BUNDLE: writes each file of a verified runtime bundle (a JSON object of
# repository path -> base64 content) to $SRC/<path>, mode 0644 as cloud-init's write_files gave them
# (the scripts are run through bash). Every path is checked before any file is written: a relative
# path of plain names, no `.` or `..` and nothing absolute, that stays under $SRC once symlinks are
# resolved. Prints the number of files; on a refusal, one line saying why, and exits non-zero.
# Python 3.6 syntax at most (EL8's platform-python), run isolated from PYTHON* settings.
unpack_runtime_files() {
  "$PYTHON" -I - "$SRC" "$1" <<'PY'
import base64
import binascii
import json
import os
import sys

src, bundle = sys.argv[1], sys.argv[2]
try:
    with open(bundle, "rb") as f:
        files = json.loads(f.read().decode("utf-8"))
except ValueError as exc:
    sys.exit("not a JSON object of path -> base64 content ({})".format(exc))
if not isinstance(files, dict) or not files:
    sys.exit("not a JSON object of path -> base64 content")
root = os.path.realpath(src)
decoded = {}
for path, content in sorted(files.items()):
    parts = path.split("/")
    if path.startswith("/") or "\0" in path or any(part in ("", ".", "..") for part in parts):
        sys.exit("refusing {!r}: not a relative path inside {}".format(path, src))
    target = os.path.join(root, *parts)
    if os.path.commonpath([root, os.path.realpath(target)]) != root:
        sys.exit("refusing {!r}: it leads outside {}".format(path, src))
    try:
        decoded[target] = base64.b64decode(content.encode("ascii"), validate=True)
    except (AttributeError, UnicodeEncodeError, binascii.Error):
        sys.exit("refusing {!r}: its content is not base64".format(path))
for target, data in sorted(decoded.items()):
    os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
    part = target + ".part"
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(part, 0o644)
    os.replace(part, target)
print(len(decoded))
PY
}

# The tracking server's own container options (userdata/container.service.tftpl), for a one-off run.
tracking_run() {
  podman run --rm --network host --volume "$STATE/tls:/opt/mlflow/tls:ro,z" --env-file "$CONF/tracking.env" "$@"
}

# migrate_outcome EXIT_CODE OUTPUT: what a `migrate` run of the tracking image did. "migrated": the schema is
# at the image's head; "refused": its pre-checks refused the migration and changed nothing (the entrypoint
# exits 3 and init_db.py logs a `REFUSED: <reason>` line per problem; an image from before that exit code
# reported it as 2, so the lines decide too); "failed": anything else (the database not reachable yet, a setting).
migrate_outcome() {
  if [[ $1 == 0 ]]; then
    echo migrated
  elif [[ $1 == 3 ]] || grep -q ' init_db: REFUSED: ' <<<"$2"; then
    echo refused
  else
    echo failed
  fi
}

# supported_version VERSION: the version of MLFLOW_VERSIONS that VERSION names (itself, or the one of that
# minor release when the database's journal knew only its minor, e.g. 3.16); fails when there is none.
supported_version() {
  local known versions=${MLFLOW_VERSIONS:-}
  for known in ${versions//,/ }; do
    if [[ $1 == "$known" || $1 == "${known%.*}" ]]; then
      echo "$known"
      return 0
    fi
  done
  return 1
}

# refusal MESSAGE FIXES: /var/lib/mlflow/upgrade-refused: the time and MESSAGE on its first line, then FIXES (lines
# "fix: <SQL>"), which `mlflow-upgrade status` prints.
refusal() {
  {
    printf '%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$1"
    [[ -z $2 ]] || printf '%s\n' "$2"
  } >"$STATE/upgrade-refused"
}

# migrate_or_fall_back: runs the new image once in migrate mode (the first boot's SQL, then the migration
# under the database's lock, after the pre-checks). Refused: the version that last served the database (from
# the journal, through the image's plan mode, which changes nothing) is run instead, on the untouched
# database, when it is one this release runs; otherwise the attempt stops with the reasons. A failure of
# another kind is left to the service, which retries on its own (Restart=on-failure).
migrate_or_fall_back() {
  local output code=0 reasons plan served version fallback message
  output=$(tracking_run "$IMAGE" migrate 2>&1) || code=$?
  printf '%s
' "$output" >>"$LOG"
  case $(migrate_outcome "$code" "$output") in
    migrated)
      log "database: at the head of MLflow ${MLFLOW_VERSION:-}'s schema"
      rm -f "$STATE/upgrade-refused"
      return 0
      ;;
    failed)
      log "database: the migrate run stopped (exit $code; its lines are above in $LOG); $SERVICE prepares the database itself at start and retries"
      return 0
      ;;
  esac
  reasons=$(sed -n 's/^.* init_db: REFUSED: //p' <<<"$output" | paste -sd ';' - | sed 's/;/; /g')
  reasons=${reasons:-its pre-checks refused it (see $LOG)}
  # The SQL that fixes each problem (init_db.py's "    fix: " lines) goes under the message in upgrade-refused.
  fixes=$(sed -n 's/^.* init_db:     fix: /fix: /p' <<<"$output")
  plan=$(tracking_run "$IMAGE" plan --json 2>>"$LOG") || true
  served=$("$PYTHON" -I -c 'import json, sys; print(json.load(sys.stdin).get("from_mlflow") or "")' <<<"$plan" 2>>"$LOG") || served=""
  if version=$(supported_version "$served") && [[ $version != "${MLFLOW_VERSION:-}" ]]; then
    fallback=$(bash "$ROOT/usr/local/sbin/mlflow-upgrade" image "$version" 2>>"$LOG") ||
      die "upgrade to MLflow ${MLFLOW_VERSION:-} refused: $reasons; MLflow $version's image, which last served this database, could not be had (see $LOG)"
    podman tag "$fallback" "$IMAGE"
    message="upgrade to MLflow ${MLFLOW_VERSION:-} refused: $reasons; running MLflow $version, which last served this database, on the untouched database"
    refusal "$message" "$fixes"
    log "$message"
    return 0
  fi
  message="upgrade to MLflow ${MLFLOW_VERSION:-} refused: $reasons; the database was last served by MLflow ${served:-unknown}, which this release does not run: fix what the pre-checks name, or restore the backup (orm-pack upgrade rolls back)"
  refusal "$message" "$fixes"
  die "$message"
}

case $ROLE in
  tracking)
    SERVICE=mlflow-tracking
    DOCKERFILE=docker/Dockerfile-tracking
    PORT=443
    PACKAGES=()
    ;;
  serving)
    SERVICE=mlflow-serving
    DOCKERFILE=docker/Dockerfile-serving
    PORT=1234
    PACKAGES=(nftables)
    ;;
  *) die "usage: $0 [--until-done] tracking|serving" ;;
esac
IMAGE=localhost/$SERVICE:latest
[[ $EUID -eq 0 ]] || die "run as root (sudo $0 $ROLE)"
for f in "$CONF/proxy.env" "$CONF/$ROLE.env" "$CONF/image.env" "$CONF/runtime.env"; do
  [[ -f $f ]] || die "$f is missing: cloud-init did not write it (see /var/log/cloud-init-output.log)"
done
PYTHON=$(command -v python3 || command -v /usr/libexec/platform-python) ||
  die "neither python3 nor /usr/libexec/platform-python is installed"
set -a
# shellcheck source=/dev/null
. "$CONF/runtime.env"
set +a

step "fetch the $ROLE docker/ files from Object Storage into $SRC"
# The stack's runtime bucket (runtime.tf), through a read-only pre-authenticated request for that one
# object; nothing in it is used before it matches the SHA-256 in runtime.env.
BUNDLE=$STATE/runtime-$ROLE.json
install -d -m 0755 "$STATE" "$SRC"
rm -f "$BUNDLE.part"
retry 20 15 par_get "$BUNDLE.part" RUNTIME_FILES_URL ||
  die "could not download the runtime files from Object Storage (network or egress rules; see $LOG)"
if ! sha256sum --check --status <<<"$RUNTIME_FILES_SHA256  $BUNDLE.part"; then
  rm -f "$BUNDLE.part"
  die "the downloaded runtime files do not match their SHA-256 from the stack"
fi
mv "$BUNDLE.part" "$BUNDLE"
unpacked=$(unpack_runtime_files "$BUNDLE" 2>&1) ||
  die "the runtime files were not unpacked: ${unpacked##*$'\n'}"
log "runtime files: $unpacked files in $SRC"
[[ -f $SRC/$DOCKERFILE ]] || die "$SRC/$DOCKERFILE is missing from the runtime files"

step "install podman, nginx, httpd-tools, openssl, the SELinux tools${PACKAGES[*]:+ and ${PACKAGES[*]}} from the OS repositories"
retry 30 20 dnf -y install podman nginx httpd-tools openssl policycoreutils-python-utils firewalld "${PACKAGES[@]}" ||
  die "dnf could not install the packages (network or repository problem; see $LOG)"

step "allow nginx to proxy to localhost and to listen on port $PORT (SELinux)"
if command -v selinuxenabled >/dev/null && selinuxenabled; then
  setsebool -P httpd_can_network_connect 1
  if ! semanage port -l | grep -E '^http_port_t ' | grep -qw "$PORT"; then
    semanage port -a -t http_port_t -p tcp "$PORT" 2>>"$LOG" || semanage port -m -t http_port_t -p tcp "$PORT"
  fi
fi

step "open port $PORT/tcp in the host firewall"
if systemctl is-active --quiet firewalld; then
  firewall-cmd --quiet --permanent --add-port="$PORT/tcp"
  firewall-cmd --quiet --reload
else
  firewall-offline-cmd --quiet --add-port="$PORT/tcp"
fi

if [[ $ROLE == serving ]]; then
  step "bar the model server's user from the instance metadata service (nftables)"
  bash "$SRC/docker/serving/model-egress.sh" 2>>"$LOG" ||
    die "nft did not load $SRC/docker/serving/model-egress.sh (see $LOG)"
fi

set -a
# shellcheck source=/dev/null
. "$CONF/image.env"
set +a
# The tracking image runs MLFLOW_VERSION (the form's mlflow_version): built with that build argument, from
# that version's lock when it is not this release's own (the first of MLFLOW_VERSIONS).
LOCK=$SRC/docker/requirements-$ROLE.lock
LOCK_URL=REQUIREMENTS_LOCK_URL
LOCK_SHA256=$REQUIREMENTS_LOCK_SHA256
BUILD_ARGS=()
if [[ $ROLE == tracking && -n ${MLFLOW_VERSION:-} ]]; then
  BUILD_ARGS=(--build-arg "MLFLOW_VERSION=$MLFLOW_VERSION")
  versions=${MLFLOW_VERSIONS:-$MLFLOW_VERSION}
  if [[ $MLFLOW_VERSION != "${versions%%,*}" ]]; then
    LOCK=$SRC/docker/requirements-tracking-$MLFLOW_VERSION.lock
    LOCK_URL=REQUIREMENTS_LOCK_URL_${MLFLOW_VERSION//./_}
    sha_variable=REQUIREMENTS_LOCK_SHA256_${MLFLOW_VERSION//./_}
    LOCK_SHA256=${!sha_variable:-}
  fi
fi
step "pull the release's $ROLE image${RELEASED_IMAGE:+ ($RELEASED_IMAGE)}, else build it from $SRC/$DOCKERFILE"
if [[ -n ${RELEASED_IMAGE:-} ]] && retry 3 20 podman pull "$RELEASED_IMAGE"; then
  podman tag "$RELEASED_IMAGE" "$IMAGE"
  log "image: pulled $RELEASED_IMAGE"
else
  if [[ -n ${RELEASED_IMAGE:-} ]]; then
    log "image: could not pull $RELEASED_IMAGE; building it from $SRC/$DOCKERFILE instead"
  fi
  # The Dockerfile installs the hashed lock; it comes from Object Storage (runtime.tf) and must
  # match the SHA-256 the stack wrote into runtime.env. The URL is a read-only pre-authenticated
  # request for that one file: it is not echoed into the log.
  [[ -n ${!LOCK_URL:-} && -n $LOCK_SHA256 ]] || die "$CONF/runtime.env names no requirements lock ($LOCK_URL)"
  retry 20 15 par_get "$LOCK.part" "$LOCK_URL" ||
    die "could not download the requirements lock from Object Storage (network or egress rules; see $LOG)"
  sha256sum --check --status <<<"$LOCK_SHA256  $LOCK.part" ||
    die "the downloaded requirements lock does not match its SHA-256 from the stack"
  mv "$LOCK.part" "$LOCK"
  retry 5 30 podman build --pull=missing "${BUILD_ARGS[@]}" --tag "$IMAGE" --file "$SRC/$DOCKERFILE" "$SRC" ||
    die "podman build failed (see $LOG)"
  log "image: built from $SRC/$DOCKERFILE${MLFLOW_VERSION:+ (MLflow $MLFLOW_VERSION)}"
fi
if [[ $ROLE == tracking && -n ${MLFLOW_VERSION:-} ]]; then
  # mlflow-upgrade finds each version's image by its version
  podman tag "$IMAGE" "localhost/$SERVICE:$MLFLOW_VERSION"
fi

step "write the proxy's password file from the login in Vault, and the TLS directories"
set -a
# shellcheck source=/dev/null
. "$CONF/proxy.env"
set +a
install -d -m 0750 -o root -g nginx "$(dirname "$PROXY_HTPASSWD_FILE")"
# The VM's policy can take a minute to apply after the stack creates it: retry for about 5 minutes.
export MLFLOW_CONF_DIR=$CONF
retry 20 15 bash "$ROOT/usr/local/sbin/mlflow-refresh-login" --no-restart ||
  die "could not read the MLflow login from Vault: the policy of this VM's dynamic group must allow 'read secret-bundles' on it (see $LOG)"
install -d -m 0755 "$(dirname "$PROXY_TLS_CERT")" "$STATE/tls"
install -d -m 0700 "$(dirname "$PROXY_TLS_KEY")"
if [[ -n ${PROXY_TLS_CA_OCID:-} ]]; then
  step "install the TLS certificate from the stack's CA (OCI Certificates), and the CA's certificate"
  # Its policy, like the login's, can take a minute to apply: retry for about 5 minutes.
  export MLFLOW_STATE_DIR=$STATE
  retry 20 15 bash "$ROOT/usr/local/sbin/mlflow-refresh-tls" --no-reload ||
    die "could not read this VM's TLS certificate: the policy of its dynamic group must allow 'read leaf-certificate-bundles' on it (see $LOG)"
fi

step "render the nginx auth proxy (port $PORT -> $PROXY_UPSTREAM)"
# Only without a certificate from the CA (no PROXY_TLS_CA_OCID): it keeps a pair that exists.
bash "$SRC/docker/nginx/tls-self-signed.sh" 2>>"$LOG"
bash "$SRC/docker/nginx/render.sh" "$NGINX_CONF_D/$SERVICE.conf" 2>>"$LOG"
restorecon -R "$(dirname "$PROXY_HTPASSWD_FILE")" "$(dirname "$PROXY_TLS_CERT")" "$(dirname "$PROXY_TLS_KEY")" "$NGINX_CONF_D" 2>/dev/null || true
nginx -t 2>>"$LOG" || die "nginx -t rejected the rendered configuration (see $LOG)"

if [[ $ROLE == tracking ]]; then
  step "migrate the MLflow database with MLflow ${MLFLOW_VERSION:-}'s image, after its pre-checks"
  migrate_or_fall_back
fi

step "start $SERVICE and nginx (systemd, restart on failure)"
systemctl daemon-reload
systemctl enable --now "$SERVICE.service"
systemctl enable nginx.service
systemctl restart nginx.service
if [[ -n ${PROXY_TLS_CA_OCID:-} ]]; then
  systemctl enable --now mlflow-refresh-tls.timer
fi
if [[ $ROLE == tracking ]]; then
  systemctl enable --now mlflow-housekeeping.timer
fi
systemctl enable --now mlflow-ship-logs.timer mlflow-metrics.timer

step "write /home/opc/commands.txt"
install -d "$OPC_HOME"
install -m 0644 "$CONF/commands.txt" "$OPC_HOME/commands.txt"
chown opc:opc "$OPC_HOME/commands.txt" 2>/dev/null || true

log "done: $SERVICE is starting (journalctl -u $SERVICE -f); proxy on https://<public IP>:$PORT"
