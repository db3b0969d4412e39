#!/usr/bin/env bash
# Runs the MLflow tracking server from environment variables (see docker/README.md).
#   entrypoint.sh [serve]   prepare the database, then run the server (the default)
#   entrypoint.sh migrate   prepare the database and exit: the Kubernetes Job that runs before a rollout
#   entrypoint.sh plan [--json]   say what an upgrade to this image's MLflow would do to the database, changing
#                                 nothing in it (mlflow_oci.schema_plan; exit 3: it would be refused)
#   entrypoint.sh housekeeping [--dry-run ...]   remove what users deleted long enough ago, old traces and jobs
#                                 (mlflow_oci.housekeeping), with the database user, never the administrator
#   entrypoint.sh metrics [--dry-run]   post the deployment's counts, size and health to OCI Monitoring
#                                 (mlflow_oci.metrics), with the database user
# Order: resolve Vault secrets -> check settings -> wait for the database -> init_db.py (first-boot SQL when admin
# credentials are given, schema migrations) -> exec `mlflow server` with proxied artifacts.
# Secrets never reach the log or argv: mlflow reads the backend URI from MLFLOW_BACKEND_STORE_URI.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# docker/lib: the oci:// artifact store and the Vault secret resolver.
LIB=$(cd "$HERE/../lib" && pwd)
export PYTHONPATH="$LIB${PYTHONPATH:+:$PYTHONPATH}"

# Settings name Vault secrets (<NAME>_SECRET_OCID, or <NAME>_SECRET_NAME in MLFLOW_VAULT_OCID) instead of
# carrying values: resolve them through the instance principal and run this script again with the values
# in its environment only. The resolver removes every such variable, so the second run goes on; a secret
# it cannot read stops the start with one line naming it.
for name in $(compgen -e); do
  if [[ $name == *_SECRET_OCID || $name == *_SECRET_NAME ]]; then
    exec python3 -m mlflow_oci.secrets exec -- bash "${BASH_SOURCE[0]}" "$@"
  fi
done

log() { printf '%s tracking-entrypoint: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }

# The administrator's password as a file (the OKE migrate Job's Secret, mounted: never in the pod's
# environment). No file: nobody made that Secret, and the Job migrates an existing database only.
if [[ -n ${MYSQL_ADMIN_PASSWORD_FILE:-} ]]; then
  if [[ -f $MYSQL_ADMIN_PASSWORD_FILE ]]; then
    MYSQL_ADMIN_PASSWORD=$(<"$MYSQL_ADMIN_PASSWORD_FILE")
    export MYSQL_ADMIN_PASSWORD
  else
    log "no $MYSQL_ADMIN_PASSWORD_FILE: no first-boot SQL with the administrator"
  fi
  unset MYSQL_ADMIN_PASSWORD_FILE
fi

MODE=${1:-serve}
case $MODE in
  serve | migrate | plan | housekeeping | metrics) ;;
  *) die "unknown mode '$MODE': use serve (the default), migrate, plan, housekeeping or metrics" ;;
esac

# Prints a URI with any password replaced by ***.
mask_uri() { sed -E 's#(://[^:/@]+):[^@/]*@#\1:***@#' <<<"$1"; }

require_int() {  # name value min max
  if ! [[ $2 =~ ^[0-9]+$ ]] || (($2 < $3 || $2 > $4)); then
    die "$1 must be an integer between $3 and $4 (got '$2')"
  fi
}

wait_for_tcp() {  # host port seconds
  local deadline=$((SECONDS + $3))
  until (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; do
    ((SECONDS < deadline)) || die "database $1:$2 is not reachable after $3 s (check MLFLOW_DB_HOST/MLFLOW_DB_PORT and the network security rules)"
    sleep 2
  done
}

MLFLOW_HOST=${MLFLOW_HOST:-127.0.0.1}
MLFLOW_PORT=${MLFLOW_PORT:-5000}
MLFLOW_WORKERS=${MLFLOW_WORKERS:-2}
MLFLOW_DB_PORT=${MLFLOW_DB_PORT:-3306}
MLFLOW_DB_NAME=${MLFLOW_DB_NAME:-mlflow}
MLFLOW_DB_WAIT_SECONDS=${MLFLOW_DB_WAIT_SECONDS:-300}
require_int MLFLOW_PORT "$MLFLOW_PORT" 1 65535
require_int MLFLOW_WORKERS "$MLFLOW_WORKERS" 1 64
require_int MLFLOW_DB_PORT "$MLFLOW_DB_PORT" 1 65535
require_int MLFLOW_DB_WAIT_SECONDS "$MLFLOW_DB_WAIT_SECONDS" 0 86400
export MLFLOW_DB_PORT MLFLOW_DB_NAME MLFLOW_DB_WAIT_SECONDS  # read by init_db.py

# --- backend store -------------------------------------------------------------------------
# The mysql+pymysql URI of database $1 from MLFLOW_DB_*, read from the environment so no secret is in argv.
# TLS to MySQL: encrypted always (HeatWave may require it), and the server's certificate verified: its chain
# against MLFLOW_DB_SSL_CA (unset: the system's trust store) and the address it names against MLFLOW_DB_HOST
# (the DB system is reached by its private IP, which its certificate names). init_db.py connects first and
# stops the start with one line when the certificate does not verify.
mysql_uri() {
  python3 -c '
import os, ssl, sys
from urllib.parse import quote
e = os.environ
uri = "mysql+pymysql://{}:{}@{}:{}/{}?charset=utf8mb4".format(
    quote(e["MLFLOW_DB_USER"], safe=""), quote(e["MLFLOW_DB_PASSWORD"], safe=""),
    e["MLFLOW_DB_HOST"], e["MLFLOW_DB_PORT"], sys.argv[1])
if e["MLFLOW_DB_TLS"] == "required":
    # PyMySQL verifies nothing without a CA file: the system bundle stands for the trust store.
    paths = ssl.get_default_verify_paths()
    ca = e.get("MLFLOW_DB_SSL_CA") or next((f for f in (paths.cafile, paths.openssl_cafile) if f and os.path.isfile(f)), None)
    if not ca:
        sys.exit(3)
    uri += "&ssl_ca=" + quote(ca, safe="") + "&ssl_check_hostname=true"
print(uri)' "$1"
}
NO_DB_CA="no CA to verify MySQL's certificate with (this system has no trust store): set MLFLOW_DB_SSL_CA to the CA that issued the DB system's certificate"

if [[ -n ${MLFLOW_BACKEND_STORE_URI:-} ]]; then
  log "backend store: $(mask_uri "$MLFLOW_BACKEND_STORE_URI") (from MLFLOW_BACKEND_STORE_URI)"
else
  missing=()
  for name in MLFLOW_DB_HOST MLFLOW_DB_USER MLFLOW_DB_PASSWORD; do
    [[ -n ${!name:-} ]] || missing+=("$name")
  done
  ((${#missing[@]} == 0)) || die "set ${missing[*]} (the MySQL connection) or MLFLOW_BACKEND_STORE_URI (e.g. sqlite:////data/mlflow.db)"
  case ${MLFLOW_DB_TLS:=required} in
    required | off) ;;
    *) die "MLFLOW_DB_TLS must be required or off (got '$MLFLOW_DB_TLS')" ;;
  esac
  [[ -z ${MLFLOW_DB_SSL_CA:-} || -f $MLFLOW_DB_SSL_CA ]] || die "MLFLOW_DB_SSL_CA $MLFLOW_DB_SSL_CA does not exist"
  export MLFLOW_DB_TLS  # read by init_db.py
  MLFLOW_BACKEND_STORE_URI=$(mysql_uri "$MLFLOW_DB_NAME") || die "$NO_DB_CA"
  log "backend store: $(mask_uri "$MLFLOW_BACKEND_STORE_URI")"
  [[ -n ${MYSQL_ADMIN_USER:-} && -n ${MYSQL_ADMIN_PASSWORD:-} ]] ||
    log "MYSQL_ADMIN_USER/MYSQL_ADMIN_PASSWORD not set: database ${MLFLOW_DB_NAME} and its user must exist"
fi
export MLFLOW_BACKEND_STORE_URI  # mlflow server reads it from here, not from argv
[[ $MODE == serve || $MLFLOW_BACKEND_STORE_URI == mysql* ]] ||
  die "$MODE works on a MySQL backend: set MLFLOW_DB_HOST, MLFLOW_DB_USER and MLFLOW_DB_PASSWORD"
if [[ $MODE == metrics ]]; then
  unset MYSQL_ADMIN_USER MYSQL_ADMIN_PASSWORD
  export MLFLOW_METRICS_HEALTH_URL=${MLFLOW_METRICS_HEALTH_URL:-http://$MLFLOW_HOST:$MLFLOW_PORT/health}
  shift
  exec python3 -m mlflow_oci.metrics "$@"
fi
if [[ $MODE == housekeeping ]]; then
  unset MYSQL_ADMIN_USER MYSQL_ADMIN_PASSWORD
  [[ -n ${MLFLOW_ARTIFACTS_DESTINATION:-} ]] ||
    die "set MLFLOW_ARTIFACTS_DESTINATION: housekeeping deletes the artifacts of what it removes"
  if [[ -n ${MLFLOW_DB_HOST:-} ]]; then
    wait_for_tcp "$MLFLOW_DB_HOST" "$MLFLOW_DB_PORT" "$MLFLOW_DB_WAIT_SECONDS"
  fi
  shift
  exec python3 -m mlflow_oci.housekeeping "$@"
fi
if [[ $MODE == plan ]]; then
  if [[ -n ${MLFLOW_DB_HOST:-} ]]; then
    log "waiting up to ${MLFLOW_DB_WAIT_SECONDS}s for database ${MLFLOW_DB_HOST}:${MLFLOW_DB_PORT}"
    wait_for_tcp "$MLFLOW_DB_HOST" "$MLFLOW_DB_PORT" "$MLFLOW_DB_WAIT_SECONDS"
  fi
  # The first-boot SQL only (it makes the rehearsal database), never a migration.
  python3 "$HERE/init_db.py" accounts || die "the MySQL accounts could not be prepared (see init_db above)"
  unset MYSQL_ADMIN_USER MYSQL_ADMIN_PASSWORD
  shift
  exec python3 -m mlflow_oci.schema_plan "$@"
fi

# --- users -------------------------------------------------------------------------------
# MLFLOW_AUTH=proxy (default): the auth proxy's one login guards everything and MLflow checks nobody.
# MLFLOW_AUTH=mlflow: MLflow's own users and permissions (its basic-auth app); the proxy passes logins
# through. Users live in a database of their own on the same MySQL (MLFLOW_AUTH_DB_NAME, default
# <MLFLOW_DB_NAME>_auth), so every replica sees the same users.
# MLFLOW_AUTH=oidc: the same, plus single sign-on: people sign in through an OpenID Connect provider
# and clients may send its tokens (lib/mlflow_oci/oidc_auth.py, MLflow's authorization_function).
case ${MLFLOW_AUTH:=proxy} in
  proxy) ;;
  mlflow | oidc)
    [[ -n ${MLFLOW_AUTH_ADMIN_USERNAME:-} && -n ${MLFLOW_AUTH_ADMIN_PASSWORD:-} ]] ||
      die "MLFLOW_AUTH=$MLFLOW_AUTH needs the first admin: MLFLOW_AUTH_ADMIN_USERNAME and MLFLOW_AUTH_ADMIN_PASSWORD (or MLFLOW_AUTH_ADMIN_PASSWORD_SECRET_OCID)"
    # The UI's CSRF tokens (and with oidc the sign-in sessions) are signed with it: every replica needs the same one.
    [[ -n ${MLFLOW_FLASK_SERVER_SECRET_KEY:-} ]] ||
      die "MLFLOW_AUTH=$MLFLOW_AUTH needs MLFLOW_FLASK_SERVER_SECRET_KEY (or its _SECRET_OCID), the same on every replica"
    case ${MLFLOW_AUTH_DEFAULT_PERMISSION:=READ} in
      READ | EDIT | MANAGE | NO_PERMISSIONS) ;;
      *) die "MLFLOW_AUTH_DEFAULT_PERMISSION must be READ, EDIT, MANAGE or NO_PERMISSIONS (got '$MLFLOW_AUTH_DEFAULT_PERMISSION')" ;;
    esac
    # How long a replica trusts a password it checked (MLflow's credential cache; lib/mlflow_oci/auth_ini.py).
    passwords=$(python3 -m mlflow_oci.auth_ini check 2>&1) || die "$passwords"
    if [[ $MLFLOW_AUTH == oidc ]]; then
      # Every wrong setting on a line of its own, then whether the provider answers (discovery, signing keys).
      if ! sso=$(python3 -m mlflow_oci.oidc_auth check 2>&1); then
        while IFS= read -r line; do log "ERROR: $line"; done <<<"$sso"
        exit 2
      fi
      log "users: $sso"
    fi
    if [[ -z ${MLFLOW_AUTH_DATABASE_URI:-} ]]; then
      [[ -n ${MLFLOW_DB_HOST:-} ]] ||
        die "MLFLOW_AUTH=$MLFLOW_AUTH keeps users in MySQL (MLFLOW_DB_*); with another backend set MLFLOW_AUTH_DATABASE_URI"
      export MLFLOW_AUTH_DB_NAME=${MLFLOW_AUTH_DB_NAME:-${MLFLOW_DB_NAME}_auth}  # read by init_db.py
      MLFLOW_AUTH_DATABASE_URI=$(mysql_uri "$MLFLOW_AUTH_DB_NAME") || die "$NO_DB_CA"
    fi
    export MLFLOW_AUTH_DATABASE_URI MLFLOW_AUTH_ADMIN_USERNAME MLFLOW_AUTH_ADMIN_PASSWORD
    log "users: MLflow's own, in $(mask_uri "$MLFLOW_AUTH_DATABASE_URI"); new users may $MLFLOW_AUTH_DEFAULT_PERMISSION"
    log "$passwords"
    ;;
  *) die "MLFLOW_AUTH must be proxy (the auth proxy's one login), mlflow (MLflow's own users) or oidc (MLflow's users with single sign-on) (got '$MLFLOW_AUTH')" ;;
esac

# --- artifacts -----------------------------------------------------------------------------
[[ -n ${MLFLOW_ARTIFACTS_DESTINATION:-} ]] ||
  die "set MLFLOW_ARTIFACTS_DESTINATION to oci://<bucket>@<namespace>/<prefix> (Object Storage), s3://<bucket>/<prefix> or a local directory"
case $MLFLOW_ARTIFACTS_DESTINATION in
  oci://*)
    # Object Storage through this machine's identity: no key. Listing the prefix now turns a missing
    # policy into one line at start instead of a failed upload later.
    # It also says whether clients may move large files to and from Object Storage themselves (PARs this
    # server makes need PAR_MANAGE): "direct", or "proxied: <why>", and then everything goes through here.
    transfers=$(python3 -m mlflow_oci.artifacts check "$MLFLOW_ARTIFACTS_DESTINATION" 2>&1) || die "$transfers"
    if [[ $transfers != direct ]]; then
      export MLFLOW_OCI_DIRECT_TRANSFERS=false
    fi
    log "artifacts: ${MLFLOW_ARTIFACTS_DESTINATION} (Object Storage, ${MLFLOW_OCI_AUTH:-instance_principal}; large files: ${transfers})"
    ;;
  s3://*)
    [[ -n ${AWS_ACCESS_KEY_ID:-} && -n ${AWS_SECRET_ACCESS_KEY:-} ]] ||
      die "MLFLOW_ARTIFACTS_DESTINATION is s3:// but AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set (an OCI customer secret key)"
    [[ -n ${MLFLOW_S3_ENDPOINT_URL:-} ]] ||
      log "MLFLOW_S3_ENDPOINT_URL is not set: boto3 will use AWS S3 (for OCI set https://<namespace>.compat.objectstorage.<region>.oraclecloud.com)"
    # OCI's S3 compatibility API rejects the checksum headers newer boto3 sends by default.
    export AWS_REQUEST_CHECKSUM_CALCULATION=${AWS_REQUEST_CHECKSUM_CALCULATION:-when_required}
    export AWS_RESPONSE_CHECKSUM_VALIDATION=${AWS_RESPONSE_CHECKSUM_VALIDATION:-when_required}
    log "artifacts: ${MLFLOW_ARTIFACTS_DESTINATION} via ${MLFLOW_S3_ENDPOINT_URL:-AWS}"
    ;;
  *://*)
    die "MLFLOW_ARTIFACTS_DESTINATION must be oci://…, s3://… or a local directory (got ${MLFLOW_ARTIFACTS_DESTINATION%%://*}://…)"
    ;;
  *)
    mkdir -p "$MLFLOW_ARTIFACTS_DESTINATION" ||
      die "cannot create artifact directory $MLFLOW_ARTIFACTS_DESTINATION"
    log "artifacts: local directory $MLFLOW_ARTIFACTS_DESTINATION"
    ;;
esac

# --- database ------------------------------------------------------------------------------
if [[ -n ${MLFLOW_DB_HOST:-} && $MLFLOW_BACKEND_STORE_URI == mysql* ]]; then
  log "waiting up to ${MLFLOW_DB_WAIT_SECONDS}s for database ${MLFLOW_DB_HOST}:${MLFLOW_DB_PORT}"
  wait_for_tcp "$MLFLOW_DB_HOST" "$MLFLOW_DB_PORT" "$MLFLOW_DB_WAIT_SECONDS"
fi
if [[ $MLFLOW_BACKEND_STORE_URI == mysql* ]]; then
  # Exit 3: the pre-checks refused the migration and nothing changed (the VM's boot then runs the version that
  # last served the database); anything else: the database could not be prepared.
  prepared=0
  python3 "$HERE/init_db.py" || prepared=$?
  if ((prepared == 3)); then
    log "ERROR: the upgrade of the MLflow tables was refused (see REFUSED above); the database is as it was"
    exit 3
  fi
  ((prepared == 0)) || die "the MySQL backend could not be prepared (see init_db above)"
fi
# The administrator's login was for the first-boot SQL only: the server never holds it.
unset MYSQL_ADMIN_USER MYSQL_ADMIN_PASSWORD
# With MLflow's own users: who signed in through the provider, by subject (its tables, a one-time migration).
if [[ $MLFLOW_AUTH == mlflow || $MLFLOW_AUTH == oidc ]]; then
  python3 -m mlflow_oci.people prepare || die "could not prepare the table of people who sign in (see above)"
fi
# With MLflow's own users, the model endpoint's registered model exists before anyone can claim it.
if [[ ($MLFLOW_AUTH == mlflow || $MLFLOW_AUTH == oidc) && -n ${MLFLOW_SERVED_MODEL_NAME:-} ]]; then
  python3 "$HERE/served_model.py" || die "could not reserve the registered model $MLFLOW_SERVED_MODEL_NAME (see above)"
fi
# ...and the model endpoint and the notebook session log in as users of their own, never as the admin:
# created, made non-admins and given their current password at every start (the endpoint's may read the
# served model).
if [[ ($MLFLOW_AUTH == mlflow || $MLFLOW_AUTH == oidc) && -n ${MLFLOW_SERVING_USERNAME:-}${MLFLOW_NOTEBOOK_USERNAME:-} ]]; then
  python3 "$HERE/service_users.py" || die "could not prepare the model endpoint's and the notebook's users (see above)"
fi
unset MLFLOW_SERVING_PASSWORD MLFLOW_NOTEBOOK_PASSWORD  # the server never holds them
if [[ $MODE == migrate ]]; then
  log "migrate: the database is ready; not starting the server"
  exit 0
fi

# --- server --------------------------------------------------------------------------------
# The job runner starts extra worker processes (and memory) that this deployment does not use.
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false

args=(server --host "$MLFLOW_HOST" --port "$MLFLOW_PORT" --workers "$MLFLOW_WORKERS"
  --serve-artifacts --artifacts-destination "$MLFLOW_ARTIFACTS_DESTINATION")
if [[ -n ${MLFLOW_ALLOWED_HOSTS:-} ]]; then
  # MLflow 3 answers 403 to a Host header it does not know; the proxy forwards the client's Host
  # (the public address). The list replaces MLflow's defaults, so loopback (SSH tunnels) is re-added.
  args+=(--allowed-hosts "$MLFLOW_ALLOWED_HOSTS,localhost,localhost:*,127.0.0.1,127.0.0.1:*")
fi
if [[ $MLFLOW_AUTH == mlflow || $MLFLOW_AUTH == oidc ]]; then
  # MLflow reads the auth app's settings from a file only; it holds the database password, so it
  # lives in a private directory (configparser would expand the URI's %-escapes: they are doubled).
  # With oidc, MLflow asks lib/mlflow_oci/oidc_auth.py who a request is instead of checking passwords itself;
  # with mlflow, its own basic auth through lib/mlflow_oci/artifact_rules.py. Both add the artifact rules.
  auth_dir=$(mktemp -d "${TMPDIR:-/tmp}/mlflow-auth.XXXXXX") || die "cannot create a private directory in ${TMPDIR:-/tmp}"
  export MLFLOW_AUTH_CONFIG_PATH=$auth_dir/auth.ini
  # The permission and the mode go in argv (the defaults above are not exported), the URI through the environment;
  # the file also turns on MLflow's credential cache for MLFLOW_OCI_PASSWORD_CACHE_SECONDS.
  (umask 077 && python3 -m mlflow_oci.auth_ini write "$MLFLOW_AUTH_CONFIG_PATH" "$MLFLOW_AUTH_DEFAULT_PERMISSION" \
    "$MLFLOW_AUTH") || die "cannot write $MLFLOW_AUTH_CONFIG_PATH"
  unset MLFLOW_AUTH_DATABASE_URI
  # Artifact locations a user names are refused unless MLflow can check them (lib/mlflow_oci/artifact_rules.py).
  export MLFLOW_CREATE_MODEL_VERSION_SOURCE_VALIDATION_REGEX
  MLFLOW_CREATE_MODEL_VERSION_SOURCE_VALIDATION_REGEX=$(python3 -c 'from mlflow_oci.artifact_rules import MODEL_VERSION_SOURCES as s; print(s)')
  # MLflow creates its first admin before the workers start when it runs its own app; with ours (below) that
  # is done here, so a missing or refused password stops the start with one message.
  python3 -c 'from mlflow.server.auth import bootstrap_admin_user as b, get_flask_server_secret_key as k; k(); b()' ||
    die "MLflow's users could not be prepared (see above)"
fi
# MLflow's app (with its users when MLFLOW_AUTH is mlflow or oidc) and the audit trail: lib/mlflow_oci/server_app.py.
args+=(--app-name oci)
log "starting: mlflow ${args[*]}"
exec mlflow "${args[@]}"
