"""Single sign-on for the tracking server: an MLflow `authorization_function` for OpenID Connect.

MLFLOW_AUTH=oidc runs MLflow's basic-auth app (its users, permissions and UI) with `authenticate` below
in place of its password check (`authorization_function = mlflow_oci.oidc_auth:authenticate` in the
auth ini). A request gets in by, in this order:

  Authorization: Basic     MLflow's own check: per-user passwords, the first admin's break-glass login;
                           a password that passed is trusted for MLFLOW_OCI_PASSWORD_CACHE_SECONDS (auth_ini.py)
  Authorization: Bearer    a JWT from the provider (an ID token, or an access token whose audience is the
                           client id): signature against the provider's JWKS, issuer, audience, expiry
  the session cookie       set after a browser signed in: authorization code flow with state, nonce and
                           PKCE to CALLBACK_PATH on this server; signed with MLFLOW_FLASK_SERVER_SECRET_KEY,
                           so every replica accepts what any replica issued
Otherwise a browser page is sent to the provider and an API call gets 401.

The person's groups (MLFLOW_OIDC_GROUPS_CLAIM) decide: MLFLOW_OIDC_ADMIN_GROUP makes an MLflow admin,
MLFLOW_OIDC_USER_GROUP an ordinary user, neither is refused (403). A person is their provider subject
(`sub`): their MLflow user is created at their first sign-in, under their readable name, with a random
password nobody knows (people.py), and its admin flag follows the groups on every sign-in.

    python3 -m mlflow_oci.oidc_auth check    settings and the provider, one line per problem (the entrypoint)

The rules themselves (settings, discovery, keys, token checks, identity from claims) are in oidc.py; this
module is their Flask glue: cookies, redirects, MLflow's users.

Nothing secret is logged or answered: no token, code, cookie or client secret.
"""
import hmac
import logging
import os
import secrets
import sys
import threading
import time
from urllib.parse import quote, urlencode

from mlflow_oci.group_checks import Due, GroupChecks
from mlflow_oci.oidc import (
    CALLBACK_PATH,
    HTTP_TIMEOUT,
    KEYS_TIMEOUT_SECONDS,
    Identity,
    Refused,
    Settings,
    SettingsError,
    SigningKeys,
    TokenVerifier,
    discover,
    identity_from_claims,
    load_settings,
    pkce_challenge,
    safe_next,
    signing_key,
)
from mlflow_oci.people import NameTaken, People
from mlflow_oci.signouts import SignOuts

LOGOUT_PATH = "/oidc/logout"
REVOKE_PATH = "/oidc/revoke"         # an admin signs a person out of every session
SESSION_COOKIE = "mlflow_oidc_session"
LOGIN_COOKIE = "mlflow_oidc_login"     # state, nonce and PKCE verifier between the redirect and the callback
LOGIN_SECONDS = 600                    # how long a person may take at the provider's sign-in page
USER_SYNC_SECONDS = 300                # a bearer user's row is checked again after this, per process

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
        self._synced: dict[str, tuple[str, bool, float]] = {}   # subject -> (username, admin, when: monotonic)
        self._signouts: SignOuts | None = None
        self._people: People | None = None
        self._group_checks: GroupChecks | None = None

    def _once(self, attribute: str, make):
        """The object kept in `attribute`, made by `make()` on first use, once, whichever thread asks first."""
        with self._lock:
            if getattr(self, attribute) is None:
                setattr(self, attribute, make())
            return getattr(self, attribute)

    # The tables below live in the users' database MLflow's auth app opened (its store is set up before any
    # request).
    @property
    def signouts(self) -> SignOuts:
        from mlflow.server.auth import store

        return self._once("_signouts", lambda: SignOuts(store.engine, self.settings.signout_check_seconds))

    @property
    def group_checks(self) -> GroupChecks:
        from mlflow.server.auth import store

        return self._once("_group_checks", lambda: GroupChecks(store.engine, self.settings.group_check_seconds))

    @property
    def people(self) -> People:
        from mlflow.server.auth import store

        return self._once("_people", lambda: People(store))

    @property
    def verifier(self) -> TokenVerifier:
        return self._once("_verifier", lambda: TokenVerifier(self.settings, discover(self.settings.issuer)))

    def sync_user(self, identity: Identity, force: bool = False) -> str:
        """The person's MLflow username (people.py: created on first sight, keyed by subject), with the admin
        flag their groups give. Bearer calls skip the database while this process synced the same person with
        the same flag less than USER_SYNC_SECONDS ago."""
        seen = self._synced.get(identity.subject)
        if not force and seen and seen[1] == identity.is_admin and time.monotonic() - seen[2] < USER_SYNC_SECONDS:
            return seen[0]
        try:
            username = self.people.username_for(identity.subject, identity.username, identity.is_admin)
        except NameTaken as taken:
            raise Refused(403, f"an MLflow user named {taken.existing} exists that single sign-on did not create "
                               "for you: an MLflow admin renames or deletes it, or the identity provider gives "
                               "you another user name") from None
        self._synced[identity.subject] = (username, identity.is_admin, time.monotonic())
        return username


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


def start_sign_in(request, rt: Runtime):
    """302 to the provider's sign-in page; state, nonce and the PKCE verifier wait in a signed cookie."""
    from flask import redirect

    provider = rt.verifier.provider
    login = {"state": secrets.token_urlsafe(24), "nonce": secrets.token_urlsafe(24),
             "verifier": secrets.token_urlsafe(48), "next": safe_next(request.full_path.rstrip("?"))}
    query = urlencode({"response_type": "code", "client_id": rt.settings.client_id,
                       "redirect_uri": _redirect_uri(request, rt.settings), "scope": provider.scopes,
                       "state": login["state"], "nonce": login["nonce"],
                       "code_challenge": pkce_challenge(login["verifier"]), "code_challenge_method": "S256"})
    separator = "&" if "?" in provider.authorization_endpoint else "?"
    answer = redirect(f"{provider.authorization_endpoint}{separator}{query}", 302)
    answer.headers["Cache-Control"] = "no-store"
    answer.set_cookie(LOGIN_COOKIE, rt.logins.dumps(login), max_age=LOGIN_SECONDS,
                      **_cookie_options(request, CALLBACK_PATH))
    return answer


def _token_request(rt: Runtime, form: dict, timeout: float = HTTP_TIMEOUT) -> tuple[int, dict]:
    """POST to the provider's token endpoint as this confidential client: (status, the JSON answer or {})."""
    import requests

    provider = rt.verifier.provider
    auth = None
    if provider.token_auth_method == "client_secret_basic":
        # RFC 6749 2.3.1: both parts are form-encoded before they go into the Basic header.
        auth = (quote(rt.settings.client_id, safe=""), quote(rt.settings.client_secret, safe=""))
    else:
        form = dict(form, client_id=rt.settings.client_id, client_secret=rt.settings.client_secret)
    try:
        answer = requests.post(provider.token_endpoint, data=form, auth=auth, timeout=timeout,
                               headers={"Accept": "application/json"})
    except requests.RequestException as exc:
        raise Refused(503, f"cannot reach the identity provider's token endpoint: {type(exc).__name__}") from exc
    try:
        tokens = answer.json()
    except ValueError:
        tokens = None
    return answer.status_code, tokens if isinstance(tokens, dict) else {}


def _exchange_code(request, rt: Runtime, code: str, verifier: str) -> dict:
    status, tokens = _token_request(rt, {"grant_type": "authorization_code", "code": code,
                                         "redirect_uri": _redirect_uri(request, rt.settings), "code_verifier": verifier})
    if status != 200 or not isinstance(tokens.get("id_token"), str):
        error = str(tokens.get("error", "no ID token"))[:64]
        raise Refused(502, f"the identity provider did not complete the sign-in ({status} {error})")
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
    username = rt.sync_user(identity, force=True)
    refresh_token = tokens.get("refresh_token")
    rt.group_checks.keep(identity.subject, refresh_token if isinstance(refresh_token, str) else None)
    _logger.info("%s signed in (admin=%s)", username, identity.is_admin)
    answer = redirect(login["next"], 302)
    answer.headers["Cache-Control"] = "no-store"
    # One Set-Cookie per answer: MLflow's security-headers middleware keeps only the last of several. The
    # login cookie is left to expire (it is sent to CALLBACK_PATH only, and its code was spent just now).
    session = rt.sessions.dumps({"u": username, "s": identity.subject, "t": time.time()})  # t: to the sub-second, for sign-outs
    answer.set_cookie(SESSION_COOKIE, session, max_age=rt.settings.session_seconds, **_cookie_options(request))
    return answer


SIGN_OUT_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Sign out of MLflow</title></head>
<body><form method="post" action="%s"><button type="submit">Sign out of MLflow</button></form>
<p>This signs you out of MLflow in every browser.</p></body></html>
"""


def sign_out(request, rt: Runtime):
    """POST: every session of this person ends on every replica (signouts.py), the cookie goes, and the
    browser goes on to the provider's end-session page when the provider says it has one. Works while the
    provider is away. GET shows the button that posts (a link or an image cannot sign anyone out)."""
    from flask import redirect

    if request.method != "POST":
        return _text(200, SIGN_OUT_PAGE % LOGOUT_PATH, **{"Content-Type": "text/html; charset=utf-8"})
    username = _session_username(request, rt)
    if username:
        rt.signouts.record(username)
        _logger.info("%s signed out (every session)", username)
    try:
        provider = rt.verifier.provider
    except Refused:  # the provider is away: MLflow's sessions end all the same
        provider = None
    if provider and provider.end_session_endpoint:
        answer = redirect(f"{provider.end_session_endpoint}?{urlencode({'client_id': rt.settings.client_id})}", 302)
    else:
        answer = _text(200, "Signed out of MLflow." + ("" if provider else " The identity provider did not answer: "
                                                        "sign out there too if this is a shared computer."))
    answer.delete_cookie(SESSION_COOKIE, **_cookie_options(request))
    return answer


def revoke(request, rt: Runtime):
    """POST {"username": NAME} by an MLflow admin: every session of NAME ends on every replica
    (`orm-pack users revoke NAME`). Tokens are checked on every request and need no revoking; a password ends
    when it is changed or its user removed, on every replica within MLFLOW_OCI_PASSWORD_CACHE_SECONDS."""
    import json

    from mlflow.server.auth import store

    if request.method != "POST":
        raise Refused(405, "sign a person out with POST {\"username\": NAME}")
    caller = _caller(request, rt)
    if not caller or not store.get_user(caller).is_admin:
        raise Refused(403, "only an MLflow admin may sign people out")
    body = request.get_json(silent=True)
    username = body.get("username") if isinstance(body, dict) else None
    if not isinstance(username, str) or not username:
        raise Refused(400, "send {\"username\": NAME}")
    if not store.has_user(username):
        raise Refused(404, f"no MLflow user named {username}")
    at = rt.signouts.record(username)
    _logger.info("%s signed %s out (every session)", caller, username)
    return _text(200, json.dumps({"username": username, "signed_out_at": at}),
                 **{"Content-Type": "application/json"})


def _caller(request, rt: Runtime) -> str | None:
    """The name `_credentials` finds, None without any; a wrong password is a 401."""
    from werkzeug.datastructures import Authorization

    found = _credentials(request, rt)
    if found is not None and not isinstance(found, Authorization):
        raise Refused(401, "the MLflow user or password is wrong")
    return found.username if found is not None else None


def _session_username(request, rt: Runtime) -> str | None:
    from itsdangerous import BadSignature

    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    try:
        session, issued = rt.sessions.loads(cookie, max_age=rt.settings.session_seconds, return_timestamp=True)
        username, issued_at = session["u"], float(session.get("t", issued.timestamp()))
    except (BadSignature, KeyError, TypeError, ValueError, AttributeError):
        return None  # expired or forged: as if there were none
    if issued_at <= rt.signouts.last(username):
        return None  # its owner signed out (or was signed out) since
    if not _groups_still_hold(rt, session.get("s"), username, issued_at):
        return None
    _note_subject(session.get("s"))
    return username


def _groups_still_hold(rt: Runtime, subject: str | None, username: str, issued_at: float) -> bool:
    """Whether a session's groups may still be trusted: checked less than group_check_seconds ago, or asked
    again now with the person's refresh token. A session with nothing to ask with lasts that long only (a
    browser then signs in again, usually without a prompt). While the provider is away, sessions go on."""
    due = rt.group_checks.due(subject) if subject else Due.NOTHING
    if due == Due.FRESH:
        return True
    if due == Due.NOTHING:
        return time.time() - issued_at < rt.settings.group_check_seconds
    try:
        identity, refresh_token = _refreshed_identity(rt, due)
        if identity.subject != subject:
            raise Refused(403, "the provider's refreshed tokens name someone else")
    except Refused as refused:
        if refused.status >= 500:
            rt.group_checks.retry_soon(subject)
            _logger.warning("could not check %s's groups: %s; the session goes on, asked again soon", username,
                            refused.reason)
            return True
        rt.group_checks.forget(subject)
        rt.signouts.record(username)
        _logger.info("%s signed out of every session: %s", username, refused.reason)
        return False
    rt.sync_user(identity, force=True)  # the admin flag follows the groups
    rt.group_checks.keep(subject, refresh_token or due)
    return True


def _refreshed_identity(rt: Runtime, refresh_token: str) -> tuple[Identity, str | None]:
    """The person as the provider sees them now, from a refresh: the new ID token's claims, else its userinfo
    (which some providers answer instead); and the new refresh token, when it rotates them."""
    import requests

    # A person's request waits for this: no longer than for the signing keys while the provider is away.
    status, tokens = _token_request(rt, {"grant_type": "refresh_token", "refresh_token": refresh_token},
                                    timeout=KEYS_TIMEOUT_SECONDS)
    if status >= 500:
        raise Refused(503, f"the identity provider's token endpoint answered {status}")
    if status != 200 or not isinstance(tokens.get("access_token"), str):
        raise Refused(403, f"the identity provider refused to refresh the session ({str(tokens.get('error', status))[:64]})")
    provider = rt.verifier.provider
    if isinstance(tokens.get("id_token"), str):
        claims = rt.verifier.claims(tokens["id_token"])
    elif provider.userinfo_endpoint:
        try:
            answer = requests.get(provider.userinfo_endpoint, timeout=KEYS_TIMEOUT_SECONDS,
                                  headers={"Authorization": f"Bearer {tokens['access_token']}", "Accept": "application/json"})
        except requests.RequestException as exc:
            raise Refused(503, f"cannot reach the identity provider's userinfo endpoint: {type(exc).__name__}") from exc
        if answer.status_code != 200:
            raise Refused(503 if answer.status_code >= 500 else 403,
                          f"the identity provider's userinfo endpoint answered {answer.status_code}")
        try:
            claims = answer.json()
        except ValueError:
            claims = None
        if not isinstance(claims, dict):
            raise Refused(503, "the identity provider's userinfo endpoint answered no JSON object")
    else:
        raise Refused(403, "the identity provider's refresh brought no ID token and it has no userinfo endpoint")
    new_token = tokens.get("refresh_token")
    return identity_from_claims(claims, rt.settings), new_token if isinstance(new_token, str) else None


def _bearer_username(token: str, rt: Runtime) -> str:
    identity = identity_from_claims(rt.verifier.claims(token), rt.settings)
    username = rt.sync_user(identity)
    _note_subject(identity.subject)
    return username


def _note_subject(subject: str | None) -> None:
    """The provider's `sub` of this request's person, for the audit trail (audit.py)."""
    from flask import g, has_app_context

    if has_app_context():
        g.mlflow_oci_subject = subject


def _authorization(username: str):
    from werkzeug.datastructures import Authorization

    return Authorization("bearer", {"username": username})


def _credentials(request, rt: Runtime):
    """What a request carries, by any of the ways in: an Authorization naming the user (a password, a token
    or a session), MLflow's own answer to a wrong password, or None when it carries nothing."""
    from mlflow.server.auth import authenticate_request_basic_auth

    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic":
        return authenticate_request_basic_auth()
    if scheme.lower() == "bearer" and credentials.strip():
        return _authorization(_bearer_username(credentials.strip(), rt))
    username = _session_username(request, rt)
    return _authorization(username) if username else None


def _authenticate(request):
    rt = runtime()
    if request.path == CALLBACK_PATH:
        return finish_sign_in(request, rt)
    if request.path == LOGOUT_PATH:
        return sign_out(request, rt)
    if request.path == REVOKE_PATH:
        return revoke(request, rt)
    found = _credentials(request, rt)
    if found is not None:
        return found
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
