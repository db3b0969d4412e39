#!/usr/bin/env bash
# Renders mlflow-proxy.conf.template (next to this script) from environment variables, with the
# auth-<PROXY_AUTH>.conf and fronts-<PROXY_FRONTS>.conf files beside it written in place of its includes.
#   usage: render.sh OUTPUT_FILE        (OUTPUT_FILE "-" writes to stdout)
#   PROXY_LISTEN_PORT    port or address:port nginx listens on (TLS), e.g. 443 or 127.0.0.1:8443
#   PROXY_UPSTREAM       host:port of mlflow server or the serving supervisor, e.g. 127.0.0.1:5000; or
#                        several, separated by spaces or commas, for replicas behind one upstream:
#                        one nginx `server` line each, balanced round-robin, e.g. "10.0.1.5:5000 10.0.1.6:5000"
#   PROXY_AUTH           proxy (default): nginx checks the one login in PROXY_HTPASSWD_FILE;
#                        upstream: the upstream checks logins (MLflow's own users): nginx passes them on
#                        and still rate-limits failed ones;
#                        tracking: nginx asks the tracking server at PROXY_AUTH_URL (MLflow's own users;
#                        the serving endpoint) and passes nothing but allowed requests on
#   PROXY_AUTH_URL       with PROXY_AUTH=tracking: the tracking server's base URL, e.g. https://10.0.1.10
#   PROXY_AUTH_TLS_CA    with PROXY_AUTH=tracking: a PEM file of the CA the tracking server's certificate
#                        must chain to (nginx verifies it, proxy_ssl_verify on); empty: not verified
#   PROXY_AUTH_TLS_NAME  the name or IP address that certificate must carry (default: PROXY_AUTH_URL's host)
#   PROXY_HTPASSWD_FILE  existing htpasswd file with bcrypt entries (htpasswd -B); PROXY_AUTH=proxy only
#   PROXY_TLS_CERT       PEM certificate  (both files must exist: tls-self-signed.sh beside this script
#   PROXY_TLS_KEY        PEM private key   makes a self-signed pair)
#   PROXY_SERVER_NAME    nginx server_name list (default "_")
#   PROXY_FRONTS         tracking (default) or serving: in front of a served model, no Origin or Cookie
#                        header reaches the upstream
#   PROXY_MAX_BODY_MB    largest request body in MiB (default 64; 413 beyond), except artifact uploads,
#                        which pass, of any size, once the login is checked
#   PROXY_MAX_CONNECTIONS_PER_ADDRESS  open connections one client address may hold (default 256)
#   PROXY_REQUEST_LOG    where the request log the metrics pass reads goes (JSON lines, no secret): a file,
#                        e.g. /var/log/nginx/mlflow-requests.log, or syslog:server=127.0.0.1:PORT (a UDP datagram
#                        a request, to the metrics sidecar of OKE's proxy pod); empty (default): the main config's
#                        access log
# Needs only bash and sed: it runs on Oracle Linux 8/9 hosts and on Debian. It only substitutes and checks.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TEMPLATE=$HERE/mlflow-proxy.conf.template

log() { printf '%s render.sh: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }

[[ $# -eq 1 ]] || die "usage: render.sh OUTPUT_FILE (or - for stdout)"
OUTPUT=$1

# Values end up inside nginx directives: refuse anything that could end or open a directive.
safe_value() {  # name value
  [[ -n $2 ]] || die "$1 is not set"
  [[ $2 != *[[:space:]\;\{\}\"\'\$\#\\]* ]] || die "$1 contains whitespace or one of ; { } \" ' \$ # \\ (got '$2')"
}
port_ok() { [[ $1 =~ ^[0-9]+$ ]] && (($1 >= 1 && $1 <= 65535)); }

PROXY_SERVER_NAME=${PROXY_SERVER_NAME:-_}
case ${PROXY_AUTH:=proxy} in
  proxy) ;;
  upstream) PROXY_HTPASSWD_FILE=${PROXY_HTPASSWD_FILE:-none} ;;
  tracking)
    PROXY_HTPASSWD_FILE=${PROXY_HTPASSWD_FILE:-none}
    [[ ${PROXY_AUTH_URL:-} =~ ^https?://[A-Za-z0-9.-]+(:[0-9]+)?$ ]] ||
      die "PROXY_AUTH=tracking needs PROXY_AUTH_URL, the tracking server's http(s)://host[:port] (got '${PROXY_AUTH_URL:-}')"
    ;;
  *) die "PROXY_AUTH must be proxy, upstream or tracking (got '$PROXY_AUTH')" ;;
esac
PROXY_AUTH_URL=${PROXY_AUTH_URL:-none}
# shellcheck disable=SC2034  # PROXY_AUTH_TLS_VERIFY: read through ${!name} below
if [[ -n ${PROXY_AUTH_TLS_CA:-} && $PROXY_AUTH == tracking ]]; then
  PROXY_AUTH_TLS_VERIFY=on
  [[ -f $PROXY_AUTH_TLS_CA ]] || die "PROXY_AUTH_TLS_CA $PROXY_AUTH_TLS_CA does not exist"
  host=${PROXY_AUTH_URL#*://}
  PROXY_AUTH_TLS_NAME=${PROXY_AUTH_TLS_NAME:-${host%%:*}}
else
  # Not loaded by nginx while proxy_ssl_verify is off.
  PROXY_AUTH_TLS_VERIFY=off PROXY_AUTH_TLS_CA=none PROXY_AUTH_TLS_NAME=none
fi
[[ ${PROXY_MAX_BODY_MB:=64} =~ ^[1-9][0-9]{0,4}$ ]] ||
  die "PROXY_MAX_BODY_MB must be a whole number of MiB from 1 to 99999 (got '$PROXY_MAX_BODY_MB')"
[[ ${PROXY_MAX_CONNECTIONS_PER_ADDRESS:=256} =~ ^[1-9][0-9]{0,5}$ ]] ||
  die "PROXY_MAX_CONNECTIONS_PER_ADDRESS must be a whole number from 1 to 999999 (got '$PROXY_MAX_CONNECTIONS_PER_ADDRESS')"
case ${PROXY_FRONTS:=tracking} in
  tracking | serving) ;;
  *) die "PROXY_FRONTS must be tracking or serving (got '$PROXY_FRONTS')" ;;
esac
safe_value PROXY_LISTEN_PORT "${PROXY_LISTEN_PORT:-}"
[[ -n ${PROXY_UPSTREAM:-} ]] || die "PROXY_UPSTREAM is not set"
for name in PROXY_HTPASSWD_FILE PROXY_TLS_CERT PROXY_TLS_KEY PROXY_AUTH_TLS_CA PROXY_AUTH_TLS_NAME; do
  safe_value "$name" "${!name:-}"
done
for server_name in $PROXY_SERVER_NAME; do safe_value PROXY_SERVER_NAME "$server_name"; done
if [[ -n ${PROXY_REQUEST_LOG:=} ]]; then
  safe_value PROXY_REQUEST_LOG "$PROXY_REQUEST_LOG"
  if [[ $PROXY_REQUEST_LOG =~ ^syslog:server=127\.0\.0\.1:([0-9]+)$ ]]; then
    port_ok "${BASH_REMATCH[1]}" || die "PROXY_REQUEST_LOG's syslog port must be 1-65535 (got '$PROXY_REQUEST_LOG')"
  elif [[ $PROXY_REQUEST_LOG != /* ]]; then
    die "PROXY_REQUEST_LOG must be an absolute file path or syslog:server=127.0.0.1:PORT (got '$PROXY_REQUEST_LOG')"
  fi
fi

port_ok "${PROXY_LISTEN_PORT##*:}" ||
  die "PROXY_LISTEN_PORT must be a port or address:port (got '$PROXY_LISTEN_PORT')"
# Split on commas and any whitespace (newlines too, so no line can slip past the checks below).
IFS=$' \t\n' read -r -d '' -a upstreams <<<"${PROXY_UPSTREAM//,/ }" || true
((${#upstreams[@]} > 0)) || die "PROXY_UPSTREAM lists no host:port (got '$PROXY_UPSTREAM')"
for upstream in "${upstreams[@]}"; do
  safe_value PROXY_UPSTREAM "$upstream"
  if [[ $upstream != ?*:* ]] || ! port_ok "${upstream##*:}"; then
    die "PROXY_UPSTREAM must be host:port, e.g. 127.0.0.1:5000 (got '$upstream')"
  fi
done
[[ $PROXY_AUTH != proxy || -f $PROXY_HTPASSWD_FILE ]] ||
  die "PROXY_HTPASSWD_FILE $PROXY_HTPASSWD_FILE does not exist; create it with: htpasswd -cB $PROXY_HTPASSWD_FILE <user>"

[[ -f $PROXY_TLS_CERT && -f $PROXY_TLS_KEY ]] ||
  die "PROXY_TLS_CERT ($PROXY_TLS_CERT) and PROXY_TLS_KEY ($PROXY_TLS_KEY) must both exist: give a pair, or make a self-signed one with tls-self-signed.sh beside this script"

# One upstream name and one short variable prefix per listener, so the tracking and serving blocks
# can share an nginx (whose variable names must stay short for its hash tables).
# shellcheck disable=SC2034  # read through ${!name} below
PROXY_UPSTREAM_NAME=mlflow_upstream_$(tr -c 'A-Za-z0-9\n' '_' <<<"$PROXY_LISTEN_PORT")
# shellcheck disable=SC2034
PROXY_ID=p$(tr -c '0-9\n' '_' <<<"$PROXY_LISTEN_PORT")
# shellcheck disable=SC2034  # read through ${!name} below
if [[ $PROXY_REQUEST_LOG == syslog:* ]]; then
  PROXY_ACCESS_LOG="access_log $PROXY_REQUEST_LOG,nohostname,tag=mlflow ${PROXY_ID}_requests;"
elif [[ -n $PROXY_REQUEST_LOG ]]; then
  PROXY_ACCESS_LOG="access_log $PROXY_REQUEST_LOG ${PROXY_ID}_requests;"
else
  PROXY_ACCESS_LOG="# access_log: the main configuration's (PROXY_REQUEST_LOG is not set)"
fi

# The template as one text: each `include auth-….conf;` / `include fronts-….conf;` line (named by
# PROXY_AUTH and PROXY_FRONTS) is replaced by that file beside it, indented as the line was, and the
# upstream's server line is repeated once per upstream address.
# shellcheck disable=SC2016  # the placeholder itself, not an expansion
server_line='server ${PROXY_UPSTREAM};'
include_line='^([[:space:]]*)include[[:space:]]+((auth|fronts)-[$][{]PROXY_(AUTH|FRONTS)[}][.]conf);[[:space:]]*$'
assembled_template() {
  local line upstream indent name
  while IFS= read -r line || [[ -n $line ]]; do
    if [[ $line =~ $include_line ]]; then
      indent=${BASH_REMATCH[1]}
      # shellcheck disable=SC2016  # the placeholders themselves, replaced by the settings
      name=${BASH_REMATCH[2]/'${PROXY_AUTH}'/$PROXY_AUTH} name=${name/'${PROXY_FRONTS}'/$PROXY_FRONTS}
      [[ -f $HERE/$name ]] || die "the template includes $name, which is not beside it in $HERE"
      sed "/./s/^/$indent/" "$HERE/$name"
    elif [[ $line == *"$server_line"* ]]; then
      for upstream in "${upstreams[@]}"; do
        printf '%s\n' "${line%%"$server_line"*}server $upstream;${line#*"$server_line"}"
      done
    else
      printf '%s\n' "$line"
    fi
  done <"$TEMPLATE"
}

sed_escape() { sed -e 's/[\/&|]/\\&/g' <<<"$1"; }
sed_args=()
for name in PROXY_UPSTREAM_NAME PROXY_ID PROXY_LISTEN_PORT PROXY_HTPASSWD_FILE \
  PROXY_TLS_CERT PROXY_TLS_KEY PROXY_SERVER_NAME PROXY_AUTH_URL PROXY_AUTH_TLS_VERIFY PROXY_AUTH_TLS_CA PROXY_AUTH_TLS_NAME PROXY_MAX_BODY_MB PROXY_MAX_CONNECTIONS_PER_ADDRESS \
  PROXY_FRONTS PROXY_ACCESS_LOG; do
  sed_args+=(-e "s|\${$name}|$(sed_escape "${!name}")|g")
done
rendered=$(assembled_template | sed "${sed_args[@]}")
if grep -Eq '^[[:space:]]*include[[:space:]]' <<<"$rendered"; then
  die "an include line the template may not have: $(grep -E '^[[:space:]]*include[[:space:]]' <<<"$rendered" | head -1)"
fi
placeholder='[$][{]PROXY_[A-Z_]*[}]'
if grep -q "$placeholder" <<<"$rendered"; then
  die "template placeholders left unrendered: $(grep -o "$placeholder" <<<"$rendered" | sort -u | tr '\n' ' ')"
fi

if [[ $OUTPUT == - ]]; then
  printf '%s\n' "$rendered"
else
  mkdir -p "$(dirname "$OUTPUT")"
  printf '%s\n' "$rendered" >"$OUTPUT.tmp"
  mv "$OUTPUT.tmp" "$OUTPUT"
  log "wrote $OUTPUT (listen $PROXY_LISTEN_PORT -> ${upstreams[*]})"
fi
