"""The certificates the instance metadata service hands out: an intermediate CA and, per instance,
a leaf whose subject carries the instance's and tenancy's OCIDs (OU=opc-instance:…, OU=opc-tenant:…),
where the SDK looks for them."""
import datetime
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

PEM = serialization.Encoding.PEM


def _key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _certificate(subject, issuer, public_key, signing_key, is_ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
            .sign(signing_key, hashes.SHA256()))


@dataclass
class InstanceIdentity:
    instance_ocid: str
    tenancy_ocid: str
    certificate: x509.Certificate
    key: rsa.RSAPrivateKey
    intermediate: x509.Certificate

    def imds_files(self) -> dict[str, bytes]:
        """IMDS v2 paths under /opc/v2 -> body."""
        return {
            "/identity/cert.pem": self.certificate.public_bytes(PEM),
            "/identity/key.pem": self.key.private_bytes(PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                                        serialization.NoEncryption()),
            "/identity/intermediate.pem": self.intermediate.public_bytes(PEM),
        }


class CertificateAuthority:
    def __init__(self, tenancy_ocid: str):
        self.tenancy_ocid = tenancy_ocid
        self.key = _key()
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Fake OCI instance intermediate CA")])
        self.certificate = _certificate(self.name, self.name, self.key.public_key(), self.key, True)

    def issue(self, instance_ocid: str, compartment_ocid: str) -> InstanceIdentity:
        key = _key()
        subject = x509.Name([
            # An instance OCID is 83 characters or more, past X.509's 64 for a common name; OCI's instance
            # certificates carry it there all the same, so the library's length check is skipped.
            x509.NameAttribute(NameOID.COMMON_NAME, instance_ocid, _validate=False),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "opc-certtype:instance"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"opc-compartment:{compartment_ocid}"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"opc-instance:{instance_ocid}"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"opc-tenant:{self.tenancy_ocid}"),
        ])
        certificate = _certificate(subject, self.name, key.public_key(), self.key, False)
        return InstanceIdentity(instance_ocid, self.tenancy_ocid, certificate, key, self.certificate)

    def issued(self, certificate: x509.Certificate) -> bool:
        try:
            certificate.verify_directly_issued_by(self.certificate)
            return True
        except (ValueError, TypeError, Exception):
            return False
