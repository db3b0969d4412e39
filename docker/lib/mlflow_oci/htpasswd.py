"""Writes an nginx password file for one user, the password read from stdin (as `htpasswd -i`):

    python3 -m mlflow_oci.secrets print OCID | python3 -m mlflow_oci.htpasswd USER FILE

The images have Python but no `htpasswd`; the hash is bcrypt ($2b$, what `htpasswd -B` writes on the VMs)
from the C library's crypt(), which nginx checks with the same function. The file is written 0640.
"""
import os
import sys
import warnings

with warnings.catch_warnings():  # crypt is deprecated from Python 3.11; the images pin 3.11
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt

PROGRAM = "mlflow-htpasswd"


def entry(user: str, password: str) -> str:
    """One `user:hash` line."""
    if not user or ":" in user or any(ch.isspace() for ch in user):
        raise ValueError(f"user name must be non-empty, without ':' or spaces (got {user!r})")
    if not password:
        raise ValueError("the password on stdin is empty")
    hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 10))
    if not hashed or not hashed.startswith("$2"):
        raise ValueError("this C library's crypt() has no bcrypt")
    return f"{user}:{hashed}\n"


def write(path: str, line: str) -> None:
    temporary = f"{path}.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(line)
    os.replace(temporary, path)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {PROGRAM} USER FILE  (the password on stdin)", file=sys.stderr)
        return 2
    user, path = argv
    password = sys.stdin.read().rstrip("\n")
    try:
        write(path, entry(user, password))
    except (ValueError, OSError) as exc:
        print(f"{PROGRAM}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
