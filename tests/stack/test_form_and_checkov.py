"""schema.yaml and variables.tf agree both ways; the form's patterns and Terraform's validations agree
on what a good and a bad value is; checkov finds nothing outside the reasoned skip list."""
import json
import re
from pathlib import Path

import pytest
import yaml

from harness.checkov import assert_clean, load_skip_list, run_checkov
from orm_pack.formcheck import check_form, load_form
from orm_pack.tfvariables import read_module

from .conftest import PROFILES, REPO

SKIPS = Path(__file__).parent / "checkov-skips.yaml"


def test_form_and_terraform_declare_the_same_variables_and_outputs():
    module = read_module(REPO / "stack")
    assert check_form(load_form(REPO / "schema.yaml"), module.variables, module.outputs) == []


def test_every_variable_is_documented_and_typed():
    for name, variable in read_module(REPO / "stack").variables.items():
        assert len(variable.description) > 20, name
        assert variable.type != "any", name


def test_form_shows_what_a_newcomer_needs():
    form = yaml.safe_load((REPO / "schema.yaml").read_text())
    variables = form["variables"]
    assert form["primaryOutputButton"] == "mlflow_url" and form["outputs"]["mlflow_url"]["type"] == "link"
    assert variables["compartment_ocid"]["type"] == "oci:identity:compartment:id"
    assert variables["existing_vcn_id"]["type"] == "oci:core:vcn:id"
    assert variables["existing_public_subnet_id"]["type"] == "oci:core:subnet:id"
    assert variables["ssh_public_key"]["type"] == "oci:core:ssh:publickey"
    assert variables["bucket_kms_key_id"]["type"] == "oci:kms:key:id"
    assert "MySQL.Free" in variables["mysql_shape"]["enum"]
    assert variables["existing_vcn_id"]["visible"] == "use_existing_vcn"
    assert variables["s3_access_key"]["visible"] == {"eq": ["s3_credentials_source", "supply"]}
    assert "2" in variables["s3_credentials_source"]["description"]  # the 2-keys-per-user limit
    for name in ("mysql_admin_password", "mlflow_password", "s3_secret_key"):
        assert variables[name]["type"] == "password", name
    hidden = next(g for g in form["variableGroups"] if g.get("visible") is False)
    assert {"tenancy_ocid", "region", "current_user_ocid"} <= set(hidden["variables"])


PASSWORDS = {"Sup3r-Secret-pw": True, "Ab1-": False, "Passwordonly": False, "secret-pw-1": False,
             "Sup3r'Secret": False, "A" * 30 + "a1-": False, "Aa1!aaaa": True}


@pytest.mark.parametrize("password,good", sorted(PASSWORDS.items()))
def test_form_pattern_for_the_mysql_password_matches_terraform(password, good):
    pattern = yaml.safe_load((REPO / "schema.yaml").read_text())["variables"]["mysql_admin_password"]["pattern"]
    assert bool(re.fullmatch(pattern, password)) is good


@pytest.mark.parametrize("name,good", [("mlflowadmin", True), ("root", False), ("administrator", False),
                                       ("1admin", False), ("ociadmin", False), ("admin_2", True)])
def test_form_pattern_for_the_mysql_user_matches_terraform(name, good):
    pattern = yaml.safe_load((REPO / "schema.yaml").read_text())["variables"]["mysql_admin_username"]["pattern"]
    assert bool(re.fullmatch(pattern, name)) is good


def test_skip_list_entries_have_reasons():
    skips = load_skip_list(SKIPS)
    assert set(skips) == {"CKV_OCI_4", "CKV_OCI_9", "CKV_OCI_17", "CKV_OCI_21", "CKV_OCI_22", "CKV2_OCI_2"}
    assert skips["CKV_OCI_22"].resources and skips["CKV2_OCI_2"].resources  # ICMP rules only


@pytest.mark.terraform
def test_checkov_on_the_terraform_code():
    report = run_checkov(REPO / "stack", "terraform")
    assert_clean(report, load_skip_list(SKIPS))
    assert report.resource_count >= 10


@pytest.mark.terraform
@pytest.mark.parametrize("profile", PROFILES)
def test_checkov_on_the_plan_of_every_profile(deployed, profile, tmp_path):
    plan = tmp_path / f"{profile}.plan.json"
    plan.write_text(json.dumps(deployed(profile).replan))
    report = run_checkov(plan, "terraform_plan")
    assert_clean(report, load_skip_list(SKIPS))
    assert report.resource_count >= 10
