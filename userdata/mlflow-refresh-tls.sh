#!/usr/bin/env bash
# Installs this VM's TLS certificate from the stack's private CA (OCI Certificates) for nginx, and the CA's
# certificate: at first boot (the bootstrap, before the proxy renders) and every 6 hours
# (mlflow-refresh-tls.timer). OCI renews the certificate before it expires; when the version read differs
# from the installed one, nginx reloads: no connection is dropped.
#   sudo mlflow-refresh-tls               read, install when changed, reload nginx
#   sudo mlflow-refresh-tls --no-reload   only install (the first boot uses this)
# Read with this VM's instance principal by the role's image (docker/lib/mlflow_oci): the certificate's
# OCID from the Vault secret PROXY_TLS_CERTIFICATE_OCID_SECRET_NAME (in MLFLOW_VAULT_OCID), then its bundle
# with the private key, written to PROXY_TLS_CERT / PROXY_TLS_KEY (the key readable by root only), and the
# CA's to PROXY_TLS_CA_FILE and, for the serving container, $STATE/tls/mlflow-ca.pem. Without
# PROXY_TLS_CA_OCID (a proxy set up by hand) there is nothing to do: tls-self-signed.sh makes a pair.
# MLFLOW_CONF_DIR points at another /etc/mlflow, MLFLOW_STATE_DIR at another /var/lib/mlflow.
# Exit codes: 0 done, 2 bad setup, 3 the certificate could not be read (the installed pair stays).
set -euo pipefail

CONF=${MLFLOW_CONF_DIR:-/etc/mlflow}
STATE=${MLFLOW_STATE_DIR:-/var/lib/mlflow}

log() { printf '%s mlflow-refresh-tls: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() {
  log "ERROR: $2"
  exit "$1"
}

reload=true
case ${1:-} in
  --no-reload) reload=false ;;
  "") ;;
  *) die 2 "usage: $0 [--no-reload]" ;;
esac
[[ $EUID -eq 0 ]] || die 2 "run as root: sudo $0"
[[ -f $CONF/proxy.env ]] || die 2 "$CONF/proxy.env is missing: is this an MLflow VM?"
set -a
# shellcheck source=/dev/null
. "$CONF/proxy.env"
set +a
if [[ -z ${PROXY_TLS_CA_OCID:-} ]]; then
  log "no PROXY_TLS_CA_OCID in $CONF/proxy.env: the proxy keeps the pair it has"
  exit 0
fi
for name in PROXY_TLS_CERT PROXY_TLS_KEY PROXY_TLS_CA_FILE PROXY_TLS_CERTIFICATE_OCID_SECRET_NAME MLFLOW_VAULT_OCID MLFLOW_IMAGE; do
  [[ -n ${!name:-} ]] || die 2 "$CONF/proxy.env must set $name"
done

dirs=("$(dirname "$PROXY_TLS_CERT")" "$(dirname "$PROXY_TLS_KEY")" "$(dirname "$PROXY_TLS_CA_FILE")")
install -d -m 0755 "${dirs[0]}" "${dirs[2]}" "$STATE/tls"
install -d -m 0700 "${dirs[1]}"
volumes=()
for dir in $(printf '%s\n' "${dirs[@]}" | sort -u); do volumes+=(--volume "$dir:$dir"); done
# Root in the container, to write root's files; SELinux labels stay those of the host's directories.
status=0
# shellcheck disable=SC2016  # expanded in the container, after the secret is resolved
podman run --rm --network host --user 0:0 --security-opt label=disable "${volumes[@]}" \
  --env MLFLOW_OCI_AUTH=instance_principal --env PYTHONPATH=/opt/mlflow/lib \
  --env MLFLOW_VAULT_OCID --env PROXY_TLS_CERTIFICATE_OCID_SECRET_NAME \
  --env PROXY_TLS_CERT --env PROXY_TLS_KEY --env PROXY_TLS_CA_OCID --env PROXY_TLS_CA_FILE \
  --entrypoint python3 "$MLFLOW_IMAGE" -m mlflow_oci.secrets exec -- sh -c \
  'exec python3 -m mlflow_oci.certificates install "$PROXY_TLS_CERTIFICATE_OCID" "$PROXY_TLS_CERT" "$PROXY_TLS_KEY" --ca "$PROXY_TLS_CA_OCID" "$PROXY_TLS_CA_FILE"' ||
  status=$?
case $status in
  0) log "the certificate is the current version; nothing changed" ;;
  10) log "installed the current version of the certificate at $PROXY_TLS_CERT" ;;
  *) die 3 "could not read the certificate (secret $PROXY_TLS_CERTIFICATE_OCID_SECRET_NAME, CA $PROXY_TLS_CA_OCID; exit $status): the installed pair stays" ;;
esac
# The serving container verifies the tracking server with the CA's certificate (a copy of its own).
if ! cmp -s "$PROXY_TLS_CA_FILE" "$STATE/tls/mlflow-ca.pem"; then
  install -m 0644 "$PROXY_TLS_CA_FILE" "$STATE/tls/mlflow-ca.pem.new"
  mv "$STATE/tls/mlflow-ca.pem.new" "$STATE/tls/mlflow-ca.pem"
fi
if ((status == 10)) && $reload; then
  restorecon "$PROXY_TLS_CERT" "$PROXY_TLS_KEY" "$PROXY_TLS_CA_FILE" 2>/dev/null || true
  if systemctl is-active --quiet nginx; then
    systemctl reload nginx
    log "nginx reloaded"
  fi
fi
