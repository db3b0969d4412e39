#!/usr/bin/env bash
# Applies the MLflow login kept in Vault to this VM: run it after a new version of the login secret
# (the stack output mlflow_password_command names it), on each VM (with per-person users the serving
# VM's proxy keeps no login: there it only restarts the supervisor, which reads its own login):
#   sudo mlflow-refresh-login               update the proxy's password file, reload nginx, and on the
#                                           serving VM restart the supervisor (it reads the login at start)
#   sudo mlflow-refresh-login --no-restart  only the password file (the first boot uses this)
# The value is read with this VM's instance principal by the role's image (docker/lib), goes from its
# stdout into htpasswd's stdin and is written nowhere else. MLFLOW_CONF_DIR points at another
# /etc/mlflow. Exit codes: 0 done, 2 bad setup, 3 Vault refused or could not be reached.
set -euo pipefail

CONF=${MLFLOW_CONF_DIR:-/etc/mlflow}

log() { printf '%s mlflow-refresh-login: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() {
  log "ERROR: $2"
  exit "$1"
}

restart=true
case ${1:-} in
  --no-restart) restart=false ;;
  "") ;;
  *) die 2 "usage: $0 [--no-restart]" ;;
esac
[[ $EUID -eq 0 ]] || die 2 "run as root: sudo $0"
[[ -f $CONF/proxy.env ]] || die 2 "$CONF/proxy.env is missing: is this an MLflow VM?"
set -a
# shellcheck source=/dev/null
. "$CONF/proxy.env"
set +a
# With MLflow's own users the serving VM's proxy asks the tracking server (PROXY_AUTH=tracking) and keeps
# no login: nothing to write; the supervisor reads its own login (serving.env) when it restarts.
if [[ ${PROXY_AUTH:-proxy} != proxy && -z ${MLFLOW_UI_PASSWORD_SECRET_OCID:-} ]]; then
  log "PROXY_AUTH=$PROXY_AUTH: MLflow checks the logins, this proxy keeps no password file"
  if $restart && [[ -f $CONF/serving.env ]]; then
    systemctl restart mlflow-serving
    log "the serving supervisor restarted with the current version of its login"
  fi
  exit 0
fi
for name in PROXY_HTPASSWD_FILE MLFLOW_UI_USER MLFLOW_UI_PASSWORD_SECRET_OCID MLFLOW_IMAGE; do
  [[ -n ${!name:-} ]] || die 2 "$CONF/proxy.env must set $name"
done

new=$PROXY_HTPASSWD_FILE.new
rm -f "$new"
if ! podman run --rm --network host --env MLFLOW_OCI_AUTH=instance_principal --env PYTHONPATH=/opt/mlflow/lib \
  --entrypoint python3 "$MLFLOW_IMAGE" -m mlflow_oci.secrets print "$MLFLOW_UI_PASSWORD_SECRET_OCID" |
  htpasswd -iBc "$new" "$MLFLOW_UI_USER" 2>/dev/null; then
  rm -f "$new"
  die 3 "could not read the login from Vault (secret $MLFLOW_UI_PASSWORD_SECRET_OCID); nothing was changed"
fi
chmod 0640 "$new"
chown root:nginx "$new" 2>/dev/null || true
mv "$new" "$PROXY_HTPASSWD_FILE"
log "the login of $MLFLOW_UI_USER in $PROXY_HTPASSWD_FILE is the current version of $MLFLOW_UI_PASSWORD_SECRET_OCID"

if $restart; then
  systemctl reload nginx
  log "nginx reloaded"
  if [[ -f $CONF/serving.env ]]; then
    systemctl restart mlflow-serving
    log "the serving supervisor restarted with the new login"
  fi
fi
