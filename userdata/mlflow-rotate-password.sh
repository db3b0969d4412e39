#!/usr/bin/env bash
# Sets a new MLflow password on this VM. It takes any password the stack's form accepts (12-64
# printable characters without spaces, quotes or backslashes) and reads it from the terminal (asked
# twice) or from stdin (one line), never from the command line, where `ps` and the shell history
# would keep it:
#   sudo mlflow-rotate-password
#   sudo mlflow-rotate-password < new-password.txt
# It updates the proxy's password file (htpasswd) and /etc/mlflow/ui-password, and on the serving VM
# also the login its supervisor uses (MLFLOW_TRACKING_PASSWORD in /etc/mlflow/serving.env); then it
# reloads nginx and restarts the serving supervisor. MLFLOW_CONF_DIR points it at another directory.
set -euo pipefail

CONF=${MLFLOW_CONF_DIR:-/etc/mlflow}

log() { printf '%s mlflow-rotate-password: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 2
}

[[ $EUID -eq 0 ]] || die "run as root: sudo $0"
[[ -f $CONF/proxy.env ]] || die "$CONF/proxy.env is missing: is this an MLflow VM?"
set -a
# shellcheck source=/dev/null
. "$CONF/proxy.env"
set +a
[[ -n ${PROXY_HTPASSWD_FILE:-} && -n ${MLFLOW_UI_USER:-} ]] ||
  die "$CONF/proxy.env must set PROXY_HTPASSWD_FILE and MLFLOW_UI_USER"

if [[ -t 0 ]]; then
  read -rsp "New MLflow password: " password
  echo >&2
  read -rsp "The same again: " again
  echo >&2
  [[ $password == "$again" ]] || die "the two passwords differ; nothing was changed"
else
  IFS= read -r password || [[ -n ${password:-} ]] || die "no password on stdin"
fi

# The form's rule (schema.yaml, variables.tf): then no character needs escaping anywhere below.
((${#password} >= 12 && ${#password} <= 64)) || die "the password must be 12 to 64 characters long"
[[ $password =~ ^[[:print:]]+$ && $password != *[[:space:]\"\'\\]* ]] ||
  die "the password must be printable characters without spaces, quotes or backslashes"

# htpasswd and awk take the password from stdin and the environment, not from their arguments.
htpasswd -iB "$PROXY_HTPASSWD_FILE" "$MLFLOW_UI_USER" <<<"$password" 2>/dev/null ||
  die "htpasswd could not update $PROXY_HTPASSWD_FILE"
(umask 077 && printf '%s\n' "$password" >"$CONF/ui-password.new")
mv "$CONF/ui-password.new" "$CONF/ui-password"
log "updated the login of $MLFLOW_UI_USER in $PROXY_HTPASSWD_FILE and $CONF/ui-password"

if [[ -f $CONF/serving.env ]]; then
  NEW_PASSWORD=$password awk '
    /^MLFLOW_TRACKING_PASSWORD=/ { print "MLFLOW_TRACKING_PASSWORD=" ENVIRON["NEW_PASSWORD"]; done = 1; next }
    { print }
    END { if (!done) print "MLFLOW_TRACKING_PASSWORD=" ENVIRON["NEW_PASSWORD"] }
  ' "$CONF/serving.env" >"$CONF/serving.env.new"
  chmod 600 "$CONF/serving.env.new"
  mv "$CONF/serving.env.new" "$CONF/serving.env"
  log "updated MLFLOW_TRACKING_PASSWORD in $CONF/serving.env"
fi

systemctl reload nginx
if [[ -f $CONF/serving.env ]]; then
  systemctl restart mlflow-serving
fi
log "done: use the new password now (and set it on the other VM too)"
