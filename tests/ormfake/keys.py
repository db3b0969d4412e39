"""Test API keys and OCI config files, made in the test session (nothing secret is committed)."""
import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

TENANCY = "ocid1.tenancy.oc1..aaaaaaaahm32hgg7k53bwriwy2jmtnqxqpglxzbxi3x5hmwu622uywby3yua"
USER = "ocid1.user.oc1..aaaaaaaa7xov6egsvlsjqjbeduextlxfcd2uujd2vkzmemdhme4q2wbnlopq"


@dataclass(frozen=True)
class ApiKey:
    private_pem: bytes
    public_key: object
    fingerprint: str
    tenancy: str = TENANCY
    user: str = USER

    @classmethod
    def generate(cls, tenancy: str = TENANCY, user: str = USER) -> "ApiKey":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
        der = key.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
        digest = hashlib.md5(der).hexdigest()
        fingerprint = ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))
        return cls(pem, key.public_key(), fingerprint, tenancy, user)

    @property
    def key_id(self) -> str:
        return f"{self.tenancy}/{self.user}/{self.fingerprint}"


def write_oci_config(directory: Path, key: ApiKey, profile: str = "DEFAULT", region: str = "us-phoenix-1",
                     fingerprint: str | None = None, extra_profiles: dict | None = None) -> Path:
    """An OCI config file (oci-cli format) using `key`; `fingerprint` overrides the key's own."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    key_file = directory / f"{profile.lower()}_api_key.pem"
    key_file.write_bytes(key.private_pem)
    key_file.chmod(0o600)
    text = (f"[{profile}]\nuser={key.user}\nfingerprint={fingerprint or key.fingerprint}\n"
            f"tenancy={key.tenancy}\nregion={region}\nkey_file={key_file}\n")
    for name, body in (extra_profiles or {}).items():
        text += f"\n[{name}]\n" + "".join(f"{k}={v}\n" for k, v in body.items())
    config = directory / "config"
    config.write_text(text)
    config.chmod(0o600)
    return config
