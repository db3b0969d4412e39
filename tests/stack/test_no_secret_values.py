"""No password or key value leaves Vault and the sensitive parts of the plan, in every profile.

The values searched for are the ones a user types (tfvars: the MySQL admin password, the MLflow login,
a supplied S3 secret key) and the ones the stack makes (a created customer secret key, with
mlflow_users = "sso" the identity domain application's client secret), each also as
base64 (how a Vault secret's content travels). They must not appear in any instance's user_data
(decoded), any output, commands.txt, or any value of the plan JSON that Terraform does not mark
sensitive. Two exceptions, named: the provider keeps a created customer secret key's `key` attribute
unmarked in its own resource (artifact_store = "s3" with s3_credentials_source = "create" only), and an
identity domain application's `client_secret` in its own (sso only; the stack marks its Vault copy).
The VMs get secret OCIDs and read the values through their instance principal (iam.tf); so do the pods on
OKE (deployment_target = "oke"), whose settings travel in the output oke_deploy_settings."""
import base64
import json
import re

import pytest

from harness import static

from .conftest import PROFILES, instance_user_data, tfvars_of

pytestmark = pytest.mark.terraform

TYPED = ("mysql_admin_password", "mlflow_password", "s3_secret_key")
# The provider's own unmarked copies of what it creates (see the module docstring).
PROVIDER_UNMARKED = re.compile(r"^(oci_identity_customer_secret_key\.mlflow\[0\]\.key|oci_identity_domains_app\.sso\[0\]\.client_secret)$")


def secret_values(d) -> dict:
    """label -> value, typed or generated, with the base64 form of each."""
    tfvars = tfvars_of(d.inventory)
    values = {name: tfvars[name] for name in TYPED if tfvars.get(name)}
    for change in d.replan["resource_changes"]:
        if change["type"] == "oci_identity_customer_secret_key":
            values["created customer secret key"] = change["change"]["after"]["key"]
        if change["type"] == "oci_identity_domains_app":
            values["identity domain client secret"] = change["change"]["after"]["client_secret"]
    values.update({f"{label} (base64)": base64.b64encode(v.encode()).decode() for label, v in list(values.items())})
    return values


def unmarked_strings(value, sensitive, path):
    """(path, string) for every string Terraform would show, i.e. not under a sensitive marker."""
    if sensitive is True:
        return
    if isinstance(value, dict):
        for key, inner in value.items():
            marker = sensitive.get(key) if isinstance(sensitive, dict) else None
            yield from unmarked_strings(inner, marker, f"{path}.{key}")
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            marker = sensitive[i] if isinstance(sensitive, list) and i < len(sensitive) else None
            yield from unmarked_strings(inner, marker, f"{path}[{i}]")
    elif isinstance(value, str):
        yield path, value


def plan_strings(plan: dict):
    for change in plan["resource_changes"]:
        for moment in ("before", "after"):
            yield from unmarked_strings(change["change"].get(moment), change["change"].get(f"{moment}_sensitive"),
                                        change["address"])
    for name, output in plan.get("output_changes", {}).items():
        if not output.get("after_sensitive"):
            yield from unmarked_strings(output.get("after"), None, f"output.{name}")


@pytest.mark.parametrize("profile", PROFILES)
def test_no_secret_value_in_the_plans_unmarked_values(deployed, profile):
    d = deployed(profile)
    secrets = secret_values(d)
    assert any("mysql" in label for label in secrets), "the profile must give at least the admin password"
    leaks = sorted({(path, label) for plan in (d.first_plan.raw, d.replan) for path, text in plan_strings(plan)
                    for label, secret in secrets.items() if secret in text and not PROVIDER_UNMARKED.match(path)})
    assert leaks == []


@pytest.mark.parametrize("profile", PROFILES)
def test_user_data_commands_and_outputs_carry_secret_ocids_only(deployed, profile):
    d = deployed(profile)
    secrets = secret_values(d)
    texts = {f"user_data of {address}": static.decode_user_data(encoded)
             for address, encoded in instance_user_data(d.replan).items()}
    texts.update({f"output {name}": str(value) for name, value in d.outputs.items()})
    for where, text in texts.items():
        for label, secret in secrets.items():
            assert secret not in text, f"{where} holds the {label}"
    # what the VMs get instead: the OCIDs of this stack's Vault secrets
    secret_ids = {r["change"]["after"]["secret_name"].split("-", 1)[1]: r["change"]["after"]["id"]
                  for r in d.replan["resource_changes"] if r["type"] == "oci_vault_secret"}
    assert d.outputs["vault_secrets"] == secret_ids
    assert f"--secret-id {secret_ids['mlflow-login']} " in d.outputs["mlflow_password_command"]
    if tfvars_of(d.inventory).get("deployment_target") == "oke":
        settings = d.outputs["oke_deploy_settings"]
        tracking = "".join(f"{k}={v}\n" for k, v in json.loads(settings["tracking_env"]).items())
        migrate = json.loads(settings["migrate_env"])
        for value in [*json.loads(settings["tracking_env"]).values(), *migrate.values()]:  # decoded from JSON
            assert not any(secret in value for secret in secrets.values()), value
        assert migrate["MYSQL_ADMIN_PASSWORD_SECRET_OCID"] == secret_ids["mysql-admin"]
        assert settings["login_password_secret_ocid"] == secret_ids["mlflow-login"]
        assert f"MLFLOW_DB_PASSWORD_SECRET_OCID={secret_ids['mlflow-db']}\n" in tracking
        assert not any(name.startswith("MYSQL_ADMIN") for name in json.loads(settings["tracking_env"]))
        assert ("AWS_SECRET_ACCESS_KEY_SECRET_OCID=" in tracking) == ("s3-secret-key" in secret_ids)
        assert not re.search(r"^(MLFLOW_DB_PASSWORD|MYSQL_ADMIN_PASSWORD|AWS_SECRET_ACCESS_KEY|MLFLOW_TRACKING_PASSWORD)=",
                             tracking, re.M)
        assert instance_user_data(d.replan) == {}  # no VM at all
        return
    tracking = texts['user_data of oci_core_instance.vm["tracking"]']
    assert f"MLFLOW_DB_PASSWORD_SECRET_OCID={secret_ids['mlflow-db']}\n" in tracking
    assert f"MYSQL_ADMIN_PASSWORD_SECRET_OCID={secret_ids['mysql-admin']}\n" in tracking
    assert f"MLFLOW_UI_PASSWORD_SECRET_OCID={secret_ids['mlflow-login']}\n" in tracking
    assert ("AWS_SECRET_ACCESS_KEY_SECRET_OCID=" in tracking) == ("s3-secret-key" in secret_ids)
    assert not re.search(r"^(MLFLOW_DB_PASSWORD|MYSQL_ADMIN_PASSWORD|AWS_SECRET_ACCESS_KEY|MLFLOW_TRACKING_PASSWORD)=",
                         tracking, re.M)


def test_a_left_empty_login_is_generated_by_vault_and_never_held_by_terraform(deployed):
    d = deployed("always-free")
    (login,) = [r["change"]["after"] for r in d.replan["resource_changes"]
                if r["type"] == "oci_vault_secret" and r["name"] == "mlflow" and r["index"] == "mlflow-login"]
    assert login["enable_auto_generation"] is True and login["secret_content"] == []
    assert tfvars_of(d.inventory)["mlflow_password"] == ""
