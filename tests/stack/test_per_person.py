"""mlflow_users = "per-person": the VMs' settings turn on MLflow's own users (tracking), the proxy that
passes logins on (tracking) and the one that asks the tracking server (serving); the session key is a
Vault secret the tracking VM may read and the serving VM may not; the serving VM and the notebook session
log in as MLflow users of their own, each with a secret only it (and the tracking VM) may read, never the
admin's; "shared" keeps the one login."""
import json

import pytest

from harness import static

from .conftest import assert_only_own_logins, instance_user_data

pytestmark = pytest.mark.terraform

ROLES = {'oci_core_instance.vm["tracking"]': "tracking", 'oci_core_instance.vm["serving"]': "serving"}


def settings_files(deployed, profile) -> dict[str, dict[str, dict[str, str]]]:
    """role -> {file name: {NAME: value}} of the env files the VM's cloud-init writes to /etc/mlflow."""
    out = {}
    for address, encoded in instance_user_data(deployed(profile).replan).items():
        files = static.written_files(static.decode_user_data(encoded))
        out[ROLES[address]] = {path.rsplit("/", 1)[1]: dict(line.split("=", 1) for line in text.splitlines() if line)
                               for path, text in files.items() if path.startswith("/etc/mlflow/") and
                               path.endswith(".env")}
    return out


def test_per_person_turns_on_mlflows_users_on_both_vms(deployed):
    d = deployed("per-person")
    secrets = d.outputs["vault_secrets"]
    files = settings_files(deployed, "per-person")
    tracking = files["tracking"]["tracking.env"]
    assert tracking["MLFLOW_AUTH"] == "mlflow"
    assert tracking["MLFLOW_AUTH_ADMIN_USERNAME"] == "mlflow"
    assert tracking["MLFLOW_AUTH_ADMIN_PASSWORD_SECRET_OCID"] == secrets["mlflow-login"]
    assert tracking["MLFLOW_FLASK_SERVER_SECRET_KEY_SECRET_OCID"] == secrets["mlflow-session-key"]
    assert tracking["MLFLOW_AUTH_DEFAULT_PERMISSION"] == "EDIT"
    assert tracking["MLFLOW_SERVED_MODEL_NAME"] == "wine-quality"  # reserved before anyone claims it
    assert files["tracking"]["proxy.env"]["PROXY_AUTH"] == "upstream"
    serving_proxy = files["serving"]["proxy.env"]
    assert serving_proxy["PROXY_AUTH"] == "tracking"
    assert serving_proxy["PROXY_AUTH_URL"] == "https://10.0.1.10"  # the tracking VM's private address


def test_only_the_tracking_vm_may_read_the_session_key(deployed):
    d = deployed("per-person")
    key = d.outputs["vault_secrets"]["mlflow-session-key"]
    statements = d.outputs["iam_statements"]
    groups = {r["index"]: r["values"]["id"] for r in d.replan["prior_state"]["values"]["root_module"]["resources"]
              if r["address"].startswith("oci_identity_dynamic_group.vm[")}
    readers = [s for s in statements if key in s]
    assert len(readers) == 1 and "read secret-bundles" in readers[0], readers
    assert groups["tracking"] in readers[0] and groups["serving"] not in readers[0]


def test_oke_pods_get_the_same_users_settings(deployed):
    d = deployed("oke")
    env = json.loads(d.outputs["oke_deploy_settings"]["tracking_env"])
    assert "MLFLOW_AUTH" not in env  # shared login on the oke profile; per-person adds the same keys


def test_shared_keeps_the_one_login(deployed):
    files = settings_files(deployed, "default")
    assert "MLFLOW_AUTH" not in files["tracking"]["tracking.env"]
    assert "MLFLOW_SERVED_MODEL_NAME" not in files["tracking"]["tracking.env"]
    assert files["tracking"]["proxy.env"]["PROXY_AUTH"] == "proxy"
    assert files["serving"]["proxy.env"]["PROXY_AUTH"] == "proxy"
    assert "mlflow-session-key" not in deployed("default").outputs["vault_secrets"]
    # one shared login: the serving VM uses it, and the proxies guard everything
    secrets = deployed("default").outputs["vault_secrets"]
    assert not {"serving-login", "notebook-login"} & set(secrets)
    assert files["serving"]["serving.env"]["MLFLOW_TRACKING_PASSWORD_SECRET_OCID"] == secrets["mlflow-login"]
    assert "MLFLOW_SERVING_USERNAME" not in files["tracking"]["tracking.env"]



@pytest.mark.parametrize("profile", ["per-person", "sso"])
def test_the_endpoint_reads_only_its_own_login(deployed, profile):
    """The serving VM's IAM statements and settings name its own secret alone (the notebook session's are
    read from a single sign-on deployment with one, tests/stack/test_cloud_rules.py)."""
    d = deployed(profile)
    assert assert_only_own_logins(d.replan["prior_state"]["values"]["root_module"]["resources"], d.outputs) == {"serving"}
