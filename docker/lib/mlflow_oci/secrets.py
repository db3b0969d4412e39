"""Vault secrets for the runtime, read at start through the instance principal.

The VMs' settings name secrets, never values: every `<NAME>_SECRET_OCID=ocid1.vaultsecret…`
variable becomes `<NAME>=<the secret's current value>` in the environment of the command run by
`exec`, and so does every `<NAME>_SECRET_NAME=<secret name>`, looked up by name in the vault
`MLFLOW_VAULT_OCID`. By name is for a secret that exists only after the VM does: the stack can give the
VM a name it chose, never an OCID Vault has not issued yet; until the secret exists the start fails and
the service starts again.

    python3 -m mlflow_oci.secrets exec -- COMMAND [ARG...]   (the images' entrypoints)
    python3 -m mlflow_oci.secrets print OCID                 (one value on stdout, e.g. into htpasswd -i)

Values stay in process memory; nothing is logged but the variable name and the secret's OCID.
A secret that cannot be read stops the start with one line naming it and what to check.
"""
import base64
import os
import re
import sys

from . import auth, ocids

SUFFIX = "_SECRET_OCID"
NAME_SUFFIX = "_SECRET_NAME"
VAULT_VARIABLE = "MLFLOW_VAULT_OCID"
SECRET_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,255}$")
PROGRAM = "mlflow-secrets"


class SecretError(Exception):
    """A secret could not be resolved; str() is the one line to print."""


def read(secret_ocid: str, name: str = "secret") -> str:
    """The current value of a Vault secret (BASE64 content, UTF-8 text)."""
    if not ocids.is_ocid(secret_ocid, "vaultsecret"):
        raise SecretError(f"{name} is not a Vault secret OCID (ocid1.vaultsecret.…): {secret_ocid!r}")
    return _bundle_text(lambda client: client.get_secret_bundle(secret_ocid), secret_ocid, name)


def read_by_name(secret_name: str, vault_ocid: str, name: str = "secret") -> str:
    """The current value of the secret called `secret_name` in the vault `vault_ocid`."""
    if not SECRET_NAME.match(secret_name):
        raise SecretError(f"{name} is not a Vault secret name (letters, digits, . _ -): {secret_name!r}")
    if not vault_ocid:
        raise SecretError(f"{name} names a secret by name: set {VAULT_VARIABLE} to its vault's OCID (ocid1.vault.…)")
    if not ocids.is_ocid(vault_ocid, "vault"):
        raise SecretError(f"{VAULT_VARIABLE} is not a vault's OCID (ocid1.vault.<realm>.<region>.<…>.<id>): {vault_ocid!r}")
    where = f"{secret_name} in {vault_ocid}"
    return _bundle_text(lambda client: client.get_secret_bundle_by_name(secret_name=secret_name, vault_id=vault_ocid),
                        where, name, missing_hint="it is created after this machine by the stack, so until then "
                        "the start fails and the service tries again; if it stays, check")


def _bundle_text(get_bundle, where: str, name: str, missing_hint: str = "check") -> str:
    import oci

    try:
        bundle = get_bundle(auth.secrets_client()).data
    except auth.AuthError as exc:
        raise SecretError(f"cannot read {name}: {exc}") from exc
    except oci.exceptions.ServiceError as exc:
        hint = (f"{missing_hint} that the secret exists and that a policy lets this instance's dynamic group "
                "'read secret-bundles' on it") if exc.status in (401, 403, 404) else "the Secrets service refused the call"
        raise SecretError(f"cannot read {name} ({where}): {exc.status} {exc.code}: {hint}") from exc
    except Exception as exc:  # network errors, as the SDK's vendored requests raises them
        raise SecretError(f"cannot reach the Secrets service for {name} ({where}): "
                          f"{type(exc).__name__}: {auth.first_line(exc)}") from exc
    content = bundle.secret_bundle_content
    if getattr(content, "content_type", "BASE64") != "BASE64" or content.content is None:
        raise SecretError(f"{name} ({where}) has no text content")
    try:
        return base64.b64decode(content.content, validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError) as exc:
        raise SecretError(f"{name} ({where}) is not base64-encoded UTF-8 text") from exc


def resolve(environ: dict) -> dict:
    """A copy of `environ` with every <NAME>_SECRET_OCID and <NAME>_SECRET_NAME resolved into <NAME>."""
    resolved = dict(environ)
    for variable, reference in sorted(environ.items()):
        suffix = next((s for s in (SUFFIX, NAME_SUFFIX) if variable.endswith(s)), None)
        if suffix is None:
            continue
        del resolved[variable]
        if not reference:
            continue
        target = variable[: -len(suffix)]
        if environ.get(target):
            raise SecretError(f"set {target} or {variable}, not both")
        if environ.get(target + SUFFIX) and environ.get(target + NAME_SUFFIX):
            raise SecretError(f"set {target}{SUFFIX} or {target}{NAME_SUFFIX}, not both")
        resolved[target] = (read(reference, variable) if suffix == SUFFIX
                            else read_by_name(reference, environ.get(VAULT_VARIABLE, ""), variable))
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
