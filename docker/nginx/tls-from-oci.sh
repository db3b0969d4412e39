#!/usr/bin/env bash
# The proxy pods' TLS certificate, and every pod's CA certificate, from the stack's private CA in OCI
# Certificates (stack/tls.tf), read through the node's instance principal (docker/lib/mlflow_oci), where
# nothing is installed but the tracking image (OKE). The VMs' counterpart is userdata/mlflow-refresh-tls.sh.
#   tls-from-oci.sh ca                 the CA's certificate to TLS_DIR/ca.pem (the tracking pods verify
#                                      MySQL with it)
#   tls-from-oci.sh install            the certificate's current version to TLS_DIR/cert.pem (with its chain)
#                                      and TLS_DIR/key.pem (mode 0600), and the CA's to TLS_DIR/ca.pem (the
#                                      proxy pod's init container, before nginx starts)
#   tls-from-oci.sh refresh [--once]   every TLS_REFRESH_SECONDS (default 21600, 6 h): install, and when a
#                                      file changed send SIGHUP to the nginx master whose pid NGINX_PID_FILE
#                                      holds (the proxy pod's refresh sidecar)
#   TLS_CERTIFICATE_OCID, TLS_CA_OCID  what to read (stack output oke_deploy_settings)
#   TLS_DIR                            where the files go (an emptyDir shared with nginx)
#   NGINX_PID_FILE                     refresh: nginx's pid file (default /run/nginx-tmp/nginx.pid)
# Why SIGHUP: OCI renews the certificate (its renewal rule) as a new version; nginx rereads its
# certificate only when its master process is told to reload, and a reload lets the old workers finish
# every request they have while new connections get the new certificate: nothing is dropped. The sidecar
# shares the pod's process namespace (shareProcessNamespace) and runs as nginx's user, so it may signal
# the master without any capability. A sidecar, not a CronJob or a rollout: the key stays in the pod's
# memory-backed volume and never reaches the Kubernetes API. A read that fails (the network, a policy)
# keeps the pair nginx has and is tried again at the next interval; OCI issues a version 30 days before
# the current one expires.
# Exit codes: 0 done, 2 bad setup, 3 (ca, install) the certificate could not be read.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LIB=$(cd "$HERE/../lib" && pwd)
export PYTHONPATH="$LIB${PYTHONPATH:+:$PYTHONPATH}"

log() { printf '%s tls-from-oci: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() {
  log "ERROR: $2"
  exit "$1"
}

mode=${1:-}
[[ $mode == ca || $mode == install || $mode == refresh ]] || die 2 "usage: $0 ca | install | refresh [--once]"
once=false
[[ ${2:-} == --once && $mode == refresh ]] && once=true
for name in TLS_CA_OCID TLS_DIR; do
  [[ -n ${!name:-} ]] || die 2 "$name is not set"
done
[[ $mode == ca || -n ${TLS_CERTIFICATE_OCID:-} ]] || die 2 "TLS_CERTIFICATE_OCID is not set"
mkdir -p "$TLS_DIR" || die 2 "cannot write to $TLS_DIR"

if [[ $mode == ca ]]; then
  status=0
  python3 -m mlflow_oci.certificates authority "$TLS_CA_OCID" "$TLS_DIR/ca.pem" || status=$?
  ((status == 0 || status == 10)) || die 3 "could not read the CA's certificate ($TLS_CA_OCID; exit $status)"
  exit 0
fi

# 0: unchanged, 10: installed, 3: not read (the mlflow_oci.certificates codes)
install_pair() {
  python3 -m mlflow_oci.certificates install "$TLS_CERTIFICATE_OCID" "$TLS_DIR/cert.pem" "$TLS_DIR/key.pem" \
    --ca "$TLS_CA_OCID" "$TLS_DIR/ca.pem"
}

if [[ $mode == install ]]; then
  status=0
  install_pair || status=$?
  ((status == 0 || status == 10)) ||
    die 3 "could not read the TLS certificate ($TLS_CERTIFICATE_OCID, CA $TLS_CA_OCID; exit $status)"
  exit 0
fi

NGINX_PID_FILE=${NGINX_PID_FILE:-/run/nginx-tmp/nginx.pid}
reload_nginx() {
  local pid command
  pid=$(cat "$NGINX_PID_FILE" 2>/dev/null) || {
    log "no $NGINX_PID_FILE: nginx is not running; it reads the new certificate when it starts"
    return 0
  }
  # The pid file could be stale: signal only an nginx master.
  command=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || command=
  if [[ $pid =~ ^[0-9]+$ && $command == "nginx: master process"* ]]; then
    kill -HUP "$pid" && log "nginx (pid $pid) reloads with the new certificate" && return 0
  fi
  log "ERROR: pid ${pid:-?} in $NGINX_PID_FILE is not nginx's master ($command): not reloaded"
  return 1
}

interval=${TLS_REFRESH_SECONDS:-21600}
[[ $interval =~ ^[1-9][0-9]*$ ]] || die 2 "TLS_REFRESH_SECONDS must be a number of seconds (got $interval)"
while true; do
  status=0
  install_pair || status=$?
  case $status in
    0) ;;
    10) reload_nginx || true ;;
    *) log "could not read the TLS certificate (exit $status): nginx keeps its pair; trying again in $interval s" ;;
  esac
  $once && exit 0
  sleep "$interval" &
  wait $!
done
