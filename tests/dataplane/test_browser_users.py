"""MLflow's own users in a real browser (Chromium via Playwright), through the auth proxy passing logins
on to two tracking replicas: a user who answers the login prompt creates an experiment in the UI (the
auth app's CSRF protection and the proxy's origin rule both let a same-origin write through) and owns
it; another user reads it but a write from the UI's own page is refused by permission."""
import pytest
import requests

from dataplane.stacks import start_proxy, start_tracking_replicas
from dataplane.test_browser import CHROMIUM_FLAGS, NAME, browser, shows  # noqa: F401 (the fixture)
from dataplane.trust import CA_FILE
from orm_pack.local import credentials

pytestmark = [pytest.mark.dataplane, pytest.mark.browser,
              pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")]

ADMIN = ("mlflow", "Admin-login-Passw0rd-2026")
ALICE = ("alice", "Alice-login-Passw0rd")
BOB = ("bob", "Bob-login-Passw0rd-2026")
AUTH_ENV = (("MLFLOW_AUTH", "mlflow"), ("MLFLOW_AUTH_ADMIN_USERNAME", ADMIN[0]),
            ("MLFLOW_AUTH_ADMIN_PASSWORD", ADMIN[1]), ("MLFLOW_AUTH_DEFAULT_PERMISSION", "READ"),
            ("MLFLOW_FLASK_SERVER_SECRET_KEY", "one-key-for-every-replica-0123456789"),
            ("MLFLOW_ALLOWED_HOSTS", "*"))
assert CHROMIUM_FLAGS


@pytest.fixture(scope="module")
def site(tracker, tmp_path_factory, mariadb, s3):
    workdir = tmp_path_factory.mktemp("browser-users")
    replicas = start_tracking_replicas(tracker, mariadb, s3, workdir, ("a", "b"), database="mlflow_browser",
                                       s3_prefix="browser-users", extra_env=AUTH_ENV)
    proxy, url = start_proxy(tracker, workdir / "proxy", [r.port for r in replicas],
                             credentials.Credentials(*ADMIN), auth="upstream")
    for user in (ALICE, BOB):
        created = requests.post(f"{url}/api/2.0/mlflow/users/create", auth=ADMIN, verify=CA_FILE, timeout=30,
                                json={"username": user[0], "password": user[1]})
        assert created.status_code == 200, created.text
    yield url
    for service in (proxy, *(r.service for r in replicas)):
        tracker.stop(service)


def open_as(browser, user):  # noqa: F811 (the fixture's name)
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1400, "height": 900},
                                  http_credentials={"username": user[0], "password": user[1]})
    context.set_default_timeout(30_000)
    return context, context.new_page()


def test_each_person_signs_in_writes_what_they_may_and_is_refused_the_rest(browser, site):  # noqa: F811
    ui = site.replace("127.0.0.1", NAME)
    context, page = open_as(browser, ALICE)
    try:
        page.goto(ui + "/#/experiments")
        page.get_by_test_id("create-experiment-button").click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_placeholder("Input an experiment name").fill("alices-experiment")
        dialog.get_by_role("button", name="Create").click()
        page.wait_for_url("**/#/experiments/*")
    finally:
        context.close()
    found = requests.get(f"{site}/api/2.0/mlflow/experiments/get-by-name", auth=ADMIN, verify=CA_FILE, timeout=30,
                         params={"experiment_name": "alices-experiment"})
    assert found.status_code == 200, found.text
    experiment = found.json()["experiment"]["experiment_id"]
    owner = requests.get(f"{site}/api/3.0/mlflow/users/permissions/get", auth=ADMIN, verify=CA_FILE, timeout=30,
                         params={"username": "alice", "resource_type": "experiment", "resource_id": experiment})
    assert owner.json()["permission"] == "MANAGE", owner.text  # the creator owns it

    context, page = open_as(browser, BOB)
    try:
        page.goto(f"{ui}/#/experiments/{experiment}")
        shows(page, "alices-experiment")  # READ, the default for new users
        answer = page.evaluate("""async (id) => {
            const r = await fetch("/ajax-api/2.0/mlflow/runs/create", {method: "POST",
                headers: {"Content-Type": "application/json"}, body: JSON.stringify({experiment_id: id})});
            return [r.status, await r.text()]; }""", experiment)
        # a write from MLflow's own page, refused by permission (not by CSRF or origin checks)
        assert answer[0] == 403 and "Permission denied" in answer[1], answer
    finally:
        context.close()
