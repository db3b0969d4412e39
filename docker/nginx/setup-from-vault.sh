#!/usr/bin/env bash
# Prepares the auth proxy's files where nothing is installed but the tracking image (an init container
# of the proxy pod on Kubernetes): the password file from the login in Vault, the TLS certificate from
# the stack's CA (tls-from-oci.sh) and the nginx config from the same template as the VMs (render.sh).
# Nginx then runs from its own image.
#   PROXY_DIR                          directory shared with the nginx container (an emptyDir)
#   PROXY_LOGIN_USER                   the login's user name
#   PROXY_LOGIN_PASSWORD_SECRET_OCID   the login's Vault secret, read through the instance principal
#   TLS_CERTIFICATE_OCID, TLS_CA_OCID  the certificate nginx presents and its CA (OCI Certificates), read
#                                      through the instance principal; without them (a proxy set up by
#                                      hand, never on OKE: orm-pack oke deploy always sets them) a
#                                      self-signed pair (tls-self-signed.sh)
#   PROXY_AUTH, PROXY_LISTEN_PORT, PROXY_UPSTREAM, PROXY_SERVER_NAME: as for render.sh
# Writes PROXY_DIR/htpasswd (PROXY_AUTH=proxy only: with MLflow's own users the proxy checks no login),
# PROXY_DIR/tls/{cert,key,ca}.pem and PROXY_DIR/conf.d/mlflow.conf.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LIB=$(cd "$HERE/../lib" && pwd)
export PYTHONPATH="$LIB${PYTHONPATH:+:$PYTHONPATH}"

log() { printf '%s setup-from-vault: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }

[[ -n ${PROXY_DIR:-} ]] || die "PROXY_DIR is not set"
mkdir -p "$PROXY_DIR/conf.d" "$PROXY_DIR/tls" || die "cannot write to $PROXY_DIR"
export PROXY_AUTH=${PROXY_AUTH:-proxy}
export PROXY_TLS_CERT=$PROXY_DIR/tls/cert.pem PROXY_TLS_KEY=$PROXY_DIR/tls/key.pem
if [[ -n ${TLS_CERTIFICATE_OCID:-} ]]; then
  TLS_DIR=$PROXY_DIR/tls bash "$HERE/tls-from-oci.sh" install ||
    die "the TLS certificate could not be read (see the line above)"
else
  log "no TLS_CERTIFICATE_OCID: a self-signed certificate, which clients cannot verify"
  bash "$HERE/tls-self-signed.sh"
fi
if [[ $PROXY_AUTH != proxy ]]; then
  log "PROXY_AUTH=$PROXY_AUTH: logins go on to MLflow; no password file"
  exec bash "$HERE/render.sh" "$PROXY_DIR/conf.d/mlflow.conf"
fi
for name in PROXY_LOGIN_USER PROXY_LOGIN_PASSWORD_SECRET_OCID; do
  [[ -n ${!name:-} ]] || die "$name is not set"
done

# The value stays in this shell's memory and reaches the hasher on stdin (printf is a builtin: no argv).
password=$(python3 -m mlflow_oci.secrets print "$PROXY_LOGIN_PASSWORD_SECRET_OCID") ||
  die "the login could not be read from Vault (see the line above)"
printf '%s' "$password" | python3 -m mlflow_oci.htpasswd "$PROXY_LOGIN_USER" "$PROXY_DIR/htpasswd" ||
  die "could not write $PROXY_DIR/htpasswd"
unset password
log "wrote the password file for '$PROXY_LOGIN_USER'"

PROXY_HTPASSWD_FILE=$PROXY_DIR/htpasswd bash "$HERE/render.sh" "$PROXY_DIR/conf.d/mlflow.conf"
