"""An identity provider outage does not take MLflow down (docker/lib/mlflow_oci/oidc.py, SigningKeys),
driven against a real key-set endpoint on loopback that answers, fails or hangs on command:

- keys held keep verifying tokens when a refresh fails, and a failing provider is asked again only after
  a pause that doubles (not on every request);
- a hanging provider holds one request for at most KEYS_TIMEOUT_SECONDS, and the others do not queue
  behind it: they go on with the keys held.
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from unittest import mock

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from harness import loopback

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "docker" / "lib"))
from mlflow_oci import oidc  # noqa: E402

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
JWKS = {"keys": [{**jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key(), as_dict=True),
                  "kid": "k1", "use": "sig", "alg": "RS256"}]}


class KeySetEndpoint:
    """The provider's jwks_uri: mode "up" answers the key set, "down" 503, "hang" waits for `release`."""

    def __init__(self):
        self.mode = "up"
        self.requests = 0
        self.release = threading.Event()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                endpoint.requests += 1
                if endpoint.mode == "hang":
                    endpoint.release.wait(60)
                body = json.dumps(JWKS).encode() if endpoint.mode != "down" else b"{}"
                self.send_response(200 if endpoint.mode != "down" else 503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = loopback.serve(Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwk"

    def close(self):
        self.release.set()
        loopback.stop(self.server)


@pytest.fixture
def provider():
    endpoint = KeySetEndpoint()
    yield endpoint
    endpoint.close()


def _expire(keys: oidc.SigningKeys) -> None:
    """Make the held keys older than their lifespan, as if KEYS_LIFESPAN_SECONDS had passed."""
    keys._fetched = time.monotonic() - oidc.KEYS_LIFESPAN_SECONDS - 1


def test_held_keys_keep_working_while_the_provider_is_down_and_it_is_asked_again_only_after_a_pause(provider):
    keys = oidc.SigningKeys(provider.url)
    assert keys.key_for("k1").key_id == "k1" and provider.requests == 1

    provider.mode = "down"
    _expire(keys)
    for _ in range(20):  # a busy minute of bearer calls during the outage
        assert keys.key_for("k1").key_id == "k1"
    assert provider.requests == 2  # one failed refresh, then a pause

    first_pause = keys._retry_at - time.monotonic()
    assert oidc.KEYS_BACKOFF_SECONDS[0] - 1 < first_pause <= oidc.KEYS_BACKOFF_SECONDS[0]
    keys._retry_at = time.monotonic()  # the pause is over
    assert keys.key_for("k1").key_id == "k1" and provider.requests == 3
    assert keys._retry_at - time.monotonic() > 2 * oidc.KEYS_BACKOFF_SECONDS[0] - 1  # doubled

    provider.mode = "up"
    keys._retry_at = time.monotonic()
    assert keys.key_for("k1").key_id == "k1" and provider.requests == 4
    assert keys._failures == 0 and keys._retry_at < time.monotonic()


def test_a_key_the_set_does_not_hold_is_503_while_the_provider_is_down_and_401_when_it_answers(provider):
    keys = oidc.SigningKeys(provider.url)
    provider.mode = "down"
    with pytest.raises(oidc.Refused) as refused:
        keys.key_for("k1")
    assert refused.value.status == 503 and "answered 503" in refused.value.reason

    provider.mode = "up"
    keys._retry_at = time.monotonic()
    assert keys.key_for("k1").key_id == "k1"
    keys._fetched = time.monotonic() - oidc.KEYS_COOLDOWN_SECONDS - 1
    with pytest.raises(oidc.Refused) as refused:
        keys.key_for("made-up")
    assert refused.value.status == 401


def test_a_hanging_provider_holds_one_request_for_the_timeout_and_the_others_not_at_all(provider):
    keys = oidc.SigningKeys(provider.url)
    keys.key_for("k1")
    provider.mode = "hang"
    _expire(keys)

    done = {}

    def refresh_in_background():
        done["first"] = keys.key_for("k1").key_id

    with mock.patch.object(oidc, "KEYS_TIMEOUT_SECONDS", 1):
        first = threading.Thread(target=refresh_in_background)
        first.start()
        while provider.requests < 2:  # the first request is now waiting on the provider
            time.sleep(0.01)
        others = [keys.key_for("k1").key_id for _ in range(10)]  # served at once, from the held keys
        assert others == ["k1"] * 10 and keys._fetching and provider.requests == 2
        first.join(10)
        # the first request gave up on the provider long before it answers, and still got the held key
        assert not first.is_alive() and done["first"] == "k1" and not provider.release.is_set()
    assert keys._last_error and "cannot reach" in keys._last_error


class HangingTokenEndpoint:
    """The provider's token endpoint, hanging: it accepts the connection and never answers."""

    def __init__(self):
        self.requests = 0
        self.release = threading.Event()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                endpoint.requests += 1
                endpoint.release.wait(60)

            def log_message(self, *args):
                pass

        self.server = loopback.serve(Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/oauth2/v1/token"

    def close(self):
        self.release.set()
        loopback.stop(self.server)


def test_a_session_goes_on_while_the_provider_cannot_recheck_its_groups_and_is_asked_again_soon(tmp_path):
    """A session's groups are due for their check and the provider hangs: the person's request waits at most
    KEYS_TIMEOUT_SECONDS, their session goes on (nobody is signed out by an outage), and the provider is asked
    again after RETRY_SECONDS rather than on every request or only after another whole interval."""
    import dataclasses

    import sqlalchemy
    from flask import Flask, request
    from mlflow_oci import group_checks, oidc_auth

    from harness.oidc_tokens import settings, verifier

    hanging = HangingTokenEndpoint()
    try:
        rt = oidc_auth.Runtime(settings())
        signed_out = []
        rt._signouts = type("Recorded", (), {"last": lambda self, name: 0.0,
                                              "record": lambda self, name: signed_out.append(name) or time.time()})()
        checker = verifier()[0]
        checker.provider = dataclasses.replace(checker.provider, token_endpoint=hanging.url)
        rt._verifier = checker
        checks = rt._group_checks = group_checks.GroupChecks(sqlalchemy.create_engine(f"sqlite:///{tmp_path}/u.db"))
        checks.clock = lambda: time.time() - group_checks.CHECK_SECONDS - 10   # signed in 15 minutes ago
        checks.keep("u-bob", "refresh-token-of-bob")
        checks.clock, checks._fresh_until = time.time, {}
        cookie = rt.sessions.dumps({"u": "bob", "s": "u-bob", "t": time.time() - group_checks.CHECK_SECONDS - 10})
        with Flask(__name__).test_request_context("/", headers={"Cookie": f"{oidc_auth.SESSION_COOKIE}={cookie}"}):
            started = time.monotonic()
            assert oidc_auth._session_username(request, rt) == "bob"
            waited = time.monotonic() - started
            assert oidc_auth._session_username(request, rt) == "bob"    # the next request does not ask again
        assert hanging.requests == 1 and signed_out == []
        assert oidc.KEYS_TIMEOUT_SECONDS <= waited < oidc.HTTP_TIMEOUT   # the refresh's timeout, not a sign-in's
        checks._fresh_until = {}
        assert checks.due("u-bob") == group_checks.Due.FRESH                  # not before RETRY_SECONDS...
        checks.clock = lambda: time.time() + group_checks.RETRY_SECONDS + 1
        assert checks.due("u-bob") == "refresh-token-of-bob"                  # ...and then again
    finally:
        hanging.close()
