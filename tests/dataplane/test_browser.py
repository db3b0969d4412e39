"""The MLflow web UI in a real browser (Debian's Chromium, driven by Playwright), against `orm-pack local
up` reached by a name that is not localhost, as a deployed server is: log in, create an experiment, open
a run a Python client logged, register its model, set the alias champion and see the serving endpoint
switch to it. A page of another site that tries a write is refused. A browser that trusts local up's CA
(imported with certutil, as README says) opens the UI with no certificate error. Screenshots are kept on
failure."""
import os
import subprocess
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import requests

from dataplane.local_mlflow import local_mlflow
from harness import loopback
from harness.tools import missing, require_binary
from orm_pack.local.ports import free_port

pytestmark = [pytest.mark.dataplane, pytest.mark.browser,
              pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")]

NAME = "mlflow.test"          # what the browser calls the server (the host resolver maps it to loopback)
FOREIGN = "elsewhere.test"     # another site
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                  "--disable-background-networking", "--disable-component-update",
                  f"--host-resolver-rules=MAP {NAME} 127.0.0.1, MAP {FOREIGN} 127.0.0.1"]
SEARCH = "/api/2.0/mlflow/experiments/get-by-name"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with local_mlflow(tmp_path_factory.mktemp("browser") / "state") as running:
        yield running


@pytest.fixture(scope="module")
def browser():
    chromium = require_binary("chromium", how="apt-get install chromium chromium-driver")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright", "pip install -e '.[test]'")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser, stack, request, tmp_path):
    """A logged-in page: the browser answers the proxy's password challenge as a user would."""
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1400, "height": 900},
                                  http_credentials={"username": stack.username, "password": stack.password})
    context.set_default_timeout(30_000)
    page = context.new_page()
    yield page
    if getattr(request.node, "failed", False):
        shots = Path(os.environ.get("BROWSER_SCREENSHOTS", tmp_path))
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / f"{request.node.name}.png"), full_page=True)
        print(f"screenshot: {shots / (request.node.name + '.png')}")
    context.close()


ERROR_PAGE = "Something went wrong"  # MLflow's UI when a page fails to render


def shows(page, text: str) -> None:
    """Waits until `text` is on the page. MLflow's UI has once, while the other test lane loaded the machine,
    shown its error page instead of a page it renders otherwise: then the page is loaded once more, as a
    user would, and the failure (with the requests the UI saw fail) is printed. Anything else fails."""
    failed = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    try:
        page.get_by_text(text).first.wait_for()
        return
    except Exception:
        if not page.get_by_text(ERROR_PAGE).count():
            raise
    print(f"MLflow's UI showed its error page at {page.url}; failed requests: {failed}; loading it again")
    page.reload()
    page.get_by_text(text).first.wait_for()


def _ui(stack) -> str:
    return f"https://{NAME}:{stack.tracking_port}"


def _get(stack, path, **params):
    return requests.get(stack.tracking_url + path, params=params, auth=stack.auth(), verify=str(stack.ca_file), timeout=30)


def test_a_user_works_through_the_ui_and_the_endpoint_follows(page, stack):
    # a notebook logged a run with a model, without registering it
    logged = stack.train("--experiment-name", "wine-notebook", "--model-name", "")
    experiment = _get(stack, SEARCH, experiment_name="wine-notebook").json()["experiment"]["experiment_id"]

    # log in: the home page lists the notebook's experiment
    page.goto(_ui(stack) + "/")
    shows(page, "wine-notebook")

    # create an experiment
    page.goto(_ui(stack) + "/#/experiments")
    page.get_by_test_id("create-experiment-button").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_placeholder("Input an experiment name").fill("from-the-browser")
    dialog.get_by_role("button", name="Create").click()
    page.wait_for_url("**/#/experiments/*")
    assert _get(stack, SEARCH, experiment_name="from-the-browser").status_code == 200

    # open the run the notebook logged, from its link (a fresh load: only the hash differs from the page
    # above, and MLflow's UI can fail the in-page move between the two while the experiment page loads)
    page.goto("about:blank")
    page.goto(f"{_ui(stack)}/#/experiments/{experiment}/runs/{logged['run_id']}")
    shows(page, logged["run_id"])
    model_id = logged["model_uri"].removeprefix("models:/")
    page.goto(f"{_ui(stack)}/#/experiments/{experiment}/models/{model_id}")

    # register it as the model the endpoint serves
    page.get_by_role("button", name="Register model").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("combobox").click()
    page.get_by_text("Create New Model", exact=True).click()
    dialog.get_by_placeholder("Input a model name").fill("wine-quality")
    dialog.get_by_role("button", name="Register").click()
    dialog.wait_for(state="hidden")
    versions = _get(stack, "/api/2.0/mlflow/registered-models/get", name="wine-quality").json()
    assert versions["registered_model"]["latest_versions"][0]["version"] == "1"

    # promote it: set the alias champion on version 1
    page.goto(f"{_ui(stack)}/#/models/wine-quality/versions/1")
    page.get_by_role("button", name="Add", exact=True).click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("combobox").fill("champion")
    page.keyboard.press("Enter")
    dialog.get_by_role("button", name="Save aliases").click()
    dialog.wait_for(state="hidden")
    alias = _get(stack, "/api/2.0/mlflow/registered-models/alias", name="wine-quality", alias="champion")
    assert alias.json()["model_version"]["version"] == "1"

    # the endpoint switches to it with no redeploy
    stack.wait_serving("models:/wine-quality/1")
    answer = requests.post(f"{stack.serving_url}/invocations", auth=stack.auth(), verify=str(stack.ca_file), timeout=60, json={
        "dataframe_split": {"columns": ["fixed acidity", "volatile acidity", "citric acid", "residual sugar",
                                        "chlorides", "free sulfur dioxide", "total sulfur dioxide", "density", "pH",
                                        "sulphates", "alcohol"],
                            "data": [[6.2, 0.66, 0.48, 1.2, 0.029, 29, 75, 0.98, 3.33, 0.39, 12.8]]}})
    assert answer.status_code == 200 and len(answer.json()["predictions"]) == 1


class _ForeignSite(BaseHTTPRequestHandler):
    """A page of another site whose script tries to create an experiment in MLflow."""

    target = ""

    def log_message(self, *args):
        pass

    def do_GET(self):
        body = f"""<!doctype html><title>elsewhere</title><script>
          fetch("{self.target}/ajax-api/2.0/mlflow/experiments/create", {{
            method: "POST", mode: "no-cors", credentials: "include",
            headers: {{"Content-Type": "text/plain"}}, body: JSON.stringify({{name: "from-elsewhere"}})
          }}).then(() => document.title = "sent", () => document.title = "failed");
        </script>""".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_a_page_of_another_site_cannot_write(page, stack):
    page.goto(_ui(stack) + "/")  # the user is logged in to MLflow in this browser
    page.get_by_text("Welcome to MLflow").wait_for()
    handler = type("Site", (_ForeignSite,), {"target": _ui(stack)})
    site = loopback.serve(handler, free_port())
    try:
        page.goto(f"http://{FOREIGN}:{site.server_address[1]}/")
        page.wait_for_function("document.title !== 'elsewhere'")
    finally:
        loopback.stop(site)
    assert _get(stack, SEARCH, experiment_name="from-elsewhere").status_code == 404
    access_log = (stack.state_dir / "nginx" / "access.log").read_text()
    refused = [line for line in access_log.splitlines() if "experiments/create" in line and '" 403 ' in line]
    assert refused, "the foreign page's write never reached the proxy"


def test_a_browser_that_trusts_the_local_ca_opens_the_ui_without_a_certificate_error(browser, stack, tmp_path):
    """The CA imported into a fresh NSS database (Chromium's on Linux, $HOME/.pki/nssdb), as README says;
    no ignore_https_errors: an untrusted certificate would fail the navigation."""
    certutil = require_binary("certutil", how="apt-get install libnss3-tools")
    chromium = require_binary("chromium", how="apt-get install chromium chromium-driver")
    from playwright.sync_api import Error as PlaywrightError

    home = tmp_path / "home"
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    for argv in ([certutil, "-d", f"sql:{nssdb}", "-N", "--empty-password"],
                 [certutil, "-d", f"sql:{nssdb}", "-A", "-t", "C,,", "-n", "orm-pack-local", "-i", str(stack.ca_file)]):
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr

    def open_ui(home_dir):
        # a Chromium of its own: NSS reads the database when the browser starts
        launched = browser.browser_type.launch(executable_path=chromium, args=CHROMIUM_FLAGS,
                                               env={**os.environ, "HOME": str(home_dir)})
        try:
            context = launched.new_context(http_credentials={"username": stack.username, "password": stack.password})
            page = context.new_page()
            response = page.goto(stack.tracking_url + "/", timeout=60_000)
            assert response.ok, response.status
            shows(page, "Experiments")
        finally:
            launched.close()

    with pytest.raises(PlaywrightError, match="ERR_CERT_AUTHORITY_INVALID"):  # without the CA: refused
        open_ui(tmp_path / "stranger")
    open_ui(home)
