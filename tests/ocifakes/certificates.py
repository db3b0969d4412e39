"""OCI Certificates as a private CA issues and hands out what it issued, for the instance fake (server.py):

  GET /20210224/certificateBundles/{certificateId}?certificateBundleType=…    a certificate's current version
  GET /20210224/certificateAuthorityBundles/{certificateAuthorityId}          the CA's certificate

A certificate is issued by the CA for IP and DNS names, with a validity, and renewed as a new version (as the
service does under a renewal rule). The bundle with the private key is handed only to a principal granted that
bundle type for that certificate, as `read leaf-certificate-bundles where
target.leaf-certificate.bundle-type = 'CERTIFICATE_CONTENT_WITH_PRIVATE_KEY'` allows (Certificates' policy
reference); anything else answers 404 NotAuthorizedOrNotFound, like a certificate that does not exist.
Field names: the Certificates API's CertificateBundle and CertificateAuthorityBundle models (API 20210224).
"""
import datetime
import ipaddress
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from harness import ocids

PUBLIC_ONLY = "CERTIFICATE_CONTENT_PUBLIC_ONLY"
WITH_PRIVATE_KEY = "CERTIFICATE_CONTENT_WITH_PRIVATE_KEY"
PEM = serialization.Encoding.PEM


def _iso(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Version:
    number: int
    certificate: x509.Certificate
    key: rsa.RSAPrivateKey

    def validity(self) -> dict:
        return {"timeOfValidityNotBefore": _iso(self.certificate.not_valid_before_utc),
                "timeOfValidityNotAfter": _iso(self.certificate.not_valid_after_utc)}


@dataclass
class Issued:
    ocid: str
    name: str
    names: tuple[str, ...]
    versions: list[Version] = field(default_factory=list)


class PrivateCA:
    def __init__(self, name: str, region_key: str = "iad"):
        self.ocid = ocids.mint("certificateauthority", name, region_key)
        self.name = name
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                            .not_valid_before(now - datetime.timedelta(minutes=5))
                            .not_valid_after(now + datetime.timedelta(days=3650))
                            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                                           critical=True)
                            .sign(self.key, hashes.SHA256()))
        self.region_key = region_key
        self.issued: dict[str, Issued] = {}

    def issue(self, name: str, names: tuple[str, ...], days: float = 365) -> str:
        """A certificate (TLS_SERVER) for IP addresses and DNS names; its OCID."""
        ocid = ocids.mint("certificate", f"{self.ocid}/{name}", self.region_key)
        self.issued[ocid] = Issued(ocid, name, tuple(names))
        self.renew(ocid, days)
        return ocid

    def renew(self, ocid: str, days: float = 365, not_before: datetime.datetime | None = None) -> int:
        """A new current version, as the renewal rule makes; its version number."""
        issued = self.issued[ocid]
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        start = not_before or datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
        alternative = [x509.IPAddress(ipaddress.ip_address(n)) if _is_ip(n) else x509.DNSName(n) for n in issued.names]
        certificate = (x509.CertificateBuilder()
                       .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issued.names[0])]))
                       .issuer_name(self.certificate.subject).public_key(key.public_key())
                       .serial_number(x509.random_serial_number())
                       .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=days))
                       .add_extension(x509.SubjectAlternativeName(alternative), critical=False)
                       .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                       .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                       .sign(self.key, hashes.SHA256()))
        issued.versions.append(Version(len(issued.versions) + 1, certificate, key))
        return len(issued.versions)

    # ------------------------------------------------------------------ the retrieval API's answers
    def certificate_bundle(self, ocid: str, bundle_type: str) -> dict:
        issued = self.issued[ocid]
        current = issued.versions[-1]
        document = {
            "certificateBundleType": bundle_type, "certificateId": ocid, "certificateName": issued.name,
            "versionNumber": current.number, "serialNumber": format(current.certificate.serial_number, "X"),
            "certificatePem": current.certificate.public_bytes(PEM).decode(),
            "certChainPem": self.certificate.public_bytes(PEM).decode(),
            "timeCreated": _iso(current.certificate.not_valid_before_utc), "validity": current.validity(),
            "stages": ["CURRENT", "LATEST"],
        }
        if bundle_type == WITH_PRIVATE_KEY:
            document["privateKeyPem"] = current.key.private_bytes(
                PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()).decode()
        return document

    def authority_bundle(self) -> dict:
        return {"certificateAuthorityId": self.ocid, "certificateAuthorityName": self.name,
                "serialNumber": format(self.certificate.serial_number, "X"), "versionNumber": 1,
                "certificatePem": self.certificate.public_bytes(PEM).decode(),
                "timeCreated": _iso(self.certificate.not_valid_before_utc),
                "validity": {"timeOfValidityNotBefore": _iso(self.certificate.not_valid_before_utc),
                             "timeOfValidityNotAfter": _iso(self.certificate.not_valid_after_utc)},
                "stages": ["CURRENT", "LATEST"]}


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False
