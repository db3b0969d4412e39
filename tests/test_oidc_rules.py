"""The OpenID Connect rules of single sign-on (docker/lib/mlflow_oci/oidc.py), without a server: the
settings the entrypoint checks at start, the token checks, and who a token's claims let in. The attacks
(crafted redirects, another application's token, an http discovery document, look-alike names) are in
tests/security/test_sign_in_rules.py; the sign-in itself, in a browser, in tests/dataplane/test_sso.py."""
import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from harness.oidc_tokens import CLIENT, ISSUER, oidc, settings, token, verifier

GOOD_ENVIRONMENT = {
    "MLFLOW_OIDC_ISSUER": ISSUER + "/", "MLFLOW_OIDC_CLIENT_ID": CLIENT, "MLFLOW_OIDC_CLIENT_SECRET": "s3cret",
    "MLFLOW_OIDC_ADMIN_GROUP": "mlflow-admins", "MLFLOW_OIDC_USER_GROUP": "mlflow-users",
    "MLFLOW_FLASK_SERVER_SECRET_KEY": "x" * 30, "MLFLOW_AUTH_ADMIN_USERNAME": "mlflow",
}


def test_settings_take_defaults_for_what_the_stack_leaves_out():
    loaded = oidc.load_settings(GOOD_ENVIRONMENT)
    assert loaded.issuer == ISSUER  # the trailing slash the console shows is dropped
    assert (loaded.groups_claim, loaded.username_claim) == ("groups", "preferred_username")
    assert (loaded.session_seconds, loaded.redirect_uri, loaded.reserved_username) == (28800, None, "mlflow")


def test_every_missing_setting_is_named_on_a_line_of_its_own():
    with pytest.raises(oidc.SettingsError) as error:
        oidc.load_settings({})
    lines = str(error.value).splitlines()
    for name in ("MLFLOW_OIDC_ISSUER", "MLFLOW_OIDC_CLIENT_ID", "MLFLOW_OIDC_CLIENT_SECRET", "MLFLOW_OIDC_ADMIN_GROUP",
                 "MLFLOW_OIDC_USER_GROUP", "MLFLOW_FLASK_SERVER_SECRET_KEY"):
        assert sum(name in line for line in lines) == 1, (name, lines)
    assert len(lines) == 6


@pytest.mark.parametrize("changes, problem", [
    ({"MLFLOW_OIDC_ISSUER": "http://idcs.example.test"}, "MLFLOW_OIDC_ISSUER must be an https:// URL"),
    ({"MLFLOW_OIDC_USER_GROUP": "mlflow-admins"}, "must name different groups"),
    ({"MLFLOW_OIDC_REDIRECT_URI": "https://mlflow.example.test/elsewhere"}, "MLFLOW_OIDC_REDIRECT_URI must be"),
    ({"MLFLOW_OIDC_SESSION_SECONDS": "60"}, "between 300 and 604800"),
    ({"MLFLOW_OIDC_SESSION_SECONDS": "8h"}, "between 300 and 604800"),
    ({"MLFLOW_FLASK_SERVER_SECRET_KEY": "x" * 29}, "at least 30 random characters"),
])
def test_a_wrong_setting_is_refused_with_what_to_set(changes, problem):
    with pytest.raises(oidc.SettingsError, match=problem):
        oidc.load_settings({**GOOD_ENVIRONMENT, **changes})


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def test_a_token_of_the_provider_for_this_client_is_accepted():
    checker, key = verifier()
    assert checker.claims(token(key, nonce="n-1"), nonce="n-1")["sub"] == "alice"


@pytest.mark.parametrize("claims, reason", [
    ({"exp": 1_000_000}, "has expired"),
    ({"iss": "https://idcs-ffffffffffffffffffffffffffffffff.identity.oraclecloud.com"}, "another provider"),
    ({"aud": "another-app"}, r"another application \(audience\)"),
    ({"nonce": "replayed"}, r"does not belong to this sign-in \(nonce\)"),
])
def test_a_token_that_is_not_for_this_sign_in_is_refused(claims, reason):
    checker, key = verifier()
    with pytest.raises(oidc.Refused, match=reason) as refused:
        checker.claims(token(key, **claims), nonce="n-1" if "nonce" in claims else None)
    assert refused.value.status == 401


@pytest.mark.parametrize("claim", ["exp", "iat", "aud"])
def test_a_token_without_a_required_claim_is_refused(claim):
    checker, key = verifier()
    with pytest.raises(oidc.Refused, match=f"no {claim} claim"):
        checker.claims(token(key, drop=(claim,)))


def test_a_token_signed_with_another_key_or_a_shared_secret_is_refused():
    checker, key = verifier()
    _, stranger = verifier()
    with pytest.raises(oidc.Refused, match="signature does not verify"):
        checker.claims(token(stranger))
    # HS256 keyed with the provider's public key: the classic key-confusion forgery, made by hand because
    # PyJWT refuses to make it
    public_pem = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    claims = jwt.decode(token(key), options={"verify_signature": False})
    signing_input = b".".join(_b64(json.dumps(part).encode()) for part in ({"alg": "HS256", "kid": "k1"}, claims))
    forged = (signing_input + b"." + _b64(hmac.new(public_pem, signing_input, hashlib.sha256).digest())).decode()
    with pytest.raises(oidc.Refused, match="not a valid token"):
        checker.claims(forged)


@pytest.mark.parametrize("groups, admin", [(["admins"], True), (["users"], False), ("admins", True),
                                           (["users", "admins"], True)])
def test_the_groups_claim_makes_an_admin_or_a_user(groups, admin):
    identity = oidc.identity_from_claims({"sub": "u-1", "preferred_username": "alice", "groups": groups}, settings())
    assert identity == oidc.Identity("u-1", "alice", admin)


@pytest.mark.parametrize("claims, reason", [
    ({"sub": "u-1", "preferred_username": "alice", "groups": ["finance"]}, "in neither admins nor users"),
    ({"sub": "u-1", "preferred_username": "alice"}, "in neither admins nor users"),
    ({"preferred_username": "alice", "groups": ["users"]}, "names nobody"),
    ({"sub": " ", "preferred_username": "alice", "groups": ["users"]}, "names nobody"),
])
def test_anyone_else_is_refused_with_403(claims, reason):
    with pytest.raises(oidc.Refused, match=reason) as refused:
        oidc.identity_from_claims(claims, settings())
    assert refused.value.status == 403


def test_the_name_falls_back_to_email_then_subject():
    assert oidc.identity_from_claims({"email": "bob@example.test", "sub": "u1", "groups": ["users"]},
                                     settings()).username == "bob@example.test"
    assert oidc.identity_from_claims({"sub": "u1", "groups": ["users"]}, settings()).username == "u1"
    assert oidc.identity_from_claims({"preferred_username": " ", "sub": "u1", "groups": ["users"]},
                                     settings()).username == "u1"


def test_pkce_challenge_is_rfc_7636s_s256():
    # RFC 7636, Appendix B: the example verifier and its S256 challenge
    assert oidc.pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_the_session_signing_key_is_derived_and_differs_per_secret():
    assert oidc.signing_key("a" * 30) == oidc.signing_key("a" * 30) != oidc.signing_key("b" * 30)
    assert "a" * 30 not in oidc.signing_key("a" * 30)


@pytest.mark.parametrize("value", ["0", "901", "15m"])
def test_a_group_check_beyond_15_minutes_is_refused(value):
    with pytest.raises(oidc.SettingsError, match="MLFLOW_OIDC_GROUP_CHECK_SECONDS must be an integer between 1 and 900"):
        oidc.load_settings({**GOOD_ENVIRONMENT, "MLFLOW_OIDC_GROUP_CHECK_SECONDS": value})
    assert oidc.load_settings(GOOD_ENVIRONMENT).group_check_seconds == 900


def test_the_sign_in_asks_for_groups_and_a_refresh_token_where_the_provider_offers_them():
    """An OCI identity domain's discovery document lists both scopes, and a userinfo endpoint (relative)."""
    from unittest import mock

    document = {"issuer": "https://identity.oraclecloud.com/", "authorization_endpoint": "/oauth2/v1/authorize",
                "token_endpoint": "/oauth2/v1/token", "jwks_uri": "/admin/v1/SigningCert/jwk",
                "userinfo_endpoint": "/oauth2/v1/userinfo",
                "scopes_supported": ["openid", "profile", "offline_access", "email", "groups", "get_groups"]}
    with mock.patch.object(oidc, "_get_json", return_value=document):
        found = oidc.discover(ISSUER)
        assert found.scopes == "openid profile email groups offline_access"
        assert found.userinfo_endpoint == f"{ISSUER}/oauth2/v1/userinfo"
        document["scopes_supported"] = ["openid", "profile", "email"]   # asking for an unlisted scope may fail
        assert oidc.discover(ISSUER).scopes == "openid profile email"


# ------------------------------------------------------------------------------------------------ sign-outs
@pytest.mark.parametrize("value", ["0", "61", "soon"])
def test_a_sign_out_check_beyond_a_minute_is_refused(value):
    with pytest.raises(oidc.SettingsError, match="MLFLOW_OIDC_SIGNOUT_CHECK_SECONDS must be an integer between 1 and 60"):
        oidc.load_settings({**GOOD_ENVIRONMENT, "MLFLOW_OIDC_SIGNOUT_CHECK_SECONDS": value})
    assert oidc.load_settings(GOOD_ENVIRONMENT).signout_check_seconds == 30


def test_sign_outs_are_shared_through_the_database_and_seen_within_the_check_interval(tmp_path):
    import sqlalchemy
    from mlflow_oci.signouts import SignOuts

    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'users.db'}")
    here, there = SignOuts(engine, check_seconds=0.2), SignOuts(engine, check_seconds=0.2)
    assert there.last("bob") == 0.0
    at = here.record("bob")
    assert here.last("bob") == at          # the replica that recorded it knows at once
    assert there.last("bob") == 0.0        # another one answers from its cache...
    time.sleep(0.25)
    assert there.last("bob") == at         # ...for no longer than its check interval
    assert there.record("bob") > at and here.record("bob") > at  # a second sign-out moves the time on


def _runtime(signed_out_at: float, provider_answers: bool = True):
    """oidc_auth's Runtime with its sign-outs and provider stubbed: what the session code asks of them."""
    from mlflow_oci import oidc_auth

    rt = oidc_auth.Runtime(settings())
    recorded = []
    rt._signouts = type("Recorded", (), {"last": lambda self, name: signed_out_at,
                                          "record": lambda self, name: recorded.append(name) or time.time()})()
    rt._verifier = verifier()[0] if provider_answers else None
    return rt, recorded


def _provider_away(issuer):
    raise oidc.Refused(503, "cannot reach the identity provider")


def test_a_session_issued_before_its_owners_last_sign_out_is_none(monkeypatch):
    from flask import Flask
    from mlflow_oci import oidc_auth

    rt, _ = _runtime(signed_out_at=time.time())
    old = rt.sessions.dumps({"u": "bob", "t": time.time() - 5})
    new = rt.sessions.dumps({"u": "bob", "t": time.time() + 5})
    app = Flask(__name__)
    for cookie, expected in ((old, None), (new, "bob")):
        with app.test_request_context("/", headers={"Cookie": f"{oidc_auth.SESSION_COOKIE}={cookie}"}):
            from flask import request

            assert oidc_auth._session_username(request, rt) == expected


def test_signing_out_works_while_the_provider_is_away(monkeypatch):
    from flask import Flask, request
    from mlflow_oci import oidc_auth

    monkeypatch.setattr(oidc_auth, "discover", _provider_away)
    rt, recorded = _runtime(signed_out_at=0.0, provider_answers=False)
    cookie = rt.sessions.dumps({"u": "bob", "t": time.time()})
    with Flask(__name__).test_request_context("/oidc/logout", method="POST",
                                               headers={"Cookie": f"{oidc_auth.SESSION_COOKIE}={cookie}"}):
        answer = oidc_auth.sign_out(request, rt)
    assert answer.status_code == 200 and "Signed out of MLflow. The identity provider did not answer" in answer.get_data(True)
    assert answer.headers["Set-Cookie"].startswith(f"{oidc_auth.SESSION_COOKIE}=;")
    assert recorded == ["bob"]


# ------------------------------------------------------------------------------------------------ group checks
def test_of_two_replicas_one_asks_the_provider_when_a_persons_groups_are_due(tmp_path):
    import sqlalchemy
    from mlflow_oci.group_checks import CHECK_SECONDS, Due, GroupChecks

    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path}/users.db")
    now = [1_800_000_000.0]
    here, there = (GroupChecks(engine, clock=lambda: now[0]) for _ in range(2))
    here.keep("u-bob", "refresh-1")
    there.keep("u-bob", "refresh-2")          # the same person signed in on the other replica: the latest wins
    assert here.due("u-bob") == there.due("u-bob") == Due.FRESH
    now[0] += CHECK_SECONDS + 1
    here._fresh_until.clear()
    there._fresh_until.clear()
    assert [here.due("u-bob"), there.due("u-bob")] == ["refresh-2", Due.FRESH]   # one of them asks
    here.forget("u-bob")
    there._fresh_until.clear()
    assert there.due("u-bob") == Due.NOTHING
