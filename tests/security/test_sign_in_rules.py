"""Single sign-on refuses what an attacker sends (docker/lib/mlflow_oci/oidc_auth.py), checked without a
server: the address a browser returns to after sign-in, a token issued to another application, and a
discovery document that sends secrets over plain http."""
import sys
import time
from pathlib import Path
from unittest import mock

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "docker" / "lib"))
from mlflow_oci import oidc_auth  # noqa: E402

ISSUER = "https://idcs-0123456789abcdef0123456789abcdef.identity.oraclecloud.com"
CLIENT = "mlflow-client-id"


@pytest.mark.parametrize("target", [
    "/\t/evil.example", "/\n/evil.example", "/\r/x", "/ /evil.example", "//evil.example", "/\\evil.example",
    "/a//evil.example", "/x\x7f", "https://evil.example/", "evil.example", "", None,
])
def test_after_sign_in_only_a_plain_path_on_this_server_is_followed(target):
    assert oidc_auth._safe_next(target) == "/"


@pytest.mark.parametrize("target", ["/", "/#/experiments/5", "/ajax-api/2.0/mlflow/runs/get?run_id=abc",
                                    "/?next=//not-a-path-part"])
def test_a_plain_path_is_kept(target):
    assert oidc_auth._safe_next(target) == target


def _verifier():
    settings = oidc_auth.Settings(ISSUER, CLIENT, "secret", "admins", "users", "groups", "preferred_username",
                                  None, 3600, "k" * 30, "mlflow")
    provider = oidc_auth.Provider(ISSUER, f"{ISSUER}/oauth2/v1/authorize", f"{ISSUER}/oauth2/v1/token",
                                  f"{ISSUER}/admin/v1/SigningCert/jwk", None, "client_secret_basic", ("RS256",),
                                  "openid")
    verifier = oidc_auth.TokenVerifier(settings, provider)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    verifier.keys._keys = {"k1": jwt.PyJWK.from_dict({**jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True),
                                                      "kid": "k1", "use": "sig", "alg": "RS256"})}
    verifier.keys._fetched = time.monotonic()
    return verifier, key


def _token(key, **claims) -> str:
    now = int(time.time())
    return jwt.encode({"iss": ISSUER, "aud": CLIENT, "iat": now, "exp": now + 300, "sub": "alice", **claims},
                      key, algorithm="RS256", headers={"kid": "k1"})


def test_a_token_another_application_obtained_is_refused_even_with_this_client_as_audience():
    verifier, key = _verifier()
    assert verifier.claims(_token(key))["sub"] == "alice"
    assert verifier.claims(_token(key, azp=CLIENT))["sub"] == "alice"
    for audience in (CLIENT, [CLIENT, "another-app"]):
        with pytest.raises(oidc_auth.Refused, match=r"another application \(azp\)"):
            verifier.claims(_token(key, aud=audience, azp="another-app"))


@pytest.mark.parametrize("endpoint", ["token_endpoint", "jwks_uri", "authorization_endpoint", "end_session_endpoint"])
def test_a_discovery_document_with_a_plain_http_endpoint_is_refused(endpoint):
    document = {"issuer": ISSUER, "authorization_endpoint": f"{ISSUER}/oauth2/v1/authorize",
                "token_endpoint": f"{ISSUER}/oauth2/v1/token", "jwks_uri": f"{ISSUER}/admin/v1/SigningCert/jwk",
                "end_session_endpoint": f"{ISSUER}/oauth2/v1/userlogout"}
    with mock.patch.object(oidc_auth, "_get_json", return_value=document):
        assert oidc_auth.discover(ISSUER).token_endpoint == document["token_endpoint"]
        document[endpoint] = "http://attacker.example/x"
        with pytest.raises(oidc_auth.Refused, match=f"not https: {endpoint}"):
            oidc_auth.discover(ISSUER)


def _settings():
    return oidc_auth.Settings(ISSUER, CLIENT, "secret", "admins", "users", "groups", "preferred_username",
                              None, 3600, "k" * 30, "mlflow")


@pytest.mark.parametrize("claimed", [
    "mlflow ",          # MySQL's PAD SPACE collation matched this to the first admin's row
    "mlflow\u00a0",     # a no-break space, a plain space after NFKC
    "\uff4d\uff4c\uff46\uff4c\uff4f\uff57",  # full-width letters, "mlflow" after NFKC
    "MLflow",           # the same login to a person reading the UI
])
def test_no_sign_in_name_reaches_the_first_admins_row(claimed):
    with pytest.raises(oidc_auth.Refused) as refused:
        oidc_auth.identity_from_claims({"preferred_username": claimed, "groups": ["admins"]}, _settings())
    assert refused.value.status == 403


@pytest.mark.parametrize("claimed", ["alice ", " alice", "al ice", "alice\t", "alice\u200b", "alice\x00"])
def test_a_name_with_whitespace_or_control_characters_is_refused(claimed):
    with pytest.raises(oidc_auth.Refused, match="whitespace or control characters"):
        oidc_auth.identity_from_claims({"preferred_username": claimed, "groups": ["users"]}, _settings())


def test_a_plain_name_signs_in_as_itself():
    identity = oidc_auth.identity_from_claims({"preferred_username": "Alice.Smith@example.test",
                                               "groups": ["users"]}, _settings())
    assert identity == oidc_auth.Identity("Alice.Smith@example.test", False)
