"""Vault's secret retrieval call (`GET /20190301/secretbundles/{secretId}`) beside the Resource Manager
fake, on the same loopback server and signature check: what `orm-pack oke deploy` reads with the
user's own key.

Rules of the real API it keeps (Vault Secret Retrieval API reference, GetSecretBundle):
- the current version comes back as a SecretBundle whose secretBundleContent is
  `{"contentType": "BASE64", "content": <base64>}`;
- a secret that does not exist and one the caller may not read answer alike: 404
  NotAuthorizedOrNotFound.
The secrets are those of the stacks' Terraform states (oci_vault_secret, as applied) and those a test adds.
"""
from __future__ import annotations

from datetime import datetime, timezone

from .tfstate import managed_attributes

API = "/20190301/secretbundles/"


class SecretsError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def is_secrets(path: str) -> bool:
    return path.startswith(API)


def secrets_in_state(state: dict) -> dict:
    """secret OCID -> base64 content of every oci_vault_secret in a Terraform state."""
    found = {}
    for attributes in managed_attributes(state, "oci_vault_secret"):
        content = (attributes.get("secret_content") or [{}])[0].get("content")
        if attributes.get("id") and content:
            found[attributes["id"]] = content
    return found


def handle(secrets: dict, readable: bool, method: str, path: str) -> tuple[int, dict]:
    """(status, SecretBundle) for GET secretbundles/{id}; `readable`: whether a policy lets the caller read it."""
    secret_id = path[len(API):]
    if method != "GET" or not secret_id or "/" in secret_id:
        raise SecretsError(404, "NotFound", f"No such API {method} {path}")
    if secret_id not in secrets or not readable:
        raise SecretsError(404, "NotAuthorizedOrNotFound",
                           f"Authorization failed or requested resource not found: secret {secret_id}")
    return 200, {
        "secretId": secret_id, "versionNumber": 1, "versionName": None,
        "timeCreated": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "stages": ["CURRENT", "LATEST"], "metadata": None,
        "secretBundleContent": {"contentType": "BASE64", "content": secrets[secret_id]},
    }
