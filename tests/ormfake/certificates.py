"""OCI Certificates' CA-bundle call (`GET /20210224/certificateAuthorityBundles/{id}`) beside the Resource
Manager fake, on the same loopback server and signature check: what `orm-pack apply` and `outputs` read with
the user's own key to save the stack's CA certificate.

Rules of the real API it keeps (Certificates Retrieval API, GetCertificateAuthorityBundle): the current
version comes back as a CertificateAuthorityBundle with `certificatePem`; a CA that does not exist and one
the caller may not read answer alike: 404 NotAuthorizedOrNotFound.
The CAs are those of the stacks' Terraform states (oci_certificates_management_certificate_authority) and
those a test adds; each gets a self-signed certificate made once, named after it, unless the test gives the
CA's certificate (to issue server certificates from it).
"""
from __future__ import annotations

import datetime
from functools import cache

from .tfstate import managed_attributes

API = "/20210224/certificateAuthorityBundles/"


class CertificatesError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def is_certificates(path: str) -> bool:
    return path.startswith(API)


def authorities_in_state(state: dict) -> dict:
    """CA OCID -> its name, for every CA in a Terraform state."""
    return {a["id"]: a.get("name") or a["id"] for a in managed_attributes(state, "oci_certificates_management_certificate_authority")
            if a.get("id")}


@cache
def certificate_pem(authority_id: str, name: str) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now)
                   .not_valid_after(now + datetime.timedelta(days=3650))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                   .sign(key, hashes.SHA256()))
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def handle(authorities: dict, readable: bool, method: str, path: str, pems: dict | None = None) -> tuple[int, dict]:
    """The bundle of a known CA: the certificate a test gave it (`pems`), else one made for it."""
    authority_id = path[len(API):]
    if method != "GET" or not authority_id or "/" in authority_id:
        raise CertificatesError(404, "NotFound", f"No such API {method} {path}")
    if authority_id not in authorities or not readable:
        raise CertificatesError(404, "NotAuthorizedOrNotFound",
                                f"Authorization failed or requested resource not found: {authority_id}")
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return 200, {"certificateAuthorityId": authority_id, "certificateAuthorityName": authorities[authority_id],
                 "serialNumber": "01", "versionNumber": 1, "timeCreated": now, "stages": ["CURRENT", "LATEST"],
                 "certificatePem": (pems or {}).get(authority_id) or certificate_pem(authority_id, authorities[authority_id]),
                 "validity": {"timeOfValidityNotBefore": now, "timeOfValidityNotAfter": now}}
