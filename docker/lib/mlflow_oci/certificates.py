"""The proxy's TLS certificate from OCI Certificates, read through the instance principal.

The stack's private CA (OCI Certificates) issues each VM a certificate for its addresses and renews it
before it expires; the VM reads the current version at boot and on a timer and installs it for nginx:

    python3 -m mlflow_oci.certificates install CERTIFICATE_OCID CERT_FILE KEY_FILE [--ca CA_OCID CA_FILE]
    python3 -m mlflow_oci.certificates authority CA_OCID CA_FILE      (the CA's certificate alone)
    python3 -m mlflow_oci.certificates valid CERT_FILE                (exit 1 once it has expired)

CERT_FILE gets the certificate and its chain, KEY_FILE its private key (mode 0600), CA_FILE the CA's own
certificate (what a client verifies with); each file is replaced whole, and only when it changed. Exit 0
when nothing changed, 10 when something was installed (the caller reloads nginx: no connection is dropped),
3 with one line naming the certificate and what to check when it cannot be read.

Nothing is logged of a key; a line names the certificate, its version and when it expires.
"""
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import auth, ocids

WITH_PRIVATE_KEY = "CERTIFICATE_CONTENT_WITH_PRIVATE_KEY"
PROGRAM = "mlflow-certificates"
INSTALLED = 10


class CertificateError(Exception):
    """A certificate could not be read or does not fit; str() is the one line to print."""


@dataclass(frozen=True)
class Bundle:
    version: int
    certificate_pem: str     # the certificate, then its chain up to the CA
    private_key_pem: str
    not_after: str


def _call(what: str, where: str, grant: str, call):
    import oci

    try:
        return call(auth.certificates_client()).data
    except auth.AuthError as exc:
        raise CertificateError(f"cannot read {what}: {exc}") from exc
    except oci.exceptions.ServiceError as exc:
        hint = (f"check that it exists and that a policy lets this instance's dynamic group {grant}"
                if exc.status in (401, 403, 404) else "the Certificates service refused the call")
        raise CertificateError(f"cannot read {what} ({where}): {exc.status} {exc.code}: {hint}") from exc
    except Exception as exc:  # network errors, as the SDK's vendored requests raises them
        raise CertificateError(f"cannot reach the Certificates service for {what} ({where}): "
                               f"{type(exc).__name__}: {auth.first_line(exc)}") from exc


def read_certificate(certificate_ocid: str) -> Bundle:
    """The current version of a certificate the CA issued, with its private key."""
    if not ocids.is_ocid(certificate_ocid, "certificate"):
        raise CertificateError(f"not a certificate's OCID (ocid1.certificate.…): {certificate_ocid!r}")
    data = _call("the TLS certificate", certificate_ocid,
                 f"'read leaf-certificate-bundles' on it with bundle type {WITH_PRIVATE_KEY}",
                 lambda client: client.get_certificate_bundle(certificate_ocid, certificate_bundle_type=WITH_PRIVATE_KEY))
    key = getattr(data, "private_key_pem", None)
    if not key or not data.certificate_pem:
        raise CertificateError(f"the TLS certificate ({certificate_ocid}) came without its private key")
    chain = (data.cert_chain_pem or "").strip()
    pem = data.certificate_pem.strip() + "\n" + (chain + "\n" if chain else "")
    _check_pair(pem, key, certificate_ocid)
    return Bundle(data.version_number, pem, key.strip() + "\n", str(data.validity.time_of_validity_not_after))


def read_authority(authority_ocid: str) -> str:
    """The CA's own certificate (PEM)."""
    if not ocids.is_ocid(authority_ocid, "certificateauthority"):
        raise CertificateError(f"not a certificate authority's OCID (ocid1.certificateauthority.…): {authority_ocid!r}")
    data = _call("the CA's certificate", authority_ocid, "'read certificate-authority-bundles' on it",
                 lambda client: client.get_certificate_authority_bundle(authority_ocid))
    return data.certificate_pem.strip() + "\n"


def _check_pair(certificate_pem: str, key_pem: str, where: str) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except ValueError as exc:
        raise CertificateError(f"the TLS certificate ({where}) is not PEM: {exc}") from exc
    public = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if certificate.public_key().public_bytes(*public) != key.public_key().public_bytes(*public):
        raise CertificateError(f"the TLS certificate ({where}) and its private key do not belong together")


def _write_if_changed(path: Path, text: str, mode: int) -> bool:
    """Replaces `path` whole (a reader sees the old file or the new one) when its content differs."""
    if path.exists() and path.read_text() == text and (path.stat().st_mode & 0o777) == mode:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(handle, mode)
        with os.fdopen(handle, "w") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return True


def install(certificate_ocid: str, cert_file: Path, key_file: Path, authority: tuple[str, Path] | None = None) -> bool:
    """Writes the certificate's current version (and the CA's certificate); True when a file changed. The key
    goes first, then the certificate: nginx, reloaded after both, never pairs a new certificate with an old key."""
    bundle = read_certificate(certificate_ocid)
    ca_pem = read_authority(authority[0]) if authority else None
    changed = _write_if_changed(key_file, bundle.private_key_pem, 0o600)
    changed = _write_if_changed(cert_file, bundle.certificate_pem, 0o644) or changed
    if authority:
        changed = _write_if_changed(authority[1], ca_pem, 0o644) or changed
    state = "installed" if changed else "unchanged:"
    print(f"{PROGRAM}: {state} certificate {certificate_ocid} version {bundle.version}, valid until {bundle.not_after}",
          file=sys.stderr)
    return changed


def install_authority(authority_ocid: str, ca_file: Path) -> bool:
    """Writes the CA's certificate (what the tracking pods verify MySQL with); True when it changed."""
    changed = _write_if_changed(ca_file, read_authority(authority_ocid), 0o644)
    print(f"{PROGRAM}: {'installed' if changed else 'unchanged:'} the certificate of CA {authority_ocid} at {ca_file}",
          file=sys.stderr)
    return changed


def still_valid(cert_file: Path) -> bool:
    """Whether the first certificate in the file has not expired (the proxy pod's liveness check)."""
    import datetime

    from cryptography import x509

    try:
        certificate = x509.load_pem_x509_certificate(cert_file.read_bytes())
    except (OSError, ValueError) as exc:
        print(f"{PROGRAM}: {cert_file}: {exc}", file=sys.stderr)
        return False
    if certificate.not_valid_after_utc <= datetime.datetime.now(datetime.timezone.utc):
        print(f"{PROGRAM}: {cert_file} expired at {certificate.not_valid_after_utc.isoformat()}", file=sys.stderr)
        return False
    return True


def main(argv: list[str]) -> int:
    if argv[:1] == ["valid"] and len(argv) == 2:
        return 0 if still_valid(Path(argv[1])) else 1
    usage = ("usage: python3 -m mlflow_oci.certificates install CERTIFICATE_OCID CERT_FILE KEY_FILE [--ca CA_OCID CA_FILE]\n"
             "       python3 -m mlflow_oci.certificates authority CA_OCID CA_FILE\n"
             "       python3 -m mlflow_oci.certificates valid CERT_FILE")
    is_install = argv[:1] == ["install"] and (len(argv) == 4 or (len(argv) == 7 and argv[4] == "--ca"))
    if not is_install and not (argv[:1] == ["authority"] and len(argv) == 3):
        print(usage, file=sys.stderr)
        return 2
    authority = (argv[5], Path(argv[6])) if len(argv) == 7 else None
    try:
        if argv[0] == "authority":
            changed = install_authority(argv[1], Path(argv[2]))
        else:
            changed = install(argv[1], Path(argv[2]), Path(argv[3]), authority)
    except CertificateError as exc:
        print(f"{PROGRAM}: error: {exc}", file=sys.stderr)
        return 3
    return INSTALLED if changed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
