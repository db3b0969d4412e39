"""A provider's signing key, tokens and the tracking server's OIDC settings, for tests of
docker/lib/mlflow_oci/oidc.py that need no server."""
import sys
import time
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "docker" / "lib"))
from mlflow_oci import oidc  # noqa: E402

ISSUER = "https://idcs-0123456789abcdef0123456789abcdef.identity.oraclecloud.com"
CLIENT = "mlflow-client-id"
KID = "k1"


def settings(**changes) -> oidc.Settings:
    fields = {"issuer": ISSUER, "client_id": CLIENT, "client_secret": "secret", "admin_group": "admins",
              "user_group": "users", "groups_claim": "groups", "username_claim": "preferred_username",
              "redirect_uri": None, "session_seconds": 3600, "secret_key": "k" * 30, "reserved_username": "mlflow"}
    return oidc.Settings(**{**fields, **changes})


def provider() -> oidc.Provider:
    return oidc.Provider(ISSUER, f"{ISSUER}/oauth2/v1/authorize", f"{ISSUER}/oauth2/v1/token",
                         f"{ISSUER}/admin/v1/SigningCert/jwk", None, f"{ISSUER}/oauth2/v1/userinfo",
                         "client_secret_basic", ("RS256",), "openid")


def verifier() -> tuple[oidc.TokenVerifier, rsa.RSAPrivateKey]:
    """A verifier holding one signing key (as if fetched just now), and that key's private half."""
    checker = oidc.TokenVerifier(settings(), provider())
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    checker.keys._keys = {KID: jwt.PyJWK.from_dict({**public, "kid": KID, "use": "sig", "alg": "RS256"})}
    checker.keys._fetched = time.monotonic()
    return checker, key


def token(key, algorithm: str = "RS256", drop: tuple[str, ...] = (), **claims) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": CLIENT, "iat": now, "exp": now + 300, "sub": "alice", **claims}
    return jwt.encode({k: v for k, v in body.items() if k not in drop}, key, algorithm=algorithm, headers={"kid": KID})
