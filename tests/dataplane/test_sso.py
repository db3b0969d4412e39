"""Single sign-on (MLFLOW_AUTH=oidc): two tracking replicas on one MariaDB behind the proxy passing logins on
(PROXY_AUTH=upstream), with MLflow's authorization_function from docker/lib/mlflow_oci/oidc_auth.py and a
loopback OpenID Connect provider (oidc-provider-mock, in this process, recording what reaches it).

People sign in with Chromium through the provider's page and land in the MLflow UI as themselves; their
groups decide what they are (admin, user, or refused); the session cookie is good on every replica;
Python clients send the provider's tokens (MLFLOW_TRACKING_TOKEN) or an MLflow user's password."""
import base64
import hashlib
import io
import json
import subprocess
import threading
import time
import warnings
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlencode, urlparse

import pytest
import requests

from dataplane.stacks import serving_proxy_asking, start_proxy, start_tracking_replicas
from dataplane.test_browser import NAME, browser  # noqa: F401 (the fixture)
from dataplane.trust import CA_FILE
from harness import audit_trail
from orm_pack.local import credentials

pytestmark = [pytest.mark.dataplane, pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
              pytest.mark.filterwarnings("ignore:.*deprecated.*:DeprecationWarning")]  # the provider's authlib

ENTRYPOINT = Path(__file__).resolve().parents[2] / "docker" / "tracking" / "entrypoint.sh"
ADMIN = ("mlflow", "Admin-login-Passw0rd-2026")   # the first admin's break-glass login
CLIENT_ID = "mlflow-tracking"
CLIENT_SECRET = "Client-secret/with+odd=chars-2026"
SECRET_KEY = "one-key-for-every-replica-0123456789"
ADMINS, USERS = "mlflow-admins", "mlflow-users"
SESSION_COOKIE = "mlflow_oidc_session"
SIGNOUT_CHECK_SECONDS = 2   # how stale a replica's view of sign-outs may be here (the product's default: 30)
GROUP_CHECK_SECONDS = 3     # how old a session's groups may be here before they are asked again (default: 900)
# Who the provider knows: subject -> claims (the username comes from preferred_username, else email, else sub).
PEOPLE = {
    "u-alice": {"preferred_username": "alice", "email": "alice@example.test", "groups": [USERS, "staff"]},
    "u-bob": {"preferred_username": "bob", "groups": [USERS]},
    "u-carol": {"email": "carol@example.test", "groups": [ADMINS]},
    "u-mallory": {"preferred_username": "mallory", "groups": ["contractors"]},
    "u-dave": {"preferred_username": "dave", "groups": USERS},          # one group as a string
    "u-erin": {"preferred_username": "erin", "groups": [ADMINS]},
    "u-root": {"preferred_username": ADMIN[0], "groups": [ADMINS]},      # claims the first admin's name
}


class Provider:
    """oidc-provider-mock on 127.0.0.1 in a thread of this process. Every request it answers is recorded
    (method, path, query, form, Authorization), so a test can see what the tracking server sent it."""

    def __init__(self):
        import werkzeug.serving

        with warnings.catch_warnings():  # its authlib announces deprecations at import, "always" by its own filter
            import authlib.deprecate  # noqa: F401 (that filter first, then ours in front of it)

            warnings.simplefilter("ignore", DeprecationWarning)
            import oidc_provider_mock

        self.app = oidc_provider_mock.app(require_nonce=True)
        self.seen: list[dict] = []
        self.issued: list[str] = []   # every token handed out, to look for in the logs
        self.server = werkzeug.serving.make_server("127.0.0.1", 0, self._record, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        for subject, claims in PEOPLE.items():
            self.set_user(subject, claims)

    def _record(self, environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        form = parse_qs(body.decode(errors="replace")) if b"=" in body else {}
        self.seen.append({"method": environ["REQUEST_METHOD"], "path": environ["PATH_INFO"],
                          "query": parse_qs(environ.get("QUERY_STRING", "")), "form": form,
                          "authorization": environ.get("HTTP_AUTHORIZATION", "")})
        return self.app(environ, start_response)

    def requests_to(self, path: str, method: str | None = None) -> list[dict]:
        return [r for r in self.seen if r["path"] == path and method in (None, r["method"])]

    def set_user(self, subject: str, claims: dict) -> None:
        answer = requests.put(f"{self.url}/users/{subject}", json=claims, timeout=10)
        assert answer.status_code == 204, answer.text

    def id_token(self, subject: str, client_id: str = CLIENT_ID) -> str:
        """What a client gets from the provider for `subject` by the code flow (the provider's own page, answered)."""
        redirect_uri = "https://client.example.test/callback"
        query = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
                 "scope": "openid profile email", "state": "s", "nonce": "n"}
        authorized = requests.post(f"{self.url}/oauth2/authorize?{urlencode(query)}", data={"sub": subject},
                                   allow_redirects=False, timeout=10)
        code = parse_qs(urlparse(authorized.headers["Location"]).query)["code"][0]
        tokens = requests.post(f"{self.url}/oauth2/token", auth=(client_id, "any"), timeout=10, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}).json()
        self.issued.append(tokens["id_token"])
        return tokens["id_token"]

    def sign(self, claims: dict) -> str:
        """A token signed with the provider's own key (read from its storage), for claims it would not issue."""
        import flask
        import jwt

        with self.app.test_request_context("/"):
            self.app.preprocess_request()
            jwk = flask.g.oidc_provider_mock_storage.jwk.as_dict(is_private=True)
        token = jwt.encode(claims, jwt.PyJWK(jwk).key, algorithm="RS256", headers={"kid": jwk["kid"]})
        self.issued.append(token)
        return token

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(5)
        self.server.server_close()


def sso_env(provider_url: str) -> tuple:
    return (("MLFLOW_AUTH", "oidc"), ("MLFLOW_AUTH_ADMIN_USERNAME", ADMIN[0]), ("MLFLOW_AUTH_ADMIN_PASSWORD", ADMIN[1]),
            ("MLFLOW_AUTH_DEFAULT_PERMISSION", "READ"), ("MLFLOW_FLASK_SERVER_SECRET_KEY", SECRET_KEY),
            ("MLFLOW_ALLOWED_HOSTS", "*"), ("MLFLOW_OIDC_ISSUER", provider_url), ("MLFLOW_OIDC_CLIENT_ID", CLIENT_ID),
            ("MLFLOW_OIDC_CLIENT_SECRET", CLIENT_SECRET), ("MLFLOW_OIDC_ADMIN_GROUP", ADMINS),
            ("MLFLOW_OIDC_USER_GROUP", USERS), ("MLFLOW_OIDC_SESSION_SECONDS", "3600"),
            ("MLFLOW_OIDC_SIGNOUT_CHECK_SECONDS", str(SIGNOUT_CHECK_SECONDS)),
            ("MLFLOW_OIDC_GROUP_CHECK_SECONDS", str(GROUP_CHECK_SECONDS)))


@pytest.fixture(scope="module")
def provider():
    running = Provider()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def site(tracker, tmp_path_factory, mariadb, s3, provider):
    """(proxy URL, the two replicas, the proxy's directory: its nginx.conf and request log)."""
    workdir = tmp_path_factory.mktemp("sso")
    replicas = start_tracking_replicas(tracker, mariadb, s3, workdir, ("a", "b"), database="mlflow_sso", s3_prefix="sso",
                                       extra_env=sso_env(provider.url))
    proxy, url = start_proxy(tracker, workdir / "proxy", [r.port for r in replicas], credentials.Credentials(*ADMIN),
                             auth="upstream")
    yield url, replicas, workdir / "proxy"
    for service in (proxy, *(r.service for r in replicas)):
        tracker.stop(service)


def get(url: str, path: str, **kwargs) -> requests.Response:
    return requests.get(url + path, verify=CA_FILE, timeout=30, **kwargs)


def post(url: str, path: str, body: dict, **kwargs) -> requests.Response:
    return requests.post(url + path, json=body, verify=CA_FILE, timeout=30, **kwargs)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def who(url: str, **kwargs) -> requests.Response:
    return get(url, "/api/2.0/mlflow/users/current", **kwargs)


def permission(url: str, username: str, experiment_id: str) -> str:
    answer = get(url, "/api/3.0/mlflow/users/permissions/get", auth=ADMIN, params={
        "username": username, "resource_type": "experiment", "resource_id": experiment_id})
    return answer.json().get("permission", answer.text)


def sign_in_without_a_browser(url: str, subject: str, ca_file: str = CA_FILE) -> str:
    """What a browser does, with requests, straight to a replica or through a proxy whose certificate is from
    `ca_file`: the server's redirect, the provider's page answered as `subject`, the callback. Returns the
    session cookie's value."""
    agent = requests.Session()
    to_provider = agent.get(url + "/", headers={"Accept": "text/html"}, allow_redirects=False, timeout=30, verify=ca_file)
    back = agent.post(to_provider.headers["Location"], data={"sub": subject}, allow_redirects=False, timeout=30)
    callback = urlparse(back.headers["Location"])
    signed_in = agent.get(f"{url}{callback.path}?{callback.query}", allow_redirects=False, timeout=30, verify=ca_file)
    assert signed_in.status_code == 302, signed_in.text
    return agent.cookies[SESSION_COOKIE]


def experiment_by_name(url: str, name: str) -> dict:
    answer = get(url, "/api/2.0/mlflow/experiments/get-by-name", auth=ADMIN, params={"experiment_name": name})
    assert answer.status_code == 200, answer.text
    return answer.json()["experiment"]


# ---------------------------------------------------------------------------------------------- settings
def entrypoint(tmp_path, **env) -> subprocess.CompletedProcess:
    from orm_pack.local.services import python_env

    base = {"PATH": python_env()["PATH"], "HOME": str(tmp_path), "MLFLOW_AUTH": "oidc",
            "MLFLOW_AUTH_ADMIN_USERNAME": ADMIN[0], "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN[1],
            "MLFLOW_FLASK_SERVER_SECRET_KEY": SECRET_KEY, "MLFLOW_BACKEND_STORE_URI": f"sqlite:///{tmp_path}/m.db",
            "MLFLOW_ARTIFACTS_DESTINATION": str(tmp_path / "artifacts")}
    return subprocess.run(["bash", str(ENTRYPOINT)], env=dict(base, **env), capture_output=True, text=True, timeout=120)


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line.split("ERROR: ", 1)[1] for line in result.stderr.splitlines() if "ERROR: " in line]


def test_the_entrypoint_names_every_missing_setting_on_a_line_of_its_own(tmp_path):
    result = entrypoint(tmp_path, MLFLOW_OIDC_ADMIN_GROUP="same", MLFLOW_OIDC_USER_GROUP="same",
                        MLFLOW_OIDC_CLIENT_SECRET="", MLFLOW_FLASK_SERVER_SECRET_KEY="short")
    assert result.returncode == 2, result.stderr
    lines = error_lines(result)
    expected = ["set MLFLOW_OIDC_ISSUER: ", "set MLFLOW_OIDC_CLIENT_ID: ",
                "set MLFLOW_OIDC_CLIENT_SECRET: its client secret (or MLFLOW_OIDC_CLIENT_SECRET_SECRET_OCID, a Vault secret)",
                "MLFLOW_OIDC_ADMIN_GROUP and MLFLOW_OIDC_USER_GROUP must name different groups",
                "MLFLOW_FLASK_SERVER_SECRET_KEY signs the sign-in sessions: at least 30 random characters"]
    assert len(lines) == len(expected), result.stderr
    assert all(line.startswith(start) for line, start in zip(lines, expected, strict=True)), lines


@pytest.mark.parametrize("issuer, message", [
    ("http://idp.example.test", "MLFLOW_OIDC_ISSUER must be an https:// URL (got 'http://idp.example.test')"),
    ("http://127.0.0.1:9", "cannot reach the identity provider's discovery document at "
                           "http://127.0.0.1:9/.well-known/openid-configuration"),
], ids=["plain-http", "unreachable"])
def test_the_entrypoint_refuses_a_provider_it_cannot_use(tmp_path, issuer, message):
    result = entrypoint(tmp_path, MLFLOW_OIDC_ISSUER=issuer, MLFLOW_OIDC_CLIENT_ID=CLIENT_ID,
                        MLFLOW_OIDC_CLIENT_SECRET=CLIENT_SECRET, MLFLOW_OIDC_ADMIN_GROUP=ADMINS,
                        MLFLOW_OIDC_USER_GROUP=USERS)
    assert result.returncode == 2 and len(error_lines(result)) == 1, result.stderr
    assert message in error_lines(result)[0]
    assert CLIENT_SECRET not in result.stderr


def test_the_server_says_which_provider_and_groups_it_uses(site, provider):
    _, replicas, _ = site
    log = replicas[0].service.log.read_text()
    assert (f"users: single sign-on through {provider.url} for client {CLIENT_ID}; admins: group {ADMINS}, "
            f"users: group {USERS}, groups from claim 'groups', sessions last 3600 s") in log


# ----------------------------------------------------------------------------------------------- browser
def sign_in(browser, ui: str, provider: Provider, subject: str, path: str = "/"):  # noqa: F811 (the fixture's name)
    """A fresh browser opens `path` on MLflow, is sent to the provider and answers its page as `subject`."""
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1400, "height": 900})
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto(ui + path)
    page.wait_for_url(lambda address: address.startswith(f"{provider.url}/oauth2/authorize?"))
    page.locator("input[name=sub]").fill(subject)
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(lambda address: address.startswith(ui))  # back from the provider
    return context, page


def page_fetch(page, method: str, path: str, body: dict | None = None) -> list:
    """[status, text] of a call made by MLflow's own page, with the browser's cookies."""
    return page.evaluate("""async ([method, path, body]) => {
        const r = await fetch(path, {method, headers: {"Content-Type": "application/json"},
                                     body: body === null ? undefined : JSON.stringify(body)});
        return [r.status, await r.text()]; }""", [method, path, body])


@pytest.mark.browser
def test_a_person_signs_in_through_the_provider_and_works_in_the_ui_as_themselves(browser, site, provider):  # noqa: F811
    url, replicas, _ = site
    ui = url.replace("127.0.0.1", NAME)
    context, page = sign_in(browser, ui, provider, "u-alice")
    try:
        assert urlparse(page.url).path == "/"   # where she was going
        page.goto(ui + "/#/experiments")
        page.get_by_test_id("create-experiment-button").wait_for()
        status, text = page_fetch(page, "GET", "/ajax-api/2.0/mlflow/users/current")
        assert status == 200, text
        assert (json.loads(text)["user"]["username"], json.loads(text)["user"]["is_admin"]) == ("alice", False)

        # the code flow as the server ran it: redirect URI as the browser sees the proxy, PKCE, its client secret
        authorize = provider.requests_to("/oauth2/authorize", "GET")[-1]["query"]
        assert authorize["redirect_uri"] == [f"{ui}/oidc/callback"]
        assert authorize["code_challenge_method"] == ["S256"] and authorize["scope"] == ["openid profile email"]
        # the code's exchange, not a group check's refresh that may come after it under load
        exchange = [r for r in provider.requests_to("/oauth2/token", "POST")
                    if r["form"].get("grant_type") == ["authorization_code"]][-1]
        verifier = exchange["form"]["code_verifier"][0]
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        assert authorize["code_challenge"] == [challenge]
        assert exchange["form"]["redirect_uri"] == authorize["redirect_uri"]
        client, _, secret = base64.b64decode(exchange["authorization"].split()[1]).decode().partition(":")
        assert (unquote(client), unquote(secret)) == (CLIENT_ID, CLIENT_SECRET)

        # the session cookie: not readable by scripts, https only, not sent on cross-site writes, expires
        session = next(c for c in context.cookies() if c["name"] == SESSION_COOKIE)
        assert (session["httpOnly"], session["secure"], session["sameSite"]) == (True, True, "Lax")
        assert 3500 < session["expires"] - time.time() <= 3601

        # she creates an experiment in the UI, and owns it
        page.get_by_test_id("create-experiment-button").click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_placeholder("Input an experiment name").fill("alices-sso-experiment")
        dialog.get_by_role("button", name="Create").click()
        page.wait_for_url("**/#/experiments/*")
        experiment = experiment_by_name(url, "alices-sso-experiment")["experiment_id"]
        assert permission(url, "alice", experiment) == "MANAGE"

        # the session any replica issued is good on each (one secret key), and nothing else is
        for replica in replicas:
            answer = who(replica.url, cookies={SESSION_COOKIE: session["value"]})
            assert answer.status_code == 200 and answer.json()["user"]["username"] == "alice", answer.text
        forged = session["value"][:-4] + ("AAAA" if not session["value"].endswith("AAAA") else "BBBB")
        assert who(replicas[1].url, cookies={SESSION_COOKIE: forged}).status_code == 401
    finally:
        context.close()


@pytest.mark.browser
@pytest.mark.parametrize("crafted", ["/%09/evil.example", "/%5C%5Cevil.example", "//evil.example/"])
def test_a_crafted_link_brings_the_person_back_to_mlflow_after_sign_in(browser, site, provider, crafted):  # noqa: F811
    """A link to MLflow whose path the browser reads as another site once tabs are dropped and backslashes
    turned: before, after the sign-in the browser went on to evil.example."""
    url, _, _ = site
    ui = url.replace("127.0.0.1", NAME)
    context, page = sign_in(browser, ui, provider, "u-bob", path=crafted)
    try:
        page.wait_for_url(lambda address: "/oidc/callback" not in address)
        landed = urlparse(page.url)   # on MLflow (nginx merges the slashes of `//evil.example/` into a plain path)
        assert (landed.scheme, landed.hostname) == ("https", NAME) and not landed.path.startswith("//"), page.url
    finally:
        context.close()


@pytest.mark.browser
def test_a_cookie_copied_out_of_the_browser_dies_when_its_owner_signs_out(browser, site, provider):  # noqa: F811
    """The owner signs out with the sign-out page's button; the thief's copy, in another browser, stops working."""
    url, _, _ = site
    ui = url.replace("127.0.0.1", NAME)
    owner, page = sign_in(browser, ui, provider, "u-dave")
    thief = browser.new_context(ignore_https_errors=True)
    try:
        thief.add_cookies([next(c for c in owner.cookies() if c["name"] == SESSION_COOKIE)])
        stolen = thief.new_page()
        stolen.goto(ui + "/health")
        assert page_fetch(stolen, "GET", "/ajax-api/2.0/mlflow/users/current")[0] == 200
        page.goto(ui + "/oidc/logout")
        page.get_by_role("button", name="Sign out of MLflow").click()
        page.wait_for_load_state()
        assert SESSION_COOKIE not in {c["name"] for c in owner.cookies()}
        deadline = time.monotonic() + SIGNOUT_CHECK_SECONDS + 2
        while page_fetch(stolen, "GET", "/ajax-api/2.0/mlflow/users/current")[0] != 401:
            assert time.monotonic() < deadline, "the copied cookie still works after its owner signed out"
            time.sleep(0.3)
    finally:
        thief.close()
        owner.close()


@pytest.mark.browser
def test_groups_decide_who_may_edit_another_persons_experiment(browser, site, provider):  # noqa: F811
    url, _, _ = site
    ui = url.replace("127.0.0.1", NAME)
    created = post(url, "/api/2.0/mlflow/experiments/create", {"name": "alices-shared"},
                   headers=bearer(provider.id_token("u-alice")))
    assert created.status_code == 200, created.text
    experiment = created.json()["experiment_id"]
    rename = {"experiment_id": experiment, "new_name": "renamed-by-carol"}

    context, page = sign_in(browser, ui, provider, "u-bob")   # an ordinary user: READ on others' work
    try:
        page.goto(f"{ui}/#/experiments/{experiment}")
        page.get_by_text("alices-shared").first.wait_for()
        refused = page_fetch(page, "POST", "/ajax-api/2.0/mlflow/experiments/update", rename)
        assert refused[0] == 403 and "Permission denied" in refused[1], refused
    finally:
        context.close()
    assert experiment_by_name(url, "alices-shared")["experiment_id"] == experiment

    context, page = sign_in(browser, ui, provider, "u-carol")  # an admin (named by her email)
    try:
        page.goto(f"{ui}/#/experiments/{experiment}")
        page.get_by_text("alices-shared").first.wait_for()
        user = json.loads(page_fetch(page, "GET", "/ajax-api/2.0/mlflow/users/current")[1])["user"]
        assert (user["username"], user["is_admin"]) == ("carol@example.test", True)
        allowed = page_fetch(page, "POST", "/ajax-api/2.0/mlflow/experiments/update", rename)
        assert allowed[0] == 200, allowed
    finally:
        context.close()
    assert experiment_by_name(url, "renamed-by-carol")["experiment_id"] == experiment

    context, page = sign_in(browser, ui, provider, "u-mallory")  # in no group of MLflow's
    try:
        page.get_by_text("mallory is in neither").wait_for()
        assert page.url.startswith(f"{ui}/oidc/callback?")
        assert SESSION_COOKIE not in [c["name"] for c in context.cookies()]
    finally:
        context.close()


# ----------------------------------------------------------------------------------------- python clients
def test_a_python_client_works_with_a_token_from_the_provider(site, provider, monkeypatch):
    from mlflow import MlflowClient

    url, _, _ = site
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", provider.id_token("u-dave"))
    client = MlflowClient(url)
    experiment = client.create_experiment("daves-from-python")
    run = client.create_run(experiment)
    client.log_metric(run.info.run_id, "rmse", 0.5)
    assert client.get_run(run.info.run_id).data.metrics == {"rmse": 0.5}
    assert permission(url, "dave", experiment) == "MANAGE"   # the token's person owns what they created
    others = experiment_by_name(url, "Default")["experiment_id"]
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException, match="Permission denied"):
        client.rename_experiment(others, "not-daves")    # READ on what is not theirs


@pytest.mark.parametrize("make_token, status, reason", [
    (lambda p: p.id_token("u-alice", client_id="another-app"), 401, "the token was issued for another application"),
    (lambda p: p.sign(dict(iss=p.url, aud=CLIENT_ID, sub="u-alice", preferred_username="alice", groups=[USERS],
                           iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)), 401, "the token has expired"),
    (lambda p: p.sign(dict(iss="https://elsewhere.example.test", aud=CLIENT_ID, sub="u-alice", groups=[USERS],
                           iat=int(time.time()), exp=int(time.time()) + 600)), 401, "issued by another provider"),
    (lambda p: p.id_token("u-mallory"), 403, "mallory is in neither mlflow-admins nor mlflow-users"),
    (lambda p: p.id_token("u-root"), 403, "mlflow is the first admin's own login: use its password"),
    (lambda p: tampered(p.id_token("u-bob")), 401, "the token's signature does not verify"),
    (lambda p: "not-a-token", 401, "not a valid token from the identity provider (DecodeError)"),
], ids=["wrong-audience", "expired", "wrong-issuer", "no-mapped-group", "first-admins-name", "tampered", "garbage"])
def test_tokens_the_server_refuses(site, provider, make_token, status, reason):
    url, replicas, _ = site
    token = make_token(provider)
    direct = who(replicas[0].url, headers=bearer(token))
    assert direct.status_code == status and reason in direct.text, direct.text
    assert token not in direct.text and CLIENT_SECRET not in direct.text
    if status == 401:
        assert direct.headers["WWW-Authenticate"].startswith('Bearer realm="mlflow", error="invalid_token"')
    assert who(url, headers=bearer(token)).status_code == status   # the same through the proxy


def test_through_the_proxy_a_refusal_keeps_the_servers_challenge_and_reason(site, provider):
    """A browser opens its password dialog for a Basic challenge: with single sign-on only the server's
    Bearer one may reach it (the UI's calls after the session ended, an expired token), and a client's
    error shows the server's reason."""
    url, _, _ = site
    expired = provider.sign(dict(iss=provider.url, aud=CLIENT_ID, sub="u-bob", groups=[USERS],
                                 iat=int(time.time()) - 7200, exp=int(time.time()) - 3600))
    answer = who(url, headers=bearer(expired))
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == ('Bearer realm="mlflow", error="invalid_token", '
                                                  'error_description="the token has expired"')
    assert answer.text == "Login required: the token has expired\n"
    for path in ("/ajax-api/2.0/mlflow/experiments/search?max_results=1", "/api/2.0/mlflow/users/current"):
        ui_call = get(url, path, headers={"Accept": "application/json"})
        assert ui_call.status_code == 401 and "Basic" not in ui_call.headers["WWW-Authenticate"], ui_call.headers
        assert ui_call.headers["WWW-Authenticate"].startswith('Bearer realm="mlflow"')
        assert ui_call.text.startswith("Login required: sign in: a browser through the identity provider")
        assert ui_call.headers["Strict-Transport-Security"] == "max-age=31536000"


def tampered(token: str) -> str:
    """The same signature over a payload that now says admin."""
    header, payload, signature = token.split(".")
    claims = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).replace(USERS.encode(), ADMINS.encode())
    return ".".join((header, base64.urlsafe_b64encode(claims).rstrip(b"=").decode(), signature))


def test_the_admin_flag_follows_the_groups_each_time(site, provider, mariadb):
    url, replicas, _ = site

    def is_admin() -> int:
        with mariadb.admin("mlflow_sso_auth") as connection, connection.cursor() as cursor:
            cursor.execute("SELECT is_admin FROM users WHERE username = 'erin'")
            return cursor.fetchone()[0]

    assert who(replicas[0].url, headers=bearer(provider.id_token("u-erin"))).json()["user"]["is_admin"] is True
    assert is_admin() == 1
    provider.set_user("u-erin", {"preferred_username": "erin", "groups": [USERS]})
    answer = who(replicas[0].url, headers=bearer(provider.id_token("u-erin")))
    assert answer.json()["user"]["is_admin"] is False and is_admin() == 0


def test_mlflow_passwords_still_work_beside_single_sign_on(site, monkeypatch):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    url, _, _ = site
    created = post(url, "/api/2.0/mlflow/users/create", {"username": "ci-bot", "password": "Ci-bot-Passw0rd-2026"},
                   auth=ADMIN)
    assert created.status_code == 200, created.text
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "ci-bot")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "Ci-bot-Passw0rd-2026")
    experiment = MlflowClient(url).create_experiment("ci-bots")
    assert permission(url, "ci-bot", experiment) == "MANAGE"
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "not-the-password")
    with pytest.raises(MlflowException, match="401"):
        MlflowClient(url).get_experiment(experiment)
    # A person created by a sign-in has a password nobody knows: no login with a guess.
    assert who(url, auth=("dave", "dave")).status_code == 401


def test_a_sign_in_under_a_password_users_name_takes_nothing_over(site, provider, mariadb):
    """Before people were keyed by subject, an identity named like a password user (or a service login)
    signed in as that user and its groups set the user's admin flag."""
    url, replicas, _ = site
    created = post(url, "/api/2.0/mlflow/users/create", {"username": "frank", "password": "Frank-Passw0rd-2026"},
                   auth=ADMIN)
    assert created.status_code == 200, created.text
    for claimed in ("frank", "Frank"):
        provider.set_user("u-impostor", {"preferred_username": claimed, "groups": [ADMINS]})
        answer = who(replicas[0].url, headers=bearer(provider.id_token("u-impostor")))
        assert answer.status_code == 403, answer.text
        assert "an MLflow user named frank exists that single sign-on did not create" in answer.text
    with mariadb.admin("mlflow_sso_auth") as connection, connection.cursor() as cursor:
        cursor.execute("SELECT username, is_admin FROM users WHERE username LIKE 'frank%'")
        assert cursor.fetchall() == (("frank", 0),)
    assert who(url, auth=("frank", "Frank-Passw0rd-2026")).json()["user"]["username"] == "frank"


def test_a_person_the_provider_renames_stays_the_same_mlflow_user(site, provider):
    _, replicas, _ = site
    provider.set_user("u-grace", {"preferred_username": "grace", "groups": [USERS]})
    assert who(replicas[0].url, headers=bearer(provider.id_token("u-grace"))).json()["user"]["username"] == "grace"
    provider.set_user("u-grace", {"preferred_username": "grace.hopper", "groups": [USERS]})
    session = sign_in_without_a_browser(replicas[1].url, "u-grace")
    assert who(replicas[0].url, cookies={SESSION_COOKIE: session}).json()["user"]["username"] == "grace"
    provider.set_user("u-new-grace", {"preferred_username": "Grace", "groups": [USERS]})  # a newcomer, the old name
    assert who(replicas[1].url, headers=bearer(provider.id_token("u-new-grace"))).status_code == 403


def test_a_person_removed_from_the_groups_loses_every_session_at_the_next_group_check(site, provider):
    """Before, a session cookie was good for its whole life (hours) whatever the provider said meanwhile."""
    _, replicas, _ = site
    provider.set_user("u-ivan", {"preferred_username": "ivan", "groups": [USERS]})
    sessions = [sign_in_without_a_browser(replica.url, "u-ivan") for replica in replicas]
    refreshes = len([r for r in provider.requests_to("/oauth2/token", "POST")
                     if r["form"].get("grant_type") == ["refresh_token"]])
    time.sleep(GROUP_CHECK_SECONDS + 0.5)
    # Still in the groups: the server asked the provider again (a refresh) and the session goes on.
    assert who(replicas[0].url, cookies={SESSION_COOKIE: sessions[0]}).status_code == 200
    asked = [r for r in provider.requests_to("/oauth2/token", "POST") if r["form"].get("grant_type") == ["refresh_token"]]
    assert len(asked) > refreshes and CLIENT_SECRET not in str(asked[-1]["form"])  # the secret went in the header
    provider.set_user("u-ivan", {"preferred_username": "ivan", "groups": ["former-staff"]})
    time.sleep(GROUP_CHECK_SECONDS + 0.5)
    assert who(replicas[0].url, cookies={SESSION_COOKIE: sessions[0]}).status_code == 401
    # every session, on every replica, within the sign-out check
    deadline = time.monotonic() + SIGNOUT_CHECK_SECONDS + 1
    while who(replicas[1].url, cookies={SESSION_COOKIE: sessions[1]}).status_code != 401:
        assert time.monotonic() < deadline, "the other replica still accepts the session"
        time.sleep(0.2)


def test_a_refused_refresh_ends_the_session(site, provider):
    """The provider revoked the person's tokens (an administrator there ended their sessions)."""
    _, replicas, _ = site
    provider.set_user("u-judy", {"preferred_username": "judy", "groups": [USERS]})
    session = sign_in_without_a_browser(replicas[0].url, "u-judy")
    assert who(replicas[0].url, cookies={SESSION_COOKIE: session}).status_code == 200
    assert requests.post(f"{provider.url}/users/u-judy/revoke-tokens", timeout=10).status_code == 204
    time.sleep(GROUP_CHECK_SECONDS + 0.5)
    assert who(replicas[0].url, cookies={SESSION_COOKIE: session}).status_code == 401


def test_a_sign_in_answer_that_does_not_belong_to_a_sign_in_is_refused(site):
    _, replicas, _ = site
    replica = replicas[1].url
    without = get(replica, "/oidc/callback?code=stolen&state=guess")
    assert without.status_code == 400 and "this sign-in has expired or was started elsewhere" in without.text
    started = get(replica, "/", headers={"Accept": "text/html"}, allow_redirects=False)
    assert started.status_code == 302 and "code_challenge=" in started.headers["Location"]
    login = started.cookies["mlflow_oidc_login"]
    wrong = get(replica, "/oidc/callback?code=stolen&state=guess", cookies={"mlflow_oidc_login": login})
    assert wrong.status_code == 400 and "(state)" in wrong.text
    assert get(replica, "/api/2.0/mlflow/experiments/search?max_results=1").status_code == 401  # an API call: no redirect


def test_signing_out_forgets_the_session_here_and_at_the_provider(site, provider):
    _, replicas, _ = site
    session = sign_in_without_a_browser(replicas[0].url, "u-bob")
    assert who(replicas[1].url, cookies={SESSION_COOKIE: session}).json()["user"]["username"] == "bob"
    page = get(replicas[1].url, "/oidc/logout", cookies={SESSION_COOKIE: session})
    assert page.status_code == 200 and '<form method="post" action="/oidc/logout">' in page.text  # a GET signs nobody out
    assert who(replicas[1].url, cookies={SESSION_COOKIE: session}).status_code == 200
    out = requests.post(replicas[1].url + "/oidc/logout", cookies={SESSION_COOKIE: session}, allow_redirects=False,
                        timeout=30)
    assert out.status_code == 302 and out.headers["Location"] == f"{provider.url}/oauth2/end_session?client_id={CLIENT_ID}"
    assert out.headers["Set-Cookie"].startswith(f"{SESSION_COOKIE}=; Expires=Thu, 01 Jan 1970")


def _refused_everywhere(replicas, session: str) -> list[int]:
    """The statuses the session gets from every replica once their view of sign-outs is fresh."""
    time.sleep(SIGNOUT_CHECK_SECONDS + 0.5)
    return [who(replica.url, cookies={SESSION_COOKIE: session}).status_code for replica in replicas]


def test_a_session_copied_before_sign_out_is_refused_by_every_replica(site):
    """A stolen cookie: its owner signs out on one replica, and the copy stops working on all of them."""
    _, replicas, _ = site
    session = sign_in_without_a_browser(replicas[0].url, "u-dave")
    stolen = dict(cookies={SESSION_COOKIE: session})
    assert [who(r.url, **stolen).status_code for r in replicas] == [200, 200]
    out = requests.post(replicas[1].url + "/oidc/logout", allow_redirects=False, timeout=30, **stolen)
    assert out.status_code == 302
    assert _refused_everywhere(replicas, session) == [401, 401]
    again = sign_in_without_a_browser(replicas[0].url, "u-dave")  # signing in again is a new session
    assert who(replicas[1].url, cookies={SESSION_COOKIE: again}).json()["user"]["username"] == "dave"


def test_an_admin_signs_a_person_out_of_every_session_with_orm_pack(site, monkeypatch, capsys):
    from orm_pack.cli import main as orm_pack

    url, replicas, _ = site
    session = sign_in_without_a_browser(replicas[0].url, "u-erin")
    assert who(replicas[1].url, cookies={SESSION_COOKIE: session}).status_code == 200
    alice = sign_in_without_a_browser(replicas[0].url, "u-alice")
    refused = requests.post(replicas[0].url + "/oidc/revoke", json={"username": "erin"}, timeout=30,
                            cookies={SESSION_COOKIE: alice})
    assert refused.status_code == 403, refused.text  # alice is no admin
    wrong = requests.post(replicas[0].url + "/oidc/revoke", json={"username": "erin"}, timeout=30,
                          auth=(ADMIN[0], "not-the-password"))
    assert wrong.status_code == 401, wrong.text
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN[0])
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN[1])
    assert orm_pack(["users", "revoke", "erin", "--url", url]) == 0
    assert "signed erin out of every session" in capsys.readouterr().err
    assert _refused_everywhere(replicas, session) == [401, 401]
    assert orm_pack(["users", "revoke", "nobody-here", "--url", url]) == 4
    assert "no MLflow user named nobody-here" in capsys.readouterr().err


def test_the_serving_endpoint_accepts_the_same_tokens(site, provider, tracker, tmp_path):
    """The serving VM's proxy (PROXY_AUTH=tracking) asks the tracking server, which checks a token as it
    checks its own callers: a person of either group calls the model, other tokens are refused."""
    _, replicas, _ = site
    with serving_proxy_asking(tracker, tmp_path, replicas[1].url, credentials.Credentials(*ADMIN)) as url:
        for subject in ("u-dave", "u-carol"):  # a user, an admin
            answer = get(url, "/invocations", headers=bearer(provider.id_token(subject)))
            assert (answer.status_code, answer.text) == (200, "a prediction\n"), subject
        assert get(url, "/invocations", headers=bearer(provider.id_token("u-mallory"))).status_code == 403
        assert get(url, "/invocations", headers=bearer(provider.id_token("u-dave", client_id="another-app"))
                   ).status_code == 401
        refused = get(url, "/invocations")
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith('Bearer realm="mlflow"')
        assert "Basic" not in refused.headers["WWW-Authenticate"] and refused.text.startswith("Login required: sign in")


def test_no_token_secret_or_session_reaches_the_logs(site, provider):
    _, replicas, _ = site
    logs = [replica.service.log.read_text(errors="replace") for replica in replicas]
    assert provider.issued and any("created MLflow user dave (admin=False)" in log for log in logs)
    for replica, log in zip(replicas, logs, strict=True):
        assert CLIENT_SECRET not in log and SECRET_KEY not in log
        assert "/oidc/callback?code=" not in log   # the access log shows the sign-in answer without its code
        for token in provider.issued:
            assert token.split(".")[2] not in log
        for directory in replica.dirs:  # and nothing written next to it that holds them
            for path in directory.rglob("*"):
                if path.is_file() and path.stat().st_size < 1_000_000:
                    text = path.read_text(errors="replace")
                    assert CLIENT_SECRET not in text, path


def test_the_proxys_access_log_keeps_no_authorization_code(site):
    url, _, proxy_dir = site
    sign_in_without_a_browser(url, "u-dave")  # through the proxy, as a browser comes back from the provider
    lines = (proxy_dir / "requests.log").read_text().splitlines()  # its request log, as on the VMs
    assert any('"method":"GET","path":"/"' in line for line in lines)  # written, with the sign-in's other steps
    assert not [line for line in lines if "code=" in line or "/oidc/callback" in line]
    # and a refused sign-in's page, which stays at the callback's address, sends no Referer from it
    refused = get(url, "/oidc/callback?code=spent&state=guess")
    assert refused.status_code == 400 and refused.headers["Referrer-Policy"] == "no-referrer"
    assert refused.headers["Strict-Transport-Security"] == "max-age=31536000"


def test_a_signed_in_person_cannot_name_an_artifact_location(site, provider):
    url, _, _ = site
    token = bearer(provider.id_token("u-alice"))
    elsewhere = post(url, "/api/2.0/mlflow/experiments/create",
                     {"name": "alices-window", "artifact_location": "s3://mlflow/sso/0"}, headers=token)
    assert elsewhere.status_code == 400 and "artifact_location is chosen by the server" in elsewhere.text
    assert post(url, "/api/2.0/mlflow/experiments/create", {"name": "alices-own"}, headers=token).status_code == 200


@pytest.mark.parametrize("subject, username, how", [("u-bob", "bob", "token"), ("u-alice", "alice", "session")])
def test_every_write_leaves_an_audit_line_naming_the_person_and_their_subject(site, provider, subject, username, how):
    """A person is named by the name they read and by the provider's immutable `sub`, signed in with a token from
    the provider or with the session cookie of a sign-in."""
    url, replicas, _ = site
    logs = [replica.service.log for replica in replicas]
    since = [audit_trail.log_size(log) for log in logs]
    http = requests.Session()
    http.verify, http.trust_env = CA_FILE, False  # the session's CA, whatever REQUESTS_CA_BUNDLE says
    if how == "token":
        http.headers.update(bearer(provider.id_token(subject)))
    else:
        http.cookies.set(SESSION_COOKIE, sign_in_without_a_browser(url, subject))
    expected = audit_trail.do_the_writes(http, url, f"sso-{how}")
    lines = sorted((line for log, start in zip(logs, since, strict=True) for line in audit_trail.audit_lines(log, start)),
                   key=lambda line: line["time"])
    audit_trail.check(lines, expected, {"user": username, "subject": subject, "login": "oidc"})
