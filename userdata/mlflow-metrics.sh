#!/usr/bin/env bash
# Posts this VM's metrics to OCI Monitoring, namespace mlflow (docker/lib/mlflow_oci/metrics.py in the role's
# image, with the VM's instance principal): the role's own (tracking: health, counts, database size; serving:
# health, the version served and whether it is the alias's), the proxy's requests since the last pass (from
# PROXY_REQUEST_LOG), and the memory and restarts of the role's unit and nginx. Started every minute by
# mlflow-metrics.timer.
#   sudo mlflow-metrics [--dry-run]     one pass (--dry-run: print the values, post nothing)
# How far the request log was read is kept in $STATE/requests-offset (the file's inode and byte offset): a
# rotated or truncated log is read from its start. A pass reads at most MLFLOW_METRICS_MAX_BYTES (32 MiB) of
# it, the newest. MLFLOW_CONF_DIR points at another /etc/mlflow, MLFLOW_STATE_DIR at another /var/lib/mlflow.
# Exit codes: 0 posted, 2 bad setup, 3 OCI Monitoring refused or could not be reached.
set -euo pipefail

CONF=${MLFLOW_CONF_DIR:-/etc/mlflow}
STATE=${MLFLOW_STATE_DIR:-/var/lib/mlflow}
MAX_BYTES=${MLFLOW_METRICS_MAX_BYTES:-33554432}

log() { printf '%s mlflow-metrics: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() {
  log "ERROR: $2"
  exit "$1"
}

dry_run=()
case $# in
  0) ;;
  1) [[ $1 == --dry-run ]] || die 2 "usage: $0 [--dry-run]"; dry_run=(--dry-run) ;;
  *) die 2 "usage: $0 [--dry-run]" ;;
esac
[[ $MAX_BYTES =~ ^[1-9][0-9]*$ ]] || die 2 "MLFLOW_METRICS_MAX_BYTES must be a whole number of bytes (got '$MAX_BYTES')"
[[ -f $CONF/proxy.env ]] || die 2 "$CONF/proxy.env is missing: is this an MLflow VM?"
set -a
# shellcheck source=/dev/null
. "$CONF/proxy.env"
set +a
case ${MLFLOW_IMAGE:-} in
  */mlflow-tracking:*) role=tracking ;;
  */mlflow-serving:*) role=serving ;;
  *) die 2 "$CONF/proxy.env must set MLFLOW_IMAGE to the tracking or serving image (got '${MLFLOW_IMAGE:-}')" ;;
esac
[[ -f $CONF/$role.env ]] || die 2 "$CONF/$role.env is missing"
install -d -m 0700 "$STATE"

# The request lines nginx wrote since the last pass.
requests=$(mktemp)
trap 'rm -f "$requests"' EXIT
offset_file=$STATE/requests-offset
if [[ -n ${PROXY_REQUEST_LOG:-} && -f $PROXY_REQUEST_LOG ]]; then
  read -r inode size < <(stat -c '%i %s' "$PROXY_REQUEST_LOG")
  read -r last_inode last_offset 2>/dev/null <"$offset_file" || true
  from=0
  [[ ${last_inode:-} == "$inode" && ${last_offset:-0} =~ ^[0-9]+$ && $last_offset -le $size ]] && from=$last_offset
  ((size - from <= MAX_BYTES)) || from=$((size - MAX_BYTES))  # the newest; a cut first line is skipped
  tail -c "+$((from + 1))" "$PROXY_REQUEST_LOG" | head -c "$((size - from))" >"$requests"
fi

# Restarts of the role's container unit and the proxy, and the proxy's memory, as systemd counts them; the
# container's memory as podman does (its processes are in a cgroup of their own, not the unit's).
units=$(systemctl show -p Id -p MemoryCurrent -p NRestarts "mlflow-$role.service" nginx.service) ||
  log "systemctl show failed: no restart figures this pass"
container_memory=$(podman stats --no-stream --format '{{.MemUsage}}' "mlflow-$role" 2>/dev/null) ||
  container_memory=""  # not running: mlflow.up says so

if [[ $role == tracking ]]; then
  image_args=("$MLFLOW_IMAGE" metrics)  # its entrypoint makes the database URL and drops the administrator
else
  image_args=(--entrypoint python3 "$MLFLOW_IMAGE" -m mlflow_oci.metrics)
fi
status=0
podman run --rm -i --network host --volume /var/lib/mlflow/tls:/opt/mlflow/tls:ro,z \
  --env-file "$CONF/$role.env" --env MLFLOW_OCI_AUTH=instance_principal --env PYTHONPATH=/opt/mlflow/lib \
  --env MLFLOW_METRICS_UNITS="$units" --env MLFLOW_METRICS_CONTAINER_MEMORY="$container_memory" \
  "${image_args[@]}" --role "$role" --requests - "${dry_run[@]}" <"$requests" || status=$?

# Requests read are counted once: after a post OCI refused too (a minute missing beats a minute counted twice).
if [[ -n ${inode:-} && ${#dry_run[@]} -eq 0 && $status != 2 ]]; then
  printf '%s %s\n' "$inode" "$size" >"$offset_file.new"
  mv "$offset_file.new" "$offset_file"
fi
case $status in
  0) log "posted" ;;
  2) die 2 "the metrics pass refused its settings (above)" ;;
  *) die 3 "OCI Monitoring refused some metrics or could not be reached (metrics exit $status)" ;;
esac
