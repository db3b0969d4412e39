"""The MySQL administrator's password for the migrate Job, read from Vault with the user's own key.

The OKE worker nodes may not read it: on a basic cluster every pod has the nodes' instance principal, so
a grant to the nodes would be a grant to every pod. The user who deploys the stack may (they created the
secret); a user who may not gets one line that says what to ask for, before anything is applied.
"""
from __future__ import annotations

import base64

from orm_pack.cloud import ociconfig
from orm_pack.errors import ExitCode, UserError


def read(context, secret_id: str, endpoint: str | None = None) -> str:
    import oci

    client = ociconfig.client("secrets", context, endpoint=endpoint)
    try:
        bundle = client.get_secret_bundle(secret_id).data
    except oci.exceptions.ServiceError as exc:
        if exc.status in (401, 403, 404):
            raise UserError(
                f"cannot read the MySQL administrator's secret {secret_id} ({exc.status} {exc.code}) with "
                f"{context.describe()}: the migrate Job needs it to create the database and its user. Run this as "
                "the user who applied the stack, or ask for `read secret-bundles` on that secret; the cluster's "
                "nodes are deliberately not allowed to read it", ExitCode.CONFIG) from None
        raise
    content = getattr(bundle.secret_bundle_content, "content", None)
    if not content:
        raise UserError(f"secret {secret_id} has no content the migrate Job could use", ExitCode.FAILURE)
    return base64.b64decode(content).decode()
