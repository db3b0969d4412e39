"""OpenID Connect for the tracking server's single sign-on, with no web framework in it: the settings, the
provider's discovery document and signing keys, token checks, and who a token's claims make a person.
oidc_auth.py puts these behind MLflow's `authorization_function`; the tests call them directly.

Nothing secret is logged: no token and no client secret.
"""
import base64
import hashlib
import hmac
import logging
import os
import threading
import time
import unicodedata
from dataclasses import dataclass
from urllib.parse import urljoin, urlparse

from mlflow_oci.people import folded

CALLBACK_PATH = "/oidc/callback"     # where the provider sends a browser back to, on this server
# The stack's session key is a 30-character Vault passphrase (the lengths Vault's generation is known to
# take); the sessions are signed with a 256-bit key hashed from it.
MIN_SECRET_KEY_CHARACTERS = 30
LEEWAY_SECONDS = 30                    # clock skew allowed on exp/iat
KEYS_LIFESPAN_SECONDS = 900            # the JWKS is fetched again after this, or at once for an unknown kid
KEYS_COOLDOWN_SECONDS = 30             # ...but no more often than this (a token with a made-up kid costs nothing)
KEYS_TIMEOUT_SECONDS = 3               # a request waits no longer than this for the provider's keys
KEYS_BACKOFF_SECONDS = (5, 300)        # after a failed fetch: the first pause, doubled up to the second
HTTP_TIMEOUT = 15
# Asymmetric algorithms only: a shared-secret (HS*) or unsigned token must never verify.
SIGNING_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")

_logger = logging.getLogger("mlflow_oci.oidc_auth")  # the sign-in log; oidc_auth gives it its handler


class SettingsError(Exception):
    """The settings are wrong; args[0] lists one line per problem."""


class Refused(Exception):
    """A request that does not get in: the HTTP status and a short reason safe to show."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


# ------------------------------------------------------------------------------------------------ settings
@dataclass(frozen=True)
class Settings:
    issuer: str
    client_id: str
    client_secret: str
    admin_group: str
    user_group: str
    groups_claim: str
    username_claim: str
    redirect_uri: str | None
    session_seconds: int
    secret_key: str
    reserved_username: str | None   # the first admin's break-glass login: never taken over by a sign-in
    signout_check_seconds: int = 30  # how stale a replica's view of sign-outs may be (signouts.py)
    group_check_seconds: int = 900   # how old a session's groups may be before they are asked again (group_checks.py)


def _is_allowed_url(url: str) -> bool:
    """https, or plain http on loopback only (the tests' provider)."""
    parsed = urlparse(url)
    if parsed.scheme == "https":
        return bool(parsed.hostname)
    return parsed.scheme == "http" and parsed.hostname in ("127.0.0.1", "localhost", "::1")


def load_settings(environ=os.environ) -> Settings:
    """The settings from the environment; SettingsError names every problem, one line each."""
    problems = []

    def required(name: str, meaning: str) -> str:
        value = environ.get(name, "").strip()
        if not value:
            problems.append(f"set {name}: {meaning}")
        return value

    issuer = required("MLFLOW_OIDC_ISSUER", "the identity provider's URL, whose discovery document is "
                      "<issuer>/.well-known/openid-configuration (an OCI identity domain's Domain URL)").rstrip("/")
    if issuer and not _is_allowed_url(issuer):
        problems.append(f"MLFLOW_OIDC_ISSUER must be an https:// URL (got '{issuer}')")
    client_id = required("MLFLOW_OIDC_CLIENT_ID", "the client id of the provider's confidential application")
    client_secret = required("MLFLOW_OIDC_CLIENT_SECRET",
                             "its client secret (or MLFLOW_OIDC_CLIENT_SECRET_SECRET_OCID, a Vault secret)")
    admin_group = required("MLFLOW_OIDC_ADMIN_GROUP", "the provider's group whose members are MLflow admins")
    user_group = required("MLFLOW_OIDC_USER_GROUP", "the provider's group whose members are MLflow users")
    if admin_group and admin_group == user_group:
        problems.append("MLFLOW_OIDC_ADMIN_GROUP and MLFLOW_OIDC_USER_GROUP must name different groups")
    redirect_uri = environ.get("MLFLOW_OIDC_REDIRECT_URI", "").strip() or None
    if redirect_uri and (not _is_allowed_url(redirect_uri) or not urlparse(redirect_uri).path.endswith(CALLBACK_PATH)):
        problems.append(f"MLFLOW_OIDC_REDIRECT_URI must be https://<this server>{CALLBACK_PATH} (got '{redirect_uri}')")
    session = environ.get("MLFLOW_OIDC_SESSION_SECONDS", "28800").strip()
    if not session.isdigit() or not 300 <= int(session) <= 7 * 86400:
        problems.append(f"MLFLOW_OIDC_SESSION_SECONDS must be an integer between 300 and 604800 (got '{session}')")
    signout_check = environ.get("MLFLOW_OIDC_SIGNOUT_CHECK_SECONDS", "30").strip()
    if not signout_check.isdigit() or not 1 <= int(signout_check) <= 60:
        problems.append("MLFLOW_OIDC_SIGNOUT_CHECK_SECONDS must be an integer between 1 and 60: a sign-out reaches "
                        f"every replica within it (got '{signout_check}')")
    group_check = environ.get("MLFLOW_OIDC_GROUP_CHECK_SECONDS", "900").strip()
    if not group_check.isdigit() or not 1 <= int(group_check) <= 900:
        problems.append("MLFLOW_OIDC_GROUP_CHECK_SECONDS must be an integer between 1 and 900: a signed-in person's "
                        f"groups are asked again after it (got '{group_check}')")
    secret_key = environ.get("MLFLOW_FLASK_SERVER_SECRET_KEY", "")
    if len(secret_key) < MIN_SECRET_KEY_CHARACTERS:
        problems.append(f"MLFLOW_FLASK_SERVER_SECRET_KEY signs the sign-in sessions: at least "
                        f"{MIN_SECRET_KEY_CHARACTERS} random characters, the same on every replica")
    if problems:
        raise SettingsError("\n".join(problems))
    return Settings(issuer, client_id, client_secret, admin_group, user_group,
                    environ.get("MLFLOW_OIDC_GROUPS_CLAIM", "").strip() or "groups",
                    environ.get("MLFLOW_OIDC_USERNAME_CLAIM", "").strip() or "preferred_username",
                    redirect_uri, int(session), secret_key,
                    environ.get("MLFLOW_AUTH_ADMIN_USERNAME") or None, int(signout_check), int(group_check))


def signing_key(secret_key: str) -> str:
    """The key the sign-in sessions are signed with: SHA-256 of the configured secret, so every replica
    that has the same secret has the same key, and a 30-character secret gives a full-length key."""
    return hashlib.sha256(f"mlflow-oidc-sessions\0{secret_key}".encode()).hexdigest()


# ------------------------------------------------------------------------------------------------ provider
@dataclass(frozen=True)
class Provider:
    """What the discovery document says, with relative endpoints made absolute."""
    issuer: str                     # as the tokens name it: an OCI identity domain says https://identity.oraclecloud.com/
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str | None
    userinfo_endpoint: str | None   # where a refresh that brings no ID token reads the groups
    token_auth_method: str          # client_secret_basic or client_secret_post
    algorithms: tuple[str, ...]
    scopes: str


def _get_json(url: str, what: str, timeout: float = HTTP_TIMEOUT) -> dict:
    import requests

    try:
        answer = requests.get(url, timeout=timeout, headers={"Accept": "application/json"})
    except requests.RequestException as exc:
        raise Refused(503, f"cannot reach the identity provider's {what} at {url}: {type(exc).__name__}") from exc
    if answer.status_code != 200:
        raise Refused(503, f"the identity provider's {what} at {url} answered {answer.status_code}")
    try:
        document = answer.json()
    except ValueError as exc:
        raise Refused(503, f"the identity provider's {what} at {url} is not JSON") from exc
    if not isinstance(document, dict):
        raise Refused(503, f"the identity provider's {what} at {url} is not a JSON object")
    return document


def discover(issuer: str) -> Provider:
    url = f"{issuer}/.well-known/openid-configuration"
    document = _get_json(url, "discovery document")
    missing = [key for key in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri") if not document.get(key)]
    if missing:
        raise Refused(503, f"the discovery document at {url} lacks {', '.join(missing)}")
    methods = document.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    offered = document.get("id_token_signing_alg_values_supported") or ["RS256"]
    scopes = ["openid", "profile", "email"]
    offered_scopes = document.get("scopes_supported") or []
    if "groups" in offered_scopes:
        scopes.append("groups")  # OCI identity domains offer it
    if "offline_access" in offered_scopes:
        scopes.append("offline_access")  # a refresh token, to ask for the groups again (OCI asks for this scope)
    absolute = lambda key: urljoin(issuer + "/", document[key]) if document.get(key) else None  # noqa: E731
    plain = [key for key in ("authorization_endpoint", "token_endpoint", "jwks_uri", "end_session_endpoint",
                             "userinfo_endpoint")
             if document.get(key) and not _is_allowed_url(absolute(key))]
    if plain:
        # the client secret, the codes and the signing keys travel there: never over plain http
        raise Refused(503, f"the discovery document at {url} names endpoints that are not https: {', '.join(plain)}")
    return Provider(
        issuer=document["issuer"], authorization_endpoint=absolute("authorization_endpoint"),
        token_endpoint=absolute("token_endpoint"), jwks_uri=absolute("jwks_uri"),
        end_session_endpoint=absolute("end_session_endpoint"), userinfo_endpoint=absolute("userinfo_endpoint"),
        token_auth_method="client_secret_basic" if "client_secret_basic" in methods else "client_secret_post",
        algorithms=tuple(a for a in offered if a in SIGNING_ALGORITHMS) or ("RS256",), scopes=" ".join(scopes))


class SigningKeys:
    """The provider's JWKS, kept for KEYS_LIFESPAN_SECONDS and fetched again early (at most every
    KEYS_COOLDOWN_SECONDS) when a token names a key it does not hold: the provider rotated its keys.

    A provider outage must not take MLflow down: one request at a time fetches, outside the lock and for
    at most KEYS_TIMEOUT_SECONDS, while the others go on with the keys held; a failed fetch keeps those
    keys and is tried again only after a pause that doubles (KEYS_BACKOFF_SECONDS)."""

    def __init__(self, jwks_uri: str):
        self.jwks_uri = jwks_uri
        self._changed = threading.Condition()
        self._keys: dict = {}
        self._fetched = float("-inf")
        self._fetching = False
        self._failures = 0
        self._retry_at = float("-inf")
        self._last_error: str | None = None

    def download(self) -> dict:
        """kid -> PyJWK of the provider's signing keys, or Refused(503) saying why not."""
        import jwt

        document = _get_json(self.jwks_uri, "signing keys", timeout=KEYS_TIMEOUT_SECONDS)
        try:
            keyset = jwt.PyJWKSet.from_dict(document)
        except jwt.PyJWTError as exc:
            raise Refused(503, f"the identity provider's signing keys at {self.jwks_uri} hold no usable key") from exc
        return {key.key_id: key for key in keyset.keys if key.public_key_use in ("sig", None)}

    def key_for(self, kid: str | None):
        """The PyJWK that signed a token with this `kid` header; a token without one may use the only key."""
        with self._changed:
            if self._fetching and self._lookup(kid) is None:  # only the fetch under way may bring this key
                self._changed.wait(KEYS_TIMEOUT_SECONDS + 1)
            key = self._lookup(kid)
            fetch = self._should_fetch(key)
            if fetch:
                self._fetching = True
        if fetch:
            self._fetch()
            with self._changed:
                key = self._lookup(kid)
        if key is None:
            if self._last_error:
                raise Refused(503, f"cannot check the token's signature: {self._last_error}")
            raise Refused(401, "the token is not signed by a key of the identity provider")
        return key

    def _should_fetch(self, key) -> bool:
        now = time.monotonic()
        age = now - self._fetched
        wanted = age > KEYS_LIFESPAN_SECONDS or (key is None and age > KEYS_COOLDOWN_SECONDS)
        return wanted and not self._fetching and now >= self._retry_at

    def _fetch(self) -> None:
        try:
            keys, error = self.download(), None
        except Refused as refused:
            keys, error = None, refused.reason
        with self._changed:
            self._fetching = False
            if keys is not None:
                self._keys, self._fetched, self._failures, self._retry_at = keys, time.monotonic(), 0, float("-inf")
                self._last_error = None
            else:
                pause = min(KEYS_BACKOFF_SECONDS[0] * 2 ** self._failures, KEYS_BACKOFF_SECONDS[1])
                self._failures += 1
                self._retry_at = time.monotonic() + pause
                self._last_error = error
                _logger.warning("%s; keeping %d signing keys, next try in %d s", error, len(self._keys), pause)
            self._changed.notify_all()

    def _lookup(self, kid: str | None):
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        return self._keys.get(kid)


# ----------------------------------------------------------------------------------------------- identities
@dataclass(frozen=True)
class Identity:
    subject: str       # the provider's `sub`: who the person is, for good (people.py maps it to the username)
    username: str      # the readable name they get at their first sign-in
    is_admin: bool


def sign_in_name(claimed: str) -> str:
    """The MLflow username a claimed name becomes: NFKC-normalised (a full-width or compatibility form is the
    name it looks like), stripped and casefolded (as a person reads it); refused with whitespace or control
    characters inside: a log line or the UI would show such a name as someone else's."""
    name = folded(claimed).strip()
    if not name or any(character.isspace() or unicodedata.category(character).startswith("C") for character in name):
        raise Refused(403, f"the sign-in name {claimed!r} has whitespace or control characters: "
                           "ask the identity domain's administrator for a plain user name")
    return name


def identity_from_claims(claims: dict, settings: Settings) -> Identity:
    """Who the verified claims name, and whether their groups let them in (Refused 403 when not). The person
    is their `sub`, which the provider never reassigns; the name is only what they are called."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject.strip():
        raise Refused(403, "the token names nobody (no sub claim)")
    claimed = next((claims[name] for name in (settings.username_claim, "email")
                    if isinstance(claims.get(name), str) and claims[name].strip()), subject)
    username = sign_in_name(claimed)
    if settings.reserved_username and username == sign_in_name(settings.reserved_username):
        raise Refused(403, f"{username} is the first admin's own login: use its password")
    groups = claims.get(settings.groups_claim)
    groups = {groups} if isinstance(groups, str) else {g for g in groups or () if isinstance(g, str)}
    if settings.admin_group in groups:
        return Identity(subject, username, True)
    if settings.user_group in groups:
        return Identity(subject, username, False)
    raise Refused(403, f"{username} is in neither {settings.admin_group} nor {settings.user_group}: "
                       "ask an administrator for access to MLflow")


class TokenVerifier:
    """Checks a JWT the way the provider's clients are promised: signature, issuer, audience, expiry."""

    def __init__(self, settings: Settings, provider: Provider):
        self.settings = settings
        self.provider = provider
        self.keys = SigningKeys(provider.jwks_uri)

    def claims(self, token: str, nonce: str | None = None) -> dict:
        import jwt

        try:
            key = self.keys.key_for(jwt.get_unverified_header(token).get("kid"))
            claims = jwt.decode(token, key.key, algorithms=list(self.provider.algorithms),
                                audience=self.settings.client_id, issuer=self.provider.issuer, leeway=LEEWAY_SECONDS,
                                options={"require": ["exp", "iat", "iss", "aud"]})
        except jwt.ExpiredSignatureError as exc:
            raise Refused(401, "the token has expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise Refused(401, "the token was issued for another application (audience)") from exc
        except jwt.InvalidIssuerError as exc:
            raise Refused(401, "the token was issued by another provider (issuer)") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise Refused(401, f"the token has no {exc.claim} claim") from exc
        except jwt.InvalidSignatureError as exc:
            raise Refused(401, "the token's signature does not verify") from exc
        except jwt.PyJWTError as exc:
            raise Refused(401, f"not a valid token from the identity provider ({type(exc).__name__})") from exc
        # OIDC Core 3.1.3.7: the authorized party, when the token names one, must be this client, even
        # when this client is among the audiences (a token obtained by another application).
        if claims.get("azp") not in (None, self.settings.client_id):
            raise Refused(401, "the token was issued for another application (azp)")
        if nonce is not None and not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
            raise Refused(401, "the sign-in answer does not belong to this sign-in (nonce)")
        return claims


# ------------------------------------------------------------------------------------------ sign-in steps
def safe_next(target: str | None) -> str:
    """Only a plain path on this server, never an open redirect to another site. Browsers drop tabs and
    line breaks from a Location and read a backslash as a slash, so `/<TAB>/evil.example` would become
    `//evil.example`; a path with a control character, whitespace, a backslash or `//` anywhere is refused."""
    path = (target or "").split("?", 1)[0]
    if not target or not target.startswith("/") or "//" in path or "\\" in target \
            or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return "/"
    return target


def pkce_challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
