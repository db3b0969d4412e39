"""The settings file of MLflow's basic-auth app (MLFLOW_AUTH=mlflow or oidc), written by
docker/tracking/entrypoint.sh before the server starts; MLflow reads its auth settings from a file only.

    python3 -m mlflow_oci.auth_ini check                      MLFLOW_OCI_PASSWORD_CACHE_SECONDS: a problem, or
                                                              the summary line for the log
    python3 -m mlflow_oci.auth_ini write PATH PERMISSION MODE the file; MLFLOW_AUTH_DATABASE_URI from the environment

Passwords are checked once, then trusted for a while. MLflow stores each password as a scrypt hash, and
checking one costs tens of milliseconds of CPU by design; checked on every request, a training loop logging
with a personal password held a replica at 3 to 5 requests per second (bench_auth.py, `basic`). So the file
turns on MLflow's own credential cache (mlflow/server/auth/__init__.py, `_authenticate_cached`, MLflow 3.17;
`auth_cache_ttl_seconds`, off by MLflow's default), which is the design this needs, and has no code of ours:
- a check that passed is kept per process, keyed by the user name and HMAC-SHA256 of the password under a
  random key made at the process's start: neither the password nor anything a dictionary attack could use
  is kept (the cached value is MLflow's user row, the scrypt hash as the database holds it);
- a wrong password is never kept, so spraying guesses neither gets in nor pushes out anyone's entry;
- at most AUTH_CACHE_ENTRIES entries (cachetools.TTLCache: expired ones go first, then the least recently
  used), only ever filled by correct passwords;
- an entry lasts MLFLOW_OCI_PASSWORD_CACHE_SECONDS from its check (30 by default; 0 turns the cache off;
  more than 60 is refused: the product's deadline for a sign-out, signouts.MAX_CHECK_SECONDS, holds for
  passwords too). A password change, an admin flag change or a removal through MLflow's API drops the
  user's entries at once in the process that made it; every other process and replica stops accepting the
  old password when its entry expires, within those seconds.
Measured (bench_auth.py, one replica, 8 clients, 2 shared cores, 2026-12-07): see docker/README.md, "Users".
"""
import os
import sys

from mlflow_oci.signouts import MAX_CHECK_SECONDS

PASSWORD_CACHE_SECONDS = 30      # the default: half the deadline, like the sign-out check
AUTH_CACHE_ENTRIES = 10_000      # credentials kept per process at most (MLflow's own default, said aloud)
MAX_PASSWORD_CACHE_SECONDS = MAX_CHECK_SECONDS


class SettingsError(ValueError):
    """A setting is wrong; the message says what to set."""


def password_cache_seconds(environ=os.environ) -> int:
    """How long a process trusts a password it checked: MLFLOW_OCI_PASSWORD_CACHE_SECONDS, 0 to 60."""
    value = environ.get("MLFLOW_OCI_PASSWORD_CACHE_SECONDS", str(PASSWORD_CACHE_SECONDS)).strip()
    if not (value.isascii() and value.isdigit()) or int(value) > MAX_PASSWORD_CACHE_SECONDS:
        raise SettingsError(f"MLFLOW_OCI_PASSWORD_CACHE_SECONDS must be an integer between 0 and "
                            f"{MAX_PASSWORD_CACHE_SECONDS}: a changed password or a removed user must be refused by "
                            f"every replica within {MAX_PASSWORD_CACHE_SECONDS} s (got {value!r})")
    return int(value)


def summary(environ=os.environ) -> str:
    seconds = password_cache_seconds(environ)
    if not seconds:
        return "passwords: checked on every request (MLFLOW_OCI_PASSWORD_CACHE_SECONDS=0)"
    return (f"passwords: a replica trusts a password it checked for {seconds} s (a change reaches every replica "
            f"within {seconds} s)")


def ini_text(permission: str, mode: str, environ=os.environ) -> str:
    """The file for MLFLOW_AUTH `mode` (mlflow or oidc) with the users' database MLFLOW_AUTH_DATABASE_URI."""
    # configparser would expand the URI's %-escapes: they are doubled.
    function = "oidc_auth:authenticate" if mode == "oidc" else "artifact_rules:authenticate_basic"
    return ("[mlflow]\n"
            f"default_permission = {permission}\n"
            f"database_uri = {environ['MLFLOW_AUTH_DATABASE_URI'].replace('%', '%%')}\n"
            f"authorization_function = mlflow_oci.{function}\n"
            f"auth_cache_ttl_seconds = {password_cache_seconds(environ)}\n"
            f"auth_cache_max_size = {AUTH_CACHE_ENTRIES}\n")


def main(argv: list[str]) -> int:
    try:
        if argv == ["check"]:
            print(summary())
            return 0
        if len(argv) == 4 and argv[0] == "write":
            text = ini_text(argv[2], argv[3])
            # It holds the database password: readable by the server's user only.
            descriptor = os.open(argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as ini:
                ini.write(text)
            return 0
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 3
    print("usage: python3 -m mlflow_oci.auth_ini check | write PATH PERMISSION MODE", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
