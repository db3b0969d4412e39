"""`orm-pack doctor` tells whether MLflow really works, one line per check: it passes against `local up`
serving a model, verifying its certificate with local up's CA, and fails with the right line against a
wrong password, a proxy without the origin fix, and an endpoint whose alias does not exist yet. `orm-pack
connect --local` gives a client what it needs, with verification on. The tests run in order on one local
MLflow."""
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from dataplane.local_mlflow import cli, local_mlflow
from dataplane.stacks import RUNTIME, start_proxy
from dataplane.trust import CA_FILE
from harness.readme import block_starting, fill
from orm_pack.local.credentials import Credentials
from orm_pack.local.runtime_files import RuntimeFiles
from orm_pack.local.services import python_env

pytestmark = [pytest.mark.dataplane, pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")]

CHECKS = ["tls", "health", "auth", "ui-write", "cross-origin", "artifacts", "alias", "serving"]
WITH_VERSION = ["tls", "health", "version", *CHECKS[2:]]  # --mlflow-version: the version right after health
RUNNING = mlflow.__version__  # local up runs this environment's MLflow


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with local_mlflow(tmp_path_factory.mktemp("doctor") / "state") as running:
        yield running


def _lines(output: str) -> dict:
    """check name -> (PASS/FAIL, rest of the line)"""
    found = {}
    for line in output.splitlines():
        verdict, _, rest = line.partition("  ")
        if verdict in ("PASS", "FAIL"):
            name, _, detail = rest.strip().partition(" ")
            found[name] = (verdict, detail.strip())
    return found


def _doctor(stack, url: str, password: str | None = None, *extra: str):
    """`orm-pack doctor URL` as a user of local up runs it: with its CA in MLflow's own variable."""
    env = dict(python_env(), MLFLOW_TRACKING_USERNAME=stack.username,
               MLFLOW_TRACKING_PASSWORD=password or stack.password, MLFLOW_TRACKING_SERVER_CERT_PATH=str(stack.ca_file))
    return subprocess.run([sys.executable, "-m", "orm_pack.cli", "doctor", url, "--artifact-mb", "5", *extra],
                          env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


def test_status_json_tells_scripts_where_everything_is(stack):
    result = cli("local", "status", "--state-dir", str(stack.state_dir), "--json")
    assert result.returncode == 0, result
    document = json.loads(result.stdout)
    assert document["running"] and [s["name"] for s in document["services"]] == ["tracking", "proxy", "serving"]
    assert all(s["running"] and s["pid"] > 0 for s in document["services"])
    assert (document["tracking_url"], document["serving_url"]) == (stack.tracking_url, stack.serving_url)
    assert document["invocations_url"] == stack.serving_url + "/invocations"
    assert (document["username"], document["password"]) == (stack.username, stack.password)


def test_an_endpoint_without_its_alias_fails_the_alias_and_serving_lines(stack):
    result = cli("local", "doctor", "--state-dir", str(stack.state_dir), "--artifact-mb", "5")
    assert result.returncode == 1, result
    lines = _lines(result.stdout)
    assert list(lines) == CHECKS
    assert [name for name, (verdict, _) in lines.items() if verdict == "FAIL"] == ["alias", "serving"]
    assert lines["alias"][1].startswith("no version of wine-quality carries the alias champion -> register a model")
    assert lines["serving"][1].startswith("the endpoint serves no model yet (503")
    assert lines["artifacts"][1].endswith("identical")
    assert result.stdout.rstrip().endswith("2 of 8 checks failed")


def test_a_wrong_password_fails_the_auth_line(stack):
    result = _doctor(stack, stack.tracking_url, "not-the-password")
    assert result.returncode == 1, result
    lines = _lines(result.stdout)
    assert lines["auth"] == ("FAIL", "with the login the API answered 401: Login required: MLflow user and password "
                                     "(HTTP basic auth) -> check the user name and MLFLOW_TRACKING_PASSWORD (the "
                                     "stack's output mlflow_password_command prints it)")
    assert list(lines) == ["tls", "health", "auth"]  # nothing after a failed login


def test_a_proxy_without_the_origin_fix_fails_the_ui_write_line(stack, tracker, tmp_path):
    unfixed = tmp_path / "runtime"
    shutil.copytree(RUNTIME.root / "docker" / "nginx", unfixed / "docker" / "nginx")
    nginx = unfixed / "docker" / "nginx"
    fix = {"fronts-tracking.conf": ["proxy_set_header   Origin $${PROXY_ID}_fwd_origin;\n"],
           "mlflow-proxy.conf.template": [
               "    if ($${PROXY_ID}_refused) {\n"
               '        return 403 "Cross-origin request blocked: this server accepts writes only from its own pages\\n";\n'
               "    }\n"]}
    for name, parts in fix.items():
        text = (nginx / name).read_text()
        for part in parts:
            assert part in text, f"{name} changed: update what this test takes out"
            text = text.replace(part, "")
        (nginx / name).write_text(text)
    login = Credentials(stack.username, stack.password)
    proxy, url = start_proxy(tracker, tmp_path / "proxy", int(stack.direct_tracking_url.rsplit(":", 1)[1]), login,
                             runtime=RuntimeFiles(unfixed))
    try:
        result = _doctor(stack, url, None, "--ca-file", CA_FILE)  # this stand-in proxy's certificate is the lane CA's
    finally:
        tracker.stop(proxy)
    lines = _lines(result.stdout)
    assert result.returncode == 1
    assert lines["tls"][0] == "PASS" and "WARNING" not in result.stderr
    assert lines["ui-write"][0] == "FAIL", result.stdout
    assert "was refused (403 Cross-origin request blocked): the UI cannot save anything" in lines["ui-write"][1]
    assert lines["cross-origin"][0] == "PASS"  # MLflow itself still refuses foreign origins


@pytest.fixture(scope="module")
def champion(stack) -> dict:
    """A trained wine model whose version carries the alias champion, served by the endpoint (the tests
    that use it come after the ones that need no alias)."""
    trained = stack.train("--alpha", "0.4")
    client_env = stack.client_env()
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_INSECURE_TLS", raising=False)  # verified with local up's CA
        for name, value in client_env.items():
            patch.setenv(name, value)
        MlflowClient(tracking_uri=stack.tracking_url).set_registered_model_alias("wine-quality", "champion",
                                                                                 trained["version"])
    stack.wait_serving(f"models:/wine-quality/{trained['version']}")
    return trained


def test_with_the_alias_set_every_check_passes(stack, champion):
    trained = champion
    local = cli("local", "doctor", "--state-dir", str(stack.state_dir), "--artifact-mb", "50")
    assert local.returncode == 0, local.stdout + local.stderr
    assert [verdict for verdict, _ in _lines(local.stdout).values()] == ["PASS"] * 8
    verified = f"certificate verified with the CA in {stack.ca_file} (for 127.0.0.1, ::1, localhost; until"
    assert verified in _lines(local.stdout)["tls"][1] and "WARNING" not in local.stdout
    assert local.stdout.rstrip().endswith("all checks passed")
    remote = _doctor(stack, stack.tracking_url, None, "--serving-url", stack.serving_url, "--json")
    assert remote.returncode == 0, remote.stdout + remote.stderr
    document = json.loads(remote.stdout)
    assert document["passed"] and [c["name"] for c in document["checks"]] == CHECKS
    assert verified in document["checks"][0]["detail"]
    serving = next(c for c in document["checks"] if c["name"] == "serving")
    assert serving["detail"] == f"answers with models:/wine-quality/{trained['version']} (the alias's version)"


def test_a_server_on_another_version_than_the_stack_sets_fails_the_version_line(stack, champion):
    """After a console upgrade the tracking VM refused at boot, it runs the version that last served the
    database: everything else passes, the version line fails and says where to see why."""
    other = next(version for version in ("3.16.1", "3.17.2") if version != RUNNING)
    result = _doctor(stack, stack.tracking_url, None, "--serving-url", stack.serving_url, "--artifact-mb", "1",
                     "--mlflow-version", other)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = _lines(result.stdout)
    assert list(lines) == WITH_VERSION
    assert [name for name, (verdict, _) in lines.items() if verdict == "FAIL"] == ["version"], result.stdout
    detail, _, fix = lines["version"][1].partition(" -> ")
    assert detail == f"the server runs MLflow {RUNNING}, the stack sets {other}"
    assert fix.startswith("the tracking VM refused the upgrade at boot (its pre-checks found a problem in the database)")
    assert "`orm-pack upgrade --status --compartment <compartment OCID>` prints why and the SQL that fixes it" in fix
    assert result.stdout.rstrip().endswith(f"1 of {len(WITH_VERSION)} checks failed")


def test_doctor_verifies_the_dataplane_stack_with_its_ca(tracking_stack):
    """`orm-pack doctor --ca-file` against the dataplane stack's proxy, whose certificate is from the lane's CA
    for 127.0.0.1: its tls line passes naming the CA and the address, and it goes on through the login."""
    env = {k: v for k, v in python_env().items() if k not in ("MLFLOW_TRACKING_INSECURE_TLS",
                                                               "MLFLOW_TRACKING_SERVER_CERT_PATH")}
    env.update(MLFLOW_TRACKING_USERNAME=tracking_stack.login.username,
               MLFLOW_TRACKING_PASSWORD=tracking_stack.login.password)
    result = subprocess.run([sys.executable, "-m", "orm_pack.cli", "doctor", tracking_stack.url, "--ca-file", CA_FILE,
                             "--artifact-mb", "1"], env=env, capture_output=True, text=True, timeout=300,
                            stdin=subprocess.DEVNULL)
    lines = _lines(result.stdout)
    assert lines["tls"][0] == "PASS", result.stdout + result.stderr
    assert f"certificate verified with the CA in {CA_FILE} (for 127.0.0.1; until" in lines["tls"][1], lines["tls"]
    assert (lines["health"][0], lines["auth"][0]) == ("PASS", "PASS"), result.stdout
    assert "WARNING" not in result.stderr


# README's "Use it" and "Check it" blocks, run as written with the placeholders filled in.
def _readme_env(stack) -> dict:
    orm_pack_dir = Path(shutil.which("orm-pack", path=str(Path(sys.executable).parent))).parent
    return dict(python_env(), MLFLOW_TRACKING_PASSWORD=stack.password, MLFLOW_TRACKING_SERVER_CERT_PATH=str(stack.ca_file),
                PATH=f"{orm_pack_dir}{os.pathsep}{os.environ['PATH']}")


def test_the_readme_doctor_command_passes_on_a_working_deployment(stack, champion):
    script = fill(block_starting("export MLFLOW_TRACKING_PASSWORD"),
                  {"https://<tracking-ip>": stack.tracking_url, "https://<serving-ip>:1234": stack.serving_url})
    result = subprocess.run(["bash", "-e", "-c", script], env=_readme_env(stack), capture_output=True, text=True,
                            timeout=300, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = _lines(result.stdout)
    assert list(lines) == WITH_VERSION  # README's command passes the version, as the output doctor_command does
    assert [verdict for verdict, _ in lines.values()] == ["PASS"] * len(WITH_VERSION)
    assert lines["version"][1] == f"the server runs MLflow {RUNNING}, as the stack sets"


def test_the_readme_notebook_settings_reach_mlflow(stack, champion):
    settings = fill(block_starting("import os"),
                    {"https://<tracking-ip>": stack.tracking_url,
                     "<the password: output mlflow_password_command prints it>": stack.password,
                     "<the CA: orm-pack apply saves it as ~/.oci/<stack name>-ca.pem>": str(stack.ca_file)})
    probe = settings + textwrap.dedent("""
        import json
        from mlflow import MlflowClient
        client = MlflowClient()
        print(json.dumps(client.get_model_version_by_alias("wine-quality", "champion").version))
        """)
    env = {k: v for k, v in python_env().items() if not k.startswith("MLFLOW_")}
    result = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == str(champion["version"])


def test_the_readme_curl_gets_a_prediction(stack, champion):
    script = fill(block_starting('curl -s --cacert "$MLFLOW_TRACKING_SERVER_CERT_PATH" -u mlflow:'),
                  {"https://<serving-ip>:1234": stack.serving_url})
    result = subprocess.run(["bash", "-e", "-c", script], env=_readme_env(stack), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    predictions = json.loads(result.stdout)["predictions"]
    assert len(predictions) == 1 and 0 < float(predictions[0]) < 10  # a wine quality score


def test_connect_local_gives_a_client_what_it_needs_with_verification_on(stack, champion):
    """eval "$(orm-pack connect --local)" in bash, then an MLflow client call: the URL, local up's CA and the
    login from its state, the password read from its file and never printed."""
    connect = cli("connect", "--local", "--state-dir", str(stack.state_dir))
    assert connect.returncode == 0, connect.stderr
    assert stack.password not in connect.stdout and "INSECURE" not in connect.stdout
    assert f"export MLFLOW_TRACKING_SERVER_CERT_PATH={stack.ca_file}" in connect.stdout.splitlines()
    probe = ("from mlflow import MlflowClient; "
             "print(MlflowClient().get_model_version_by_alias('wine-quality', 'champion').version)")
    script = f'eval "$({sys.executable} -m orm_pack.cli connect --local --state-dir {stack.state_dir})"\n' \
             f'{sys.executable} -c "{probe}"\n'
    env = {k: v for k, v in python_env().items() if not k.startswith("MLFLOW_")}
    env.update(MLFLOW_HTTP_REQUEST_MAX_RETRIES="0")
    result = subprocess.run(["bash", "-e", "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == str(champion["version"])

    snippet = cli("connect", "--local", "--state-dir", str(stack.state_dir), "--python")
    assert snippet.returncode == 0 and stack.password not in snippet.stdout, snippet
    as_python = subprocess.run([sys.executable, "-c", snippet.stdout + probe.replace("; ", "\n")], env=env,
                               capture_output=True, text=True, timeout=300)
    assert as_python.returncode == 0, as_python.stderr[-3000:]
    assert as_python.stdout.strip().splitlines()[-1] == str(champion["version"])
