"""Vault secrets for the runtime, read at start through the instance principal.

The VMs' settings name secrets, never values: every `<NAME>_SECRET_OCID=ocid1.vaultsecret…`
variable becomes `<NAME>=<the secret's current value>` in the environment of the command run by

    python3 -m mlflow_oci.secrets exec -- COMMAND [ARG...]   (the images' entrypoints)
    python3 -m mlflow_oci.secrets print OCID                 (one value on stdout, e.g. into htpasswd -i)

Values stay in process memory; nothing is logged but the variable name and the secret's OCID.
A secret that cannot be read stops the start with one line naming it and what to check.
"""
import base64
import os
import re
import sys

from . import auth

SUFFIX = "_SECRET_OCID"
SECRET_OCID = re.compile(r"^ocid1\.vaultsecret\.[a-z0-9-]+\.[a-z0-9-]*\.[a-z0-9]+$")
PROGRAM = "mlflow-secrets"


class SecretError(Exception):
    """A secret could not be resolved; str() is the one line to print."""


def read(secret_ocid: str, name: str = "secret") -> str:
    """The current value of a Vault secret (BASE64 content, UTF-8 text)."""
    import oci

    if not SECRET_OCID.match(secret_ocid):
        raise SecretError(f"{name} is not a Vault secret OCID (ocid1.vaultsecret.…): {secret_ocid!r}")
    try:
        bundle = auth.secrets_client().get_secret_bundle(secret_ocid).data
    except auth.AuthError as exc:
        raise SecretError(f"cannot read {name}: {exc}") from exc
    except oci.exceptions.ServiceError as exc:
        hint = ("check that the secret exists and that a policy lets this instance's dynamic group "
                "'read secret-bundles' on it") if exc.status in (401, 403, 404) else "the Secrets service refused the call"
        raise SecretError(f"cannot read {name} ({secret_ocid}): {exc.status} {exc.code}: {hint}") from exc
    except Exception as exc:  # network errors, as the SDK's vendored requests raises them
        raise SecretError(f"cannot reach the Secrets service for {name} ({secret_ocid}): "
                          f"{type(exc).__name__}: {auth.first_line(exc)}") from exc
    content = bundle.secret_bundle_content
    if getattr(content, "content_type", "BASE64") != "BASE64" or content.content is None:
        raise SecretError(f"{name} ({secret_ocid}) has no text content")
    try:
        return base64.b64decode(content.content, validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError) as exc:
        raise SecretError(f"{name} ({secret_ocid}) is not base64-encoded UTF-8 text") from exc


def resolve(environ: dict) -> dict:
    """A copy of `environ` with every <NAME>_SECRET_OCID resolved into <NAME>."""
    resolved = dict(environ)
    for variable, ocid in sorted(environ.items()):
        if not variable.endswith(SUFFIX):
            continue
        del resolved[variable]
        if not ocid:
            continue
        target = variable[: -len(SUFFIX)]
        if environ.get(target):
            raise SecretError(f"set {target} or {variable}, not both")
        resolved[target] = read(ocid, variable)
    return resolved


def main(argv: list[str]) -> int:
    try:
        if len(argv) >= 2 and argv[0] == "exec" and argv[1] == "--" and len(argv) > 2:
            environ = resolve(dict(os.environ))
            os.execvpe(argv[2], argv[2:], environ)
        if len(argv) == 2 and argv[0] == "print":
            sys.stdout.write(read(argv[1]) + "\n")
            return 0
    except SecretError as exc:
        print(f"{PROGRAM}: error: {exc}", file=sys.stderr)
        return 3
    print("usage: python3 -m mlflow_oci.secrets exec -- COMMAND [ARG...] | print SECRET_OCID", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
