#!/usr/bin/env bash
# Ships this VM's journal to OCI Logging (stack/logging.tf): what the MLflow units and nginx wrote since the last
# record shipped, at most MLFLOW_SHIP_LOGS_MAX records (5000) a pass, through the role's image
# (docker/lib/mlflow_oci/log_shipper.py, with the VM's instance principal): audit lines to the audit log, the rest
# to the service log, with secrets removed. Started every minute by mlflow-ship-logs.timer.
#   sudo mlflow-ship-logs        one pass
# The journal cursor of the last record shipped is kept in $STATE/log-cursor; a pass that fails keeps it, and the
# next one ships again from there. MLFLOW_CONF_DIR points at another /etc/mlflow, MLFLOW_STATE_DIR at another
# /var/lib/mlflow. Exit codes: 0 shipped, 2 bad setup, 3 OCI Logging refused or could not be reached.
set -euo pipefail

CONF=${MLFLOW_CONF_DIR:-/etc/mlflow}
STATE=${MLFLOW_STATE_DIR:-/var/lib/mlflow}
MAX=${MLFLOW_SHIP_LOGS_MAX:-5000}

log() { printf '%s mlflow-ship-logs: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() {
  log "ERROR: $2"
  exit "$1"
}

[[ $# -eq 0 ]] || die 2 "usage: $0"
[[ $MAX =~ ^[1-9][0-9]*$ ]] || die 2 "MLFLOW_SHIP_LOGS_MAX must be a whole number of records (got '$MAX')"
for file in logs.env proxy.env; do
  [[ -f $CONF/$file ]] || die 2 "$CONF/$file is missing: is this an MLflow VM?"
done
set -a
# shellcheck source=/dev/null
. "$CONF/logs.env"
# shellcheck source=/dev/null
. "$CONF/proxy.env"
set +a
[[ -n ${MLFLOW_LOG_OCID:-} && -n ${MLFLOW_IMAGE:-} ]] || die 2 "$CONF/logs.env must set MLFLOW_LOG_OCID, proxy.env MLFLOW_IMAGE"

install -d -m 0700 "$STATE"
cursor_file=$STATE/log-cursor
if [[ -s $cursor_file ]]; then
  from=(--after-cursor "$(<"$cursor_file")")
else
  from=(--boot)  # the first pass: this boot's records
fi
result=$(mktemp)
trap 'rm -f "$result"' EXIT

# head ends the journal's output early on purpose: only the shipper's status counts.
set +o pipefail
journalctl --output=json --no-pager "${from[@]}" --unit 'mlflow-*' --unit nginx.service |
  head -n "$MAX" |
  podman run --rm -i --network host \
    --env MLFLOW_OCI_AUTH=instance_principal --env PYTHONPATH=/opt/mlflow/lib \
    --env MLFLOW_LOG_OCID --env MLFLOW_AUDIT_LOG_OCID \
    --entrypoint python3 "$MLFLOW_IMAGE" -m mlflow_oci.log_shipper >"$result"
status=${PIPESTATUS[2]}
set -o pipefail

cursor=$(sed -n 's/.*"cursor": "\([^"]*\)".*/\1/p' "$result")
if [[ -n $cursor ]]; then
  printf '%s' "$cursor" >"$cursor_file.new"
  mv "$cursor_file.new" "$cursor_file"
fi
shipped=$(sed -n 's/.*"entries": \([0-9]*\).*/\1/p' "$result")
case $status in
  0) log "shipped ${shipped:-0} records" ;;
  *) die 3 "OCI Logging took ${shipped:-0} records, then refused or could not be reached (shipper exit $status); the next pass goes on from there" ;;
esac
