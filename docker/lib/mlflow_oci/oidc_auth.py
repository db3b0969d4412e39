"""Single sign-on for the tracking server: an MLflow `authorization_function` for OpenID Connect.

MLFLOW_AUTH=oidc runs MLflow's basic-auth app (its users, permissions and UI) with `authenticate` below
in place of its password check (`authorization_function = mlflow_oci.oidc_auth:authenticate` in the
auth ini). A request gets in by, in this order:

  Authorization: Basic     MLflow's own check: per-user passwords, the first admin's break-glass login
  Authorization: Bearer    a JWT from the provider (an ID token, or an access token whose audience is the
                           client id): signature against the provider's JWKS, issuer, audience, expiry
  the session cookie       set after a browser signed in: authorization code flow with state, nonce and
                           PKCE to CALLBACK_PATH on this server; signed with MLFLOW_FLASK_SERVER_SECRET_KEY,
                           so every replica accepts what any replica issued
Otherwise a browser page is sent to the provider and an API call gets 401.

The person's groups (MLFLOW_OIDC_GROUPS_CLAIM) decide: MLFLOW_OIDC_ADMIN_GROUP makes an MLflow admin,
MLFLOW_OIDC_USER_GROUP an ordinary user, neither is refused (403). The MLflow user is created on first
sight with a random password nobody knows, and its admin flag follows the groups on every sign-in.

    python3 -m mlflow_oci.oidc_auth check    settings and the provider, one line per problem (the entrypoint)

Nothing secret is logged or answered: no token, code, cookie or client secret.
"""
import base64
import hashlib
import hmac
import logging
import os
import secrets
import sys
import threading
import time
import unicodedata
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urljoin, urlparse

CALLBACK_PATH = "/oidc/callback"
LOGOUT_PATH = "/oidc/logout"
# The stack's session key is a 30-character Vault passphrase (the lengths Vault's generation is known to
# take); the sessions are signed with a 256-bit key hashed from it.
MIN_SECRET_KEY_CHARACTERS = 30
SESSION_COOKIE = "mlflow_oidc_session"
LOGIN_COOKIE = "mlflow_oidc_login"     # state, nonce and PKCE verifier between the redirect and the callback
LOGIN_SECONDS = 600                    # how long a person may take at the provider's sign-in page
LEEWAY_SECONDS = 30                    # clock skew allowed on exp/iat
KEYS_LIFESPAN_SECONDS = 900            # the JWKS is fetched again after this, or at once for an unknown kid
KEYS_COOLDOWN_SECONDS = 30             # ...but no more often than this (a token with a made-up kid costs nothing)
KEYS_TIMEOUT_SECONDS = 3               # a request waits no longer than this for the provider's keys
KEYS_BACKOFF_SECONDS = (5, 300)        # after a failed fetch: the first pause, doubled up to the second
USER_SYNC_SECONDS = 300                # a bearer user's row is checked again after this, per process
HTTP_TIMEOUT = 15
# Asymmetric algorithms only: a shared-secret (HS*) or unsigned token must never verify.
SIGNING_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")

_logger = logging.getLogger(__name__)


class _HideSignInCodes(logging.Filter):
    """uvicorn's access log would print the one-time code and state of every sign-in answer."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) > 2 and str(args[2]).startswith(CALLBACK_PATH + "?"):
            record.args = (*args[:2], CALLBACK_PATH + "?…", *args[3:])
        return True


def _set_up_logging() -> None:
    """Sign-ins and refusals go to the server's log, one line each (MLflow configures only its own logger)."""
    if not _logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s oidc: %(message)s", "%Y-%m-%dT%H:%M:%S"))
        _logger.addHandler(handler)
        _logger.setLevel(logging.INFO)
        _logger.propagate = False
        logging.getLogger("uvicorn.access").addFilter(_HideSignInCodes())


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
                    environ.get("MLFLOW_AUTH_ADMIN_USERNAME") or None)


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
    if "groups" in (document.get("scopes_supported") or []):
        scopes.append("groups")  # OCI identity domains offer it
    absolute = lambda key: urljoin(issuer + "/", document[key]) if document.get(key) else None  # noqa: E731
    plain = [key for key in ("authorization_endpoint", "token_endpoint", "jwks_uri", "end_session_endpoint")
             if document.get(key) and not _is_allowed_url(absolute(key))]
    if plain:
        # the client secret, the codes and the signing keys travel there: never over plain http
        raise Refused(503, f"the discovery document at {url} names endpoints that are not https: {', '.join(plain)}")
    return Provider(
        issuer=document["issuer"], authorization_endpoint=absolute("authorization_endpoint"),
        token_endpoint=absolute("token_endpoint"), jwks_uri=absolute("jwks_uri"),
        end_session_endpoint=absolute("end_session_endpoint"),
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
    username: str
    is_admin: bool


def sign_in_name(claimed: str) -> str:
    """The MLflow username a claimed name becomes: NFKC-normalised (a full-width or compatibility form is the
    name it looks like), refused with whitespace or control characters: MySQL's PAD SPACE comparison takes
    "mlflow " for "mlflow", and a log line or the UI would show such names as someone else's."""
    name = unicodedata.normalize("NFKC", claimed)
    if any(character.isspace() or unicodedata.category(character).startswith("C") for character in name):
        raise Refused(403, f"the sign-in name {claimed!r} has whitespace or control characters: "
                           "ask the identity domain's administrator for a plain user name")
    return name


def identity_from_claims(claims: dict, settings: Settings) -> Identity:
    """Who the verified claims name, and whether their groups let them in (Refused 403 when not)."""
    claimed = next((claims[name] for name in (settings.username_claim, "email", "sub")
                    if isinstance(claims.get(name), str) and claims[name].strip()), None)
    if claimed is None:
        raise Refused(403, f"the token names nobody (no {settings.username_claim}, email or sub claim)")
    username = sign_in_name(claimed)
    if settings.reserved_username and username.casefold() == settings.reserved_username.casefold():
        raise Refused(403, f"{username} is the first admin's own login: use its password")
    groups = claims.get(settings.groups_claim)
    groups = {groups} if isinstance(groups, str) else {g for g in groups or () if isinstance(g, str)}
    if settings.admin_group in groups:
        return Identity(username, True)
    if settings.user_group in groups:
        return Identity(username, False)
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


# -------------------------------------------------------------------------------------------------- runtime
class Runtime:
    """Per process: the settings, the provider (discovered on first use, again after a failure), the
    signing keys, the cookie signers and which users this process has already brought in line."""

    def __init__(self, settings: Settings):
        from itsdangerous import URLSafeTimedSerializer

        self.settings = settings
        # Different salts: a login cookie can never pass as a session.
        key = signing_key(settings.secret_key)
        self.sessions = URLSafeTimedSerializer(key, salt="mlflow-oidc-session")
        self.logins = URLSafeTimedSerializer(key, salt="mlflow-oidc-login")
        self._lock = threading.Lock()
        self._verifier: TokenVerifier | None = None
        self._synced: dict[str, tuple[bool, float]] = {}

    @property
    def verifier(self) -> TokenVerifier:
        with self._lock:
            if self._verifier is None:
                self._verifier = TokenVerifier(self.settings, discover(self.settings.issuer))
            return self._verifier

    def sync_user(self, identity: Identity, force: bool = False) -> None:
        """Creates the MLflow user on first sight and makes its admin flag follow the groups. Bearer calls
        skip the database while this process synced the same flag less than USER_SYNC_SECONDS ago."""
        seen = self._synced.get(identity.username)
        if not force and seen and seen[0] == identity.is_admin and time.monotonic() - seen[1] < USER_SYNC_SECONDS:
            return
        _store_user(identity)
        self._synced[identity.username] = (identity.is_admin, time.monotonic())


def _store_user(identity: Identity) -> None:
    from mlflow.exceptions import MlflowException
    from mlflow.server.auth import store

    if not store.has_user(identity.username):
        try:
            # A password nobody knows: the person signs in through the provider (an admin may set one later).
            store.create_user(identity.username, secrets.token_urlsafe(32), identity.is_admin)
            _logger.info("created MLflow user %s (admin=%s)", identity.username, identity.is_admin)
            return
        except MlflowException as exc:  # another replica created it a moment ago
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
    if store.get_user(identity.username).is_admin != identity.is_admin:
        store.update_user(identity.username, is_admin=identity.is_admin)
        _logger.info("%s is now admin=%s (groups)", identity.username, identity.is_admin)


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def runtime() -> Runtime:
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            _set_up_logging()
            _runtime = Runtime(load_settings())
        return _runtime


# ------------------------------------------------------------------------------------------ HTTP, per request
def _text(status: int, body: str, **headers):
    from flask import make_response

    answer = make_response(body + "\n", status)
    answer.headers["Content-Type"] = "text/plain; charset=utf-8"
    answer.headers["Cache-Control"] = "no-store"
    answer.headers.update(headers)
    return answer


def _refusal(refused: Refused):
    if refused.status == 401:
        description = refused.reason.replace('"', "'")  # RFC 6750: a quoted string
        challenge = f'Bearer realm="mlflow", error="invalid_token", error_description="{description}"'
        return _text(401, refused.reason, **{"WWW-Authenticate": challenge})
    return _text(refused.status, refused.reason)


def _external_scheme(request) -> str:
    # The proxy terminates TLS and says so; the provider only redirects to registered URIs, so a forged
    # header can at worst break a sign-in, never send a code elsewhere.
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return forwarded if forwarded in ("http", "https") else request.scheme


def _redirect_uri(request, settings: Settings) -> str:
    return settings.redirect_uri or f"{_external_scheme(request)}://{request.host}{CALLBACK_PATH}"


def _cookie_options(request, path: str = "/") -> dict:
    return {"httponly": True, "secure": _external_scheme(request) == "https", "samesite": "Lax", "path": path}


def _is_page_request(request) -> bool:
    """A browser opening a page (not the UI's or a client's API call): it is sent to sign in."""
    return (request.method in ("GET", "HEAD") and "text/html" in request.headers.get("Accept", "")
            and not request.path.startswith(("/api/", "/ajax-api/")))


def _safe_next(target: str | None) -> str:
    """Only a plain path on this server, never an open redirect to another site. Browsers drop tabs and
    line breaks from a Location and read a backslash as a slash, so `/<TAB>/evil.example` would become
    `//evil.example`; a path with a control character, whitespace, a backslash or `//` anywhere is refused."""
    path = (target or "").split("?", 1)[0]
    if not target or not target.startswith("/") or "//" in path or "\\" in target \
            or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return "/"
    return target


def _pkce_challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def start_sign_in(request, rt: Runtime):
    """302 to the provider's sign-in page; state, nonce and the PKCE verifier wait in a signed cookie."""
    from flask import redirect

    provider = rt.verifier.provider
    login = {"state": secrets.token_urlsafe(24), "nonce": secrets.token_urlsafe(24),
             "verifier": secrets.token_urlsafe(48), "next": _safe_next(request.full_path.rstrip("?"))}
    query = urlencode({"response_type": "code", "client_id": rt.settings.client_id,
                       "redirect_uri": _redirect_uri(request, rt.settings), "scope": provider.scopes,
                       "state": login["state"], "nonce": login["nonce"],
                       "code_challenge": _pkce_challenge(login["verifier"]), "code_challenge_method": "S256"})
    separator = "&" if "?" in provider.authorization_endpoint else "?"
    answer = redirect(f"{provider.authorization_endpoint}{separator}{query}", 302)
    answer.headers["Cache-Control"] = "no-store"
    answer.set_cookie(LOGIN_COOKIE, rt.logins.dumps(login), max_age=LOGIN_SECONDS,
                      **_cookie_options(request, CALLBACK_PATH))
    return answer


def _exchange_code(request, rt: Runtime, code: str, verifier: str) -> dict:
    import requests

    provider = rt.verifier.provider
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": _redirect_uri(request, rt.settings),
            "code_verifier": verifier}
    auth = None
    if provider.token_auth_method == "client_secret_basic":
        # RFC 6749 2.3.1: both parts are form-encoded before they go into the Basic header.
        auth = (quote(rt.settings.client_id, safe=""), quote(rt.settings.client_secret, safe=""))
    else:
        form.update(client_id=rt.settings.client_id, client_secret=rt.settings.client_secret)
    try:
        answer = requests.post(provider.token_endpoint, data=form, auth=auth, timeout=HTTP_TIMEOUT,
                               headers={"Accept": "application/json"})
    except requests.RequestException as exc:
        raise Refused(503, f"cannot reach the identity provider's token endpoint: {type(exc).__name__}") from exc
    try:
        tokens = answer.json()
    except ValueError:
        tokens = None
    tokens = tokens if isinstance(tokens, dict) else {}
    if answer.status_code != 200 or not isinstance(tokens.get("id_token"), str):
        error = str(tokens.get("error", "no ID token"))[:64]
        raise Refused(502, f"the identity provider did not complete the sign-in ({answer.status_code} {error})")
    return tokens


def finish_sign_in(request, rt: Runtime):
    """The provider sent the browser back: check state, trade the code for tokens, verify the ID token,
    map the groups, bring the MLflow user in line, set the session and go where the person was going."""
    from flask import redirect
    from itsdangerous import BadSignature

    if request.args.get("error"):
        raise Refused(403, f"the identity provider refused the sign-in ({request.args['error'][:64]})")
    try:
        login = rt.logins.loads(request.cookies.get(LOGIN_COOKIE, ""), max_age=LOGIN_SECONDS)
    except BadSignature as exc:  # the expired kind included
        raise Refused(400, "this sign-in has expired or was started elsewhere: open MLflow again") from exc
    if not hmac.compare_digest(request.args.get("state", ""), login["state"]):
        raise Refused(400, "the sign-in answer does not belong to this sign-in (state): open MLflow again")
    tokens = _exchange_code(request, rt, request.args.get("code", ""), login["verifier"])
    identity = identity_from_claims(rt.verifier.claims(tokens["id_token"], nonce=login["nonce"]), rt.settings)
    rt.sync_user(identity, force=True)
    _logger.info("%s signed in (admin=%s)", identity.username, identity.is_admin)
    answer = redirect(login["next"], 302)
    answer.headers["Cache-Control"] = "no-store"
    # One Set-Cookie per answer: MLflow's security-headers middleware keeps only the last of several. The
    # login cookie is left to expire (it is sent to CALLBACK_PATH only, and its code was spent just now).
    answer.set_cookie(SESSION_COOKIE, rt.sessions.dumps({"u": identity.username}), max_age=rt.settings.session_seconds,
                      **_cookie_options(request))
    return answer


def sign_out(request, rt: Runtime):
    """Forgets the session here; the provider's own session ends on its end-session page, if it has one."""
    from flask import redirect

    provider = rt.verifier.provider
    answer = (redirect(f"{provider.end_session_endpoint}?{urlencode({'client_id': rt.settings.client_id})}", 302)
              if provider.end_session_endpoint else _text(200, "Signed out of MLflow."))
    answer.delete_cookie(SESSION_COOKIE, **_cookie_options(request))
    return answer


def _session_username(request, rt: Runtime) -> str | None:
    from itsdangerous import BadSignature

    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    try:
        return rt.sessions.loads(cookie, max_age=rt.settings.session_seconds)["u"]
    except (BadSignature, KeyError, TypeError):
        return None  # expired or forged: as if there were none


def _bearer_identity(token: str, rt: Runtime) -> Identity:
    identity = identity_from_claims(rt.verifier.claims(token), rt.settings)
    rt.sync_user(identity)
    return identity


def _authorization(username: str):
    from werkzeug.datastructures import Authorization

    return Authorization("bearer", {"username": username})


def _authenticate(request):
    from mlflow.server.auth import authenticate_request_basic_auth

    rt = runtime()
    if request.path == CALLBACK_PATH:
        return finish_sign_in(request, rt)
    if request.path == LOGOUT_PATH:
        return sign_out(request, rt)
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic":
        return authenticate_request_basic_auth()
    if scheme.lower() == "bearer" and credentials.strip():
        return _authorization(_bearer_identity(credentials.strip(), rt).username)
    username = _session_username(request, rt)
    if username:
        return _authorization(username)
    if _is_page_request(request):
        return start_sign_in(request, rt)
    raise Refused(401, "sign in: a browser through the identity provider, a client with a bearer token "
                       "(MLFLOW_TRACKING_TOKEN) or an MLflow user and password")


def authenticate():
    """MLflow's authorization_function: an Authorization naming the user, or the Response to send.
    MLflow asks several times per request (permission checks, after-request hooks): the first answer
    is kept for the rest of the request."""
    from flask import g, request
    from werkzeug.datastructures import Authorization

    known = getattr(g, "_mlflow_oci_authorization", None)
    if known is not None:
        return known
    try:
        result = _authenticate(request)
    except Refused as refused:
        if refused.status >= 500:
            _logger.warning("%s", refused.reason)
        elif refused.status == 403:
            _logger.info("refused: %s", refused.reason)
        return _refusal(refused)
    if isinstance(result, Authorization):  # (any attribute "exists" on one: hasattr would not tell)
        from .artifact_rules import refusal

        result = refusal(request) or result
        g._mlflow_oci_authorization = result
    return result


# -------------------------------------------------------------------------------------------------- check
def check(environ=os.environ) -> tuple[list[str], str]:
    """(problems, summary): every wrong setting, else whether the provider answers as expected."""
    try:
        settings = load_settings(environ)
    except SettingsError as exc:
        return exc.args[0].splitlines(), ""
    try:
        provider = discover(settings.issuer)
    except Refused as refused:
        return [f"MLFLOW_OIDC_ISSUER {settings.issuer}: {refused.reason}"], ""
    try:
        SigningKeys(provider.jwks_uri).download()
    except Refused as refused:
        return [f"MLFLOW_OIDC_ISSUER {settings.issuer}: {refused.reason} (an OCI identity domain serves its keys "
                "to anyone only when its settings allow client access to the signing certificate)"], ""
    named = "" if provider.issuer.rstrip("/") == settings.issuer else f" (its tokens name {provider.issuer})"
    return [], (f"single sign-on through {settings.issuer}{named} for client {settings.client_id}; "
                f"admins: group {settings.admin_group}, users: group {settings.user_group}, "
                f"groups from claim '{settings.groups_claim}', sessions last {settings.session_seconds} s")


def main(argv: list[str]) -> int:
    if argv != ["check"]:
        print("usage: python3 -m mlflow_oci.oidc_auth check", file=sys.stderr)
        return 2
    problems, summary = check()
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 3
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
