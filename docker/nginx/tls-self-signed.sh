#!/usr/bin/env bash
# Makes the auth proxy's TLS pair when neither file exists: a self-signed certificate for the names and
# addresses in PROXY_SERVER_NAME (localhost and 127.0.0.1 always), with its key readable by root only.
#   usage: tls-self-signed.sh          (run before render.sh, with the same settings)
#   PROXY_TLS_CERT, PROXY_TLS_KEY      where the pair goes; a pair that exists is kept, half a pair refused
#   PROXY_SERVER_NAME                  nginx server_name list (default "_"): the certificate's names
# Needs bash and openssl.
set -euo pipefail

log() { printf '%s tls-self-signed.sh: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }

for name in PROXY_TLS_CERT PROXY_TLS_KEY; do
  [[ -n ${!name:-} ]] || die "$name is not set"
done
PROXY_SERVER_NAME=${PROXY_SERVER_NAME:-_}
if [[ -e $PROXY_TLS_CERT && -e $PROXY_TLS_KEY ]]; then
  exit 0
elif [[ -e $PROXY_TLS_CERT || -e $PROXY_TLS_KEY ]]; then
  die "only one of PROXY_TLS_CERT ($PROXY_TLS_CERT) and PROXY_TLS_KEY ($PROXY_TLS_KEY) exists: give both, or neither for a self-signed pair"
fi

make_self_signed() {
  local names=() san="DNS:localhost,IP:127.0.0.1" cn=localhost
  for server_name in $PROXY_SERVER_NAME; do
    [[ $server_name == _ ]] && continue
    names+=("$server_name")
    if [[ $server_name =~ ^[0-9.]+$ || $server_name == *:* ]]; then
      san+=",IP:$server_name"
    else
      san+=",DNS:$server_name"
    fi
  done
  ((${#names[@]} == 0)) || cn=${names[0]}
  mkdir -p "$(dirname "$PROXY_TLS_CERT")" "$(dirname "$PROXY_TLS_KEY")"
  (umask 077 && openssl req -x509 -newkey rsa:2048 -sha256 -nodes -days 825 \
    -subj "/CN=$cn" -addext "subjectAltName=$san" \
    -keyout "$PROXY_TLS_KEY" -out "$PROXY_TLS_CERT" 2>/dev/null) ||
    die "openssl could not create a self-signed certificate at $PROXY_TLS_CERT"
  chmod 644 "$PROXY_TLS_CERT"
  log "created a self-signed certificate for $san at $PROXY_TLS_CERT"
}

make_self_signed
