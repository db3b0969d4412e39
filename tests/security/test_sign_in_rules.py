"""Single sign-on refuses what an attacker sends (docker/lib/mlflow_oci/oidc.py), checked without a
server: the address a browser returns to after sign-in, a token issued to another application, and a
discovery document that sends secrets over plain http."""
from unittest import mock

import pytest

from harness.oidc_tokens import CLIENT, ISSUER, oidc, settings, token, verifier


@pytest.mark.parametrize("target", [
    "/\t/evil.example", "/\n/evil.example", "/\r/x", "/ /evil.example", "//evil.example", "/\\evil.example",
    "/a//evil.example", "/x\x7f", "https://evil.example/", "evil.example", "", None,
])
def test_after_sign_in_only_a_plain_path_on_this_server_is_followed(target):
    assert oidc.safe_next(target) == "/"


@pytest.mark.parametrize("target", ["/", "/#/experiments/5", "/ajax-api/2.0/mlflow/runs/get?run_id=abc",
                                    "/?next=//not-a-path-part"])
def test_a_plain_path_is_kept(target):
    assert oidc.safe_next(target) == target


def test_a_token_another_application_obtained_is_refused_even_with_this_client_as_audience():
    checker, key = verifier()
    assert checker.claims(token(key))["sub"] == "alice"
    assert checker.claims(token(key, azp=CLIENT))["sub"] == "alice"
    for audience in (CLIENT, [CLIENT, "another-app"]):
        with pytest.raises(oidc.Refused, match=r"another application \(azp\)"):
            checker.claims(token(key, aud=audience, azp="another-app"))


@pytest.mark.parametrize("endpoint", ["token_endpoint", "jwks_uri", "authorization_endpoint", "end_session_endpoint"])
def test_a_discovery_document_with_a_plain_http_endpoint_is_refused(endpoint):
    document = {"issuer": ISSUER, "authorization_endpoint": f"{ISSUER}/oauth2/v1/authorize",
                "token_endpoint": f"{ISSUER}/oauth2/v1/token", "jwks_uri": f"{ISSUER}/admin/v1/SigningCert/jwk",
                "end_session_endpoint": f"{ISSUER}/oauth2/v1/userlogout"}
    with mock.patch.object(oidc, "_get_json", return_value=document):
        assert oidc.discover(ISSUER).token_endpoint == document["token_endpoint"]
        document[endpoint] = "http://attacker.example/x"
        with pytest.raises(oidc.Refused, match=f"not https: {endpoint}"):
            oidc.discover(ISSUER)


@pytest.mark.parametrize("claimed", [
    "mlflow ",          # MySQL's PAD SPACE collation matched this to the first admin's row
    "mlflow\u00a0",     # a no-break space, a plain space after NFKC
    "\uff4d\uff4c\uff46\uff4c\uff4f\uff57",  # full-width letters, "mlflow" after NFKC
    "MLflow",           # the same login to a person reading the UI
])
def test_no_sign_in_name_reaches_the_first_admins_row(claimed):
    with pytest.raises(oidc.Refused) as refused:
        oidc.identity_from_claims({"sub": "u-9", "preferred_username": claimed, "groups": ["admins"]}, settings())
    assert refused.value.status == 403


@pytest.mark.parametrize("claimed", ["al ice", "al\u00a0ice", "alice\u200b", "ali\x00ce", "alice\x00"])
def test_a_name_with_whitespace_or_control_characters_inside_is_refused(claimed):
    with pytest.raises(oidc.Refused, match="whitespace or control characters"):
        oidc.identity_from_claims({"sub": "u-1", "preferred_username": claimed, "groups": ["users"]}, settings())


@pytest.mark.parametrize("claimed", ["alice ", " alice", "alice\t", "Alice", "ALICE", "\uff41lice"])
def test_a_name_is_stripped_and_casefolded_to_the_one_a_person_reads(claimed):
    identity = oidc.identity_from_claims({"sub": "u-1", "preferred_username": claimed, "groups": ["users"]}, settings())
    assert identity.username == "alice"


def test_a_plain_name_signs_in_as_itself_lowercased():
    identity = oidc.identity_from_claims({"sub": "u-1", "preferred_username": "Alice.Smith@example.test",
                                          "groups": ["users"]}, settings())
    assert identity == oidc.Identity("u-1", "alice.smith@example.test", False)
