"""mlflow_users = "sso": the stack registers a confidential application in the identity domain, with the
tracking VM's address as its redirect, grants it to the two groups, keeps its credentials in Vault and
tells the tracking VM their names; the VM turns on MLflow's users with single sign-on.

Cloud rules the provider double enforces here (identity domains REST API and the oracle/oci provider):
a group is found by its display name through a SCIM filter (`displayName eq "…"`), a grant names the
group's id, identity writes go through the home region, and an application's `name` is its OAuth client id.
"""
import json
import os
import re
import subprocess
import sys

import pytest
from ocifakes.server import InstanceCloud

from harness.terraform import Terraform

from .conftest import BASE_TFVARS, REPO, instance_user_data, repo_layout, tfvars_of
from .test_per_person import settings_files

pytestmark = pytest.mark.terraform

DOMAIN = "https://idcs-0123456789abcdef0123456789abcdef.identity.oraclecloud.com"


def applied(d, address: str) -> dict:
    for resource in d.replan["prior_state"]["values"]["root_module"]["resources"]:
        if resource["address"] == address:
            return resource["values"]
    raise AssertionError(f"{address} is not in the state")


def test_the_application_redirects_to_the_tracking_vm_and_only_the_two_groups_may_use_it(deployed):
    d = deployed("sso")
    app = applied(d, "oci_identity_domains_app.sso[0]")
    ip = d.outputs["tracking_public_ip"]
    assert app["redirect_uris"] == [f"https://{ip}/oidc/callback"]
    # MLflow's logout sends the person to the domain's logout page with no post-logout address, so the
    # application registers none (a bare IP address there is nothing the domain documents to accept)
    assert not app["post_logout_redirect_uris"]
    assert app["idcs_endpoint"] == DOMAIN  # the form's ":443" is dropped
    assert (app["client_type"], app["allowed_grants"], app["allow_access_control"]) == (
        "confidential", ["authorization_code", "refresh_token"], True)  # refresh: groups asked again
    grants = {role: applied(d, f'oci_identity_domains_grant.sso["{role}"]') for role in ("admin", "user")}
    assert {role: g["grantee"][0]["value"] for role, g in grants.items()} == {
        "admin": "5f0c1e2d3c4b5a69788796a5b4c3d2e1", "user": "6a1d2f3e4d5c6b7a8998a7b6c5d4e3f2"}  # fixture groups
    assert {g["app"][0]["value"] for g in grants.values()} == {app["id"]}
    assert d.outputs["sso_application"]["client_id"] == app["name"]
    assert d.outputs["sso_application"]["redirect_uri"] == f"https://{ip}/oidc/callback"
    claim = d.outputs["sso_application"]["groups_claim"]
    assert claim.startswith(f"POST {DOMAIN}/admin/v1/CustomClaims ")
    assert json.loads(claim.split(" body ", 1)[1])["value"] == "$user.groups.*.display"
    assert d.outputs["sso_application"]["groups_claim_command"] == f"orm-pack sso groups-claim --domain-url {DOMAIN}"


def test_the_tracking_vm_reads_the_credentials_by_name_and_signs_people_in(deployed):
    d = deployed("sso")
    files = settings_files(deployed, "sso")
    tracking = files["tracking"]["tracking.env"]
    names = {applied(d, f'oci_vault_secret.sso["{key}"]')["secret_name"] for key in ("client_id", "client_secret")}
    assert tracking["MLFLOW_AUTH"] == "oidc"
    assert tracking["MLFLOW_OIDC_ISSUER"] == DOMAIN
    assert (tracking["MLFLOW_OIDC_ADMIN_GROUP"], tracking["MLFLOW_OIDC_USER_GROUP"]) == ("mlflow-admins", "data-scientists")
    assert tracking["MLFLOW_VAULT_OCID"] == d.outputs["vault_id"]
    assert {tracking["MLFLOW_OIDC_CLIENT_ID_SECRET_NAME"], tracking["MLFLOW_OIDC_CLIENT_SECRET_SECRET_NAME"]} == names
    assert tracking["MLFLOW_FLASK_SERVER_SECRET_KEY_SECRET_OCID"] == d.outputs["vault_secrets"]["mlflow-session-key"]
    assert files["tracking"]["proxy.env"]["PROXY_AUTH"] == "upstream"
    assert files["serving"]["proxy.env"]["PROXY_AUTH"] == "tracking"
    # a 30-character passphrase, the length the provider's own tests generate, and at least what the
    # sign-in sessions ask for (oidc.py hashes it into their signing key and checks it at start)
    context = applied(d, 'oci_vault_secret.mlflow["mlflow-session-key"]')["secret_generation_context"][0]
    oidc_rules = (REPO / "docker" / "lib" / "mlflow_oci" / "oidc.py").read_text()
    assert context["passphrase_length"] == 30 >= int(re.search(r"MIN_SECRET_KEY_CHARACTERS = (\d+)", oidc_rules)[1])


def test_the_client_secret_reaches_vault_only(deployed):
    d = deployed("sso")
    client_secret = applied(d, "oci_identity_domains_app.sso[0]")["client_secret"]
    assert client_secret
    for address, encoded in instance_user_data(d.replan).items():
        assert client_secret not in encoded and "client_secret" not in encoded.lower(), address
    assert client_secret not in json.dumps(d.outputs)
    stored = applied(d, 'oci_vault_secret.sso["client_secret"]')["secret_content"][0]
    assert stored["content_type"] == "BASE64"
    (change,) = [c for c in d.replan["resource_changes"] if c["address"] == 'oci_vault_secret.sso["client_secret"]']
    assert change["change"]["after_sensitive"]["secret_content"][0]["content"] is True  # hidden in plans


def test_only_the_tracking_vm_may_read_the_credentials_and_only_those_two(deployed):
    """The two secrets exist only after the VM, so they are granted by name: the stack's prefixed names
    (target.secret.name), not a vault condition nothing documents for a read by name."""
    d = deployed("sso")
    groups = {r["index"]: r["values"]["id"] for r in d.replan["prior_state"]["values"]["root_module"]["resources"]
              if r["address"].startswith("oci_identity_dynamic_group.vm[")}
    names = sorted(applied(d, f'oci_vault_secret.sso["{key}"]')["secret_name"] for key in ("client_id", "client_secret"))
    (reader,) = [s for s in d.outputs["iam_statements"] if "target.secret.name = 'mlflow-oidc" in s]
    assert reader == (f"Allow dynamic-group id {groups['tracking']} to read secret-bundles in compartment id "
                      f"{BASE_TFVARS['compartment_ocid']} where any {{target.secret.name = '{names[0]}', "
                      f"target.secret.name = '{names[1]}'}}")
    assert all(name.startswith("mlflow-") for name in names)


def test_on_oke_the_application_redirects_to_the_load_balancers_reserved_address(tmp_path, deployed):
    """deployment_target = oke: the address is the load balancer's reserved IP, known at plan time; the pods
    get the tracking VM's single sign-on settings and the worker nodes read the two secrets by name."""
    sso = {k: v for k, v in tfvars_of(deployed("sso").inventory).items() if k.startswith(("sso_", "mlflow_users"))}
    tf = Terraform(repo_layout(tmp_path / "stack"))
    tf.init()
    tf.apply({**BASE_TFVARS, **sso, "deployment_target": "oke"})
    out = tf.output()
    ip = out["oke_deploy_settings"]["lb_ip"]
    assert out["sso_application"]["redirect_uri"] == f"https://{ip}/oidc/callback" == f"{out['mlflow_url']}/oidc/callback"
    pods = json.loads(out["oke_deploy_settings"]["tracking_env"])
    vm = settings_files(deployed, "sso")["tracking"]["tracking.env"]
    sso_settings = ("MLFLOW_AUTH", "MLFLOW_OIDC_ISSUER", "MLFLOW_OIDC_ADMIN_GROUP", "MLFLOW_OIDC_USER_GROUP")
    assert {k: pods[k] for k in sso_settings} == {k: vm[k] for k in sso_settings}
    assert pods["MLFLOW_VAULT_OCID"] == out["vault_id"]
    by_name = [s for s in out["iam_statements"] if "target.secret.name" in s]
    (workers,) = {s.split(" to read ")[0] for s in out["iam_statements"] if "target.secret.id" in s}  # the one group
    assert len(by_name) == 1 and {s.split(" to read ")[0] for s in by_name} == {workers}
    # the worker nodes', matched by the stack's tag (beside the MySQL DB system's group, for its certificate)
    (rule,) = [rule for name, rule in out["iam_dynamic_groups"].items() if "-mysql-" not in name]
    assert "tag." in rule


def test_other_profiles_register_nothing(deployed):
    d = deployed("per-person")
    assert tfvars_of(d.inventory)["mlflow_users"] == "per-person"
    assert not [c for c in d.replan["resource_changes"] if c["type"].startswith("oci_identity_domains_")]
    assert d.outputs.get("sso_application") is None
    assert "MLFLOW_OIDC_ISSUER" not in settings_files(deployed, "per-person")["tracking"]["tracking.env"]


def test_the_runtime_finds_the_credentials_where_the_stack_puts_them(deployed):
    """The tracking VM's settings, resolved by the image's secret reader against the Vault fake: refused
    with the retry line until the stack has created the two secrets, then their values."""
    d = deployed("sso")
    tracking = settings_files(deployed, "sso")["tracking"]["tracking.env"]
    by_name = {k: v for k, v in tracking.items() if k.endswith("_SECRET_NAME") or k == "MLFLOW_VAULT_OCID"}
    assert len(by_name) == 3, by_name
    # a vault's OCID as OCI mints it: ocid1.vault.oc1.<region>.<future use>.<unique>
    assert len(by_name["MLFLOW_VAULT_OCID"].split(".")) == 6, by_name["MLFLOW_VAULT_OCID"]
    cloud = InstanceCloud().start()
    try:
        env = {k: v for k, v in os.environ.items() if not k.endswith(("_SECRET_OCID", "_SECRET_NAME"))}
        env.update(cloud.runtime_env(), PYTHONPATH=str(REPO / "docker" / "lib"), **by_name)
        command = [sys.executable, "-m", "mlflow_oci.secrets", "exec", "--", sys.executable, "-c",
                   "import os; print(os.environ['MLFLOW_OIDC_CLIENT_ID'], len(os.environ['MLFLOW_OIDC_CLIENT_SECRET']))"]
        early = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        assert early.returncode == 3 and "it is created after this machine by the stack" in early.stderr
        for key in ("client_id", "client_secret"):
            secret = applied(d, f'oci_vault_secret.sso["{key}"]')
            value = applied(d, "oci_identity_domains_app.sso[0]")["name" if key == "client_id" else "client_secret"]
            cloud.grant(secrets=[cloud.add_secret(secret["secret_name"], value, vault=secret["vault_id"])])
        later = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        assert later.returncode == 0, later.stderr
        client_id = applied(d, "oci_identity_domains_app.sso[0]")["name"]
        secret_length = len(applied(d, "oci_identity_domains_app.sso[0]")["client_secret"])
        assert later.stdout.split() == [client_id, str(secret_length)]
    finally:
        cloud.stop()
