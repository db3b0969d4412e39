"""schema.yaml and variables.tf agree both ways; the form's patterns and Terraform's validations agree
on what a good and a bad value is; checkov finds nothing outside the reasoned skip list."""
import json
import re
from pathlib import Path

import pytest
import yaml

from harness.checkov import assert_clean, load_skip_list, run_checkov, run_checkov_each
from harness.project import stack_variables_text
from harness.terraform import Terraform
from orm_pack.stack.declarations import read_module
from orm_pack.stack.formcheck import check_form, load_form

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
    assert variables["s3_access_key"]["visible"] == {"and": [{"eq": ["artifact_store", "s3"]},
                                                             {"eq": ["s3_credentials_source", "supply"]}]}
    assert variables["artifact_store"]["default"] == "oci"  # no key unless the user asks for one
    assert variables["vault_ocid"]["type"] == "oci:kms:vault:id"
    assert variables["vault_key_ocid"]["dependsOn"]["vaultId"] == "vault_ocid"
    assert variables["create_iam_policies"]["default"] is True
    assert "2" in variables["s3_credentials_source"]["description"]  # the 2-keys-per-user limit
    for name in ("mysql_admin_password", "mlflow_password", "s3_secret_key"):
        assert variables[name]["type"] == "password", name
    hidden = next(g for g in form["variableGroups"] if g.get("visible") is False)
    assert {"tenancy_ocid", "region", "current_user_ocid"} <= set(hidden["variables"])


PASSWORDS = ["Sup3r-Secret-pw", "Ab1-", "Passwordonly", "secret-pw-1", "Sup3r'Secret", "A" * 30 + "a1-", "Aa1!aaaa",
             "Aa1 aaaa-", 'Aa1"aaaa']
# The login: empty lets Vault generate it; otherwise 12-64 printable characters, no spaces or quotes.
LOGINS = ["", "correct-horse-battery", "short-pw", "y" * 64, "z" * 65, "with a space-in", "quote'inside-it", "ab$%&/()=?*+#-_"]
ADMIN_NAMES = ["mlflowadmin", "root", "administrator", "1admin", "ociadmin", "admin_2", "MySQL", "OciRpl", "rooty", "a" * 33]


def _variable_block(name: str) -> str:
    """The `variable "<name>" { ... }` block of the stack's variables*.tf, braces matched."""
    text = stack_variables_text()
    start = text.index(f'variable "{name}" {{')
    depth = 0
    for end in range(text.index("{", start), len(text)):
        depth += {"{": 1, "}": -1}.get(text[end], 0)
        if depth == 0:
            return text[start:end + 1]
    raise AssertionError(f"unbalanced braces in variable {name}")


def _terraform_accepts(tmp_path, variable: str, values: list[str]) -> dict[str, bool]:
    """Terraform's own verdict on each value: one plan of a module that calls the variable's block once per
    value; a value is refused when its call's validation fails."""
    (tmp_path / "check").mkdir()
    (tmp_path / "check" / "variables.tf").write_text(_variable_block(variable))
    calls = "".join(f'module "case_{i}" {{\n  source = "./check"\n  {variable} = {json.dumps(value)}\n}}\n'
                    for i, value in enumerate(values))
    (tmp_path / "main.tf").write_text(calls)
    tf = Terraform(tmp_path)
    tf.init()
    result = tf.plan_exit_code()
    refused = set(re.findall(r'in module "case_(\d+)"', result.stderr))
    assert result.returncode == (1 if refused else 0), result.stderr
    assert refused or "No changes" in result.stdout or result.returncode == 0
    return {value: str(i) not in refused for i, value in enumerate(values)}


def _form_accepts(variable: str, values: list[str]) -> dict[str, bool]:
    pattern = yaml.safe_load((REPO / "schema.yaml").read_text())["variables"][variable]["pattern"]
    return {value: bool(re.fullmatch(pattern, value)) for value in values}


@pytest.mark.terraform
@pytest.mark.parametrize("variable,values", [("mysql_admin_password", PASSWORDS), ("mysql_admin_username", ADMIN_NAMES),
                                             ("mlflow_password", LOGINS)],
                         ids=["mysql_admin_password", "mysql_admin_username", "mlflow_password"])
def test_the_form_pattern_and_terraform_validation_agree(tmp_path, variable, values):
    terraform = _terraform_accepts(tmp_path, variable, values)
    assert _form_accepts(variable, values) == terraform
    assert set(terraform.values()) == {True, False}, "the sample needs values on both sides"


@pytest.mark.terraform
def test_the_mlflow_versions_agree_everywhere(tmp_path):
    """The form offers the versions Terraform accepts, which are the stack's list (locals.tf, this release's
    own first and the default) and the tracking image's locks; the form says what a change does."""
    form = yaml.safe_load((REPO / "schema.yaml").read_text())["variables"]["mlflow_version"]
    assert form["type"] == "enum" and form["default"] == form["enum"][0] == "3.17.2"
    bad = ["3.18.0", "3.16", "3.16.1 ", "v3.16.1", "latest", ""]
    assert _terraform_accepts(tmp_path, "mlflow_version", form["enum"] + bad) == \
        {**{version: True for version in form["enum"]}, **{version: False for version in bad}}
    (listed,) = re.findall(r"^\s*mlflow_versions\s*=\s*\[(.*)\]$", (REPO / "stack" / "locals.tf").read_text(), re.M)
    assert json.loads(f"[{listed}]") == form["enum"]
    locks = {re.search(r"^mlflow==(\S+) ", lock.read_text(), re.M)[1]
             for lock in (REPO / "docker").glob("requirements-tracking*.lock")}
    assert locks == set(form["enum"])
    text = " ".join([form["title"], form["description"]])
    for words in ("go back", "replaces the tracking VM", "migrates it at boot", "orm-pack upgrade"):
        assert words in text, words


def test_skip_list_entries_have_reasons():
    skips = load_skip_list(SKIPS)
    assert set(skips) == {"CKV_OCI_4", "CKV_OCI_9", "CKV_OCI_17", "CKV_OCI_21", "CKV_OCI_22", "CKV2_OCI_2", "CKV2_OCI_6"}
    assert skips["CKV_OCI_22"].resources and skips["CKV2_OCI_2"].resources  # ICMP rules only
    assert skips["CKV2_OCI_6"].resources  # the OKE cluster only


@pytest.mark.terraform
def test_checkov_on_the_terraform_code():
    report = run_checkov(REPO / "stack", "terraform")
    assert_clean(report, load_skip_list(SKIPS))
    assert report.resource_count >= 10


@pytest.fixture(scope="module")
def profile_plan_reports(deployed, tmp_path_factory) -> dict:
    """checkov on every profile's plan, in one run."""
    plans = tmp_path_factory.mktemp("plans")
    files = {}
    for profile in PROFILES:
        files[profile] = plans / f"{profile}.plan.json"
        files[profile].write_text(json.dumps(deployed(profile).replan))
    reports = run_checkov_each(list(files.values()), "terraform_plan")
    return {profile: reports[path] for profile, path in files.items()}


@pytest.mark.terraform
@pytest.mark.parametrize("profile", PROFILES)
def test_checkov_on_the_plan_of_every_profile(profile_plan_reports, profile):
    report = profile_plan_reports[profile]
    assert_clean(report, load_skip_list(SKIPS))
    assert report.resource_count >= 10
