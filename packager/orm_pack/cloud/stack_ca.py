"""The stack's CA certificate, read with the user's own OCI credentials and saved beside their OCI config.

The stack's private CA (OCI Certificates, output `tls_ca_id`) issues the servers' certificates; a client
verifies them with the CA's certificate (MLflow's MLFLOW_TRACKING_SERVER_CERT_PATH). Reading it through the
Certificates API with the user's key is the authenticated channel: nothing is trusted on first use.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from orm_pack.cloud import ociconfig

OUTPUT = "tls_ca_id"
PEM_HEADER = "-----BEGIN CERTIFICATE-----"


@dataclass(frozen=True)
class SavedCa:
    path: Path | None
    problem: str = ""     # why it could not be saved, to show as a warning


def ca_file(context: ociconfig.OciContext, stack_name: str) -> Path:
    """~/.oci/<stack name>-ca.pem (oci-mlflow-ca.pem for the default stack), beside the OCI config the
    credentials came from."""
    config = Path(context.config_file or "~/.oci/config").expanduser()
    return config.parent / f"{stack_name}-ca.pem"


def save(context: ociconfig.OciContext, outputs: dict, stack_name: str, endpoint: str | None = None) -> SavedCa | None:
    """Reads the CA named by the outputs and writes it to `ca_file`; None when the stack has no CA."""
    import oci

    authority = outputs.get(OUTPUT) or ""
    if not authority:
        return None
    try:
        client = ociconfig.client("certificates", context, ociconfig.retry_strategy(2), endpoint)
        pem = client.get_certificate_authority_bundle(authority).data.certificate_pem or ""
    except oci.exceptions.ServiceError as exc:
        hint = ("ask an administrator for 'read certificate-authority-bundles' on it" if exc.status in (401, 403, 404)
                else "the Certificates service refused the call")
        return SavedCa(None, f"could not read the servers' CA certificate ({authority}): {exc.status} {exc.code}: {hint}")
    except Exception as exc:  # the network, as the SDK's vendored requests raises it
        return SavedCa(None, f"could not reach OCI Certificates for the servers' CA certificate ({authority}): "
                             f"{type(exc).__name__}")
    if PEM_HEADER not in pem:
        return SavedCa(None, f"the CA {authority} answered no PEM certificate")
    path = ca_file(context, stack_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w") as file:
        file.write(pem.strip() + "\n")
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)
    return SavedCa(path)
