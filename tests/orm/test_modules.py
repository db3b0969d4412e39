"""The plain modules behind the CLI: form rules, Terraform variables, stack variables, OCI config,
the fake's signature check, and log streaming without duplicates (paged)."""
import hashlib
import json
from email.utils import formatdate

import jsonschema
import pytest
import requests
import yaml

from orm_pack.cloud import ociconfig, resource_manager
from orm_pack.deploy.plan_review import PlanSummary
from orm_pack.errors import ExitCode, UserError
from orm_pack.stack import archive, declarations, formcheck, inputs
from ormfake import write_oci_config
from ormfake.testing import COMPARTMENT, FIXTURE_SOURCE, REPO_ROOT

TENANCY_A = "ocid1.tenancy.oc1..aaaaaaaalg7naomncco3nxuvvpsxnmqcnsgg3a6k4agil34e4pnjkq274krq"

VARS = declarations.read_variables(FIXTURE_SOURCE / "stack")


# ------------------------------------------------------------------ stack declarations
def test_terraform_variables_are_read_with_types_defaults_and_sensitivity():
    assert VARS["allowed_ingress_cidrs"].type == "list(string)"
    assert VARS["allowed_ingress_cidrs"].default == ["0.0.0.0/0"]
    assert VARS["enable_serving"].kind == "bool" and VARS["enable_serving"].default is True
    assert VARS["tenancy_ocid"].required and not VARS["name_prefix"].required
    assert VARS["mlflow_password"].sensitive and not VARS["name_prefix"].sensitive
    assert VARS["extra_tags"].kind == "map" and VARS["extra_tags"].default == {}
    assert set(declarations.read_outputs(FIXTURE_SOURCE / "stack")) == {
        "mlflow_url", "tracking_public_ip", "serving_public_ip", "commands_tracking", "commands_serving"}


def test_descriptions_read_as_written_between_the_quotes(tmp_path):
    (tmp_path / "variables.tf").write_text(
        'variable "store" {\n  description = "\\"oci\\" or \\"s3\\"; a \\\\ stays one"\n  type = string\n}\n'
        'output "where" {\n  description = "the \\"oci\\" URI"\n  value = 1\n}\n')
    module = declarations.read_module(tmp_path)
    assert module.variables["store"].description == '"oci" or "s3"; a \\ stays one'
    assert module.outputs["where"].description == 'the "oci" URI'


def test_broken_hcl_and_duplicates_are_user_errors(tmp_path):
    (tmp_path / "a.tf").write_text('variable "x" {\n  default = \n')
    with pytest.raises(UserError, match="a.tf is not valid HCL"):
        declarations.read_variables(tmp_path)
    (tmp_path / "a.tf").write_text('variable "x" {}\n')
    (tmp_path / "b.tf").write_text('variable "x" {}\n')
    with pytest.raises(UserError, match="variable 'x' is declared twice"):
        declarations.read_variables(tmp_path)
    with pytest.raises(UserError, match="no Terraform files"):
        declarations.read_variables(tmp_path / "nothing")


# ------------------------------------------------------------------ formcheck
def _form(**changes):
    doc = formcheck.load_form(FIXTURE_SOURCE / "schema.yaml")
    doc.update(changes)
    return doc


def test_the_fixture_form_is_clean():
    assert formcheck.check_form(_form(), VARS, declarations.read_outputs(FIXTURE_SOURCE / "stack")) == []


@pytest.mark.parametrize("change, expected", [
    ({"schemaVersion": "2.0"}, "schemaVersion: '2.0' is not one of ['1.0.0', '1.1.0']"),
    ({"primaryOutputButton": "${nope}"}, "primaryOutputButton names 'nope', which is not in `outputs`"),
    ({"bogus": 1}, "bogus: unknown top-level key"),
    ({"logoUrl": "ftp://x"}, "logoUrl: 'ftp://x' is not an http(s) URL"),
])
def test_top_level_rules(change, expected):
    assert any(expected in e for e in formcheck.check_form(_form(**change), VARS)), formcheck.check_form(
        _form(**change), VARS)


@pytest.mark.parametrize("name, spec, expected", [
    ("instance_shape", {"type": "enum"}, "type enum needs an `enum:` list"),
    ("instance_shape", {"type": "enum", "enum": ["a"], "default": "b"}, "default 'b' is not one of its enum"),
    ("name_prefix", {"type": "oci:core:subnet:id", "dependsOn": {"compartmentId": "${compartment_ocid}"}},
     "type oci:core:subnet:id needs dependsOn.vcnId"),
    ("name_prefix", {"type": "string", "visible": {"eq": ["${missing}", "x"]}},
     "variables.name_prefix.visible names 'missing', which is not a variable"),
    ("name_prefix", {"type": "string", "visible": {"contains": ["a", "b"]}}, "is not true/false, a variable name"),
    # Oracle's meta schema: and/or join two statements, eq compares two strings or numbers
    ("name_prefix", {"type": "string", "visible": {"and": ["a", "b", "c"]}}, "is not true/false, a variable name"),
    ("name_prefix", {"type": "string", "visible": {"eq": ["enable_serving", True]}}, "is not true/false"),
    ("name_prefix", {"title": "Prefix"}, "variables.name_prefix: needs a type"),
    ("name_prefix", {"type": "string", "required": "ghost"}, "required names 'ghost'"),
    ("name_prefix", {"type": "number"}, "does not fit Terraform type string"),
    ("enable_serving", {"type": "string"}, "does not fit Terraform type bool"),
    ("name_prefix", {"type": "string", "pattern": "([a-z"}, "pattern does not compile"),
    ("name_prefix", {"type": "string", "minLength": 5, "maxLength": 2}, "minLength 5 is greater than maxLength 2"),
])
def test_variable_rules(name, spec, expected):
    doc = _form()
    doc["variables"] = {**doc["variables"], name: spec}
    errors = formcheck.check_form(doc, VARS)
    assert any(expected in e for e in errors), errors


def test_output_rules():
    doc = _form()
    doc["outputs"] = {**doc["outputs"], "mlflow_url": {"type": "hyperlink"}, "ghost": {"type": "string"}}
    errors = formcheck.check_form(doc, VARS, declarations.read_outputs(FIXTURE_SOURCE / "stack"))
    assert any("outputs.mlflow_url.type: unknown output type 'hyperlink'" in e for e in errors), errors
    assert any("outputs.ghost is not a Terraform output" in e for e in errors), errors
    assert any("primaryOutputButton names 'mlflow_url', whose type is 'hyperlink'" in e for e in errors), errors


@pytest.mark.parametrize("visible", ["enable_serving", "${enable_serving}", {"eq": ["enable_serving", "x"]},
                                     {"not": ["enable_serving"]}])
def test_an_output_shown_by_an_expression_is_refused(visible):
    """In Resource Manager's meta schema an output's `visible` is a boolean (baseOutput); the console
    refuses a form with anything else ("Errors exist in your schema file")."""
    doc = _form()
    doc["outputs"] = {**doc["outputs"], "serving_public_ip": {"type": "copyableString", "visible": visible}}
    errors = formcheck.check_form(doc, VARS, declarations.read_outputs(FIXTURE_SOURCE / "stack"))
    assert errors == [f"outputs.serving_public_ip.visible: {visible!r} is not of type 'boolean' (Resource Manager's "
                      "meta schema: definitions.baseOutput.properties.visible.type)"]
    doc["outputs"]["serving_public_ip"]["visible"] = False
    assert formcheck.check_form(doc, VARS, declarations.read_outputs(FIXTURE_SOURCE / "stack")) == []


def test_the_meta_schema_is_oracles_with_only_the_ssh_key_control_added():
    """The vendored file names where it was published and keeps Oracle's rules; the one deviation (the
    SSH key control Oracle documents but leaves out of dynamicVariable) is needed by the project's form,
    and nothing else is."""
    text = formcheck.META_SCHEMA_FILE.read_text()
    assert "https://docs.oracle.com/en-us/iaas/Content/ResourceManager/Concepts/terraformconfigresourcemanager_topic-schema.htm" in text
    assert "updated 2025-01-10" in text
    published = yaml.safe_load(text)
    assert published["required"] == ["variables", "schemaVersion"]
    assert published["definitions"]["baseOutput"]["properties"]["visible"] == {"type": "boolean", "default": True}
    dynamic = [ref["$ref"] for ref in published["definitions"]["dynamicVariable"]["oneOf"]]
    assert "#/definitions/sshPublicKeyVariable" not in dynamic and "sshPublicKeyVariable" in published["definitions"]
    assert [d.source for d in formcheck.DEVIATIONS] and all("docs.oracle.com" in d.source for d in formcheck.DEVIATIONS)

    project = yaml.safe_load((REPO_ROOT / "schema.yaml").read_text())
    literal = [".".join(map(str, e.absolute_path)) for e in jsonschema.Draft7Validator(published).iter_errors(project)]
    assert literal == ["variables.ssh_public_key"]


def test_a_variable_in_two_groups_is_reported():
    doc = _form()
    doc["variableGroups"] = doc["variableGroups"] + [{"title": "Again", "variables": ["name_prefix"]}]
    assert any("already in group 'MLflow'" in e for e in formcheck.check_form(doc, VARS))


def test_yaml_errors_name_the_line(tmp_path):
    (tmp_path / "schema.yaml").write_text("title: x\nvariables:\n  a: [\n")
    with pytest.raises(UserError, match=r"schema.yaml is not valid YAML at line \d"):
        formcheck.load_form(tmp_path / "schema.yaml")


# ------------------------------------------------------------------ variables
AUTO = {"tenancy_ocid": TENANCY_A, "region": "eu-frankfurt-1", "compartment_ocid": COMPARTMENT,
        "current_user_ocid": "ocid1.user.oc1..aaaaaaaaooov55iims2gwvftmyew3newg5beemopgmlqoksfbnjkgbjrxjpq"}


def test_values_are_encoded_as_resource_manager_strings():
    given = {"name_prefix": "demo", "enable_serving": False, "allowed_ingress_cidrs": ["10.0.0.0/8", "1.2.3.4/32"],
             "extra_tags": {"team": "ml"}}
    result = inputs.resolve(VARS, given, AUTO)
    assert result["name_prefix"] == "demo" and result["enable_serving"] == "false"
    assert json.loads(result["allowed_ingress_cidrs"]) == ["10.0.0.0/8", "1.2.3.4/32"]
    assert json.loads(result["extra_tags"]) == {"team": "ml"}
    assert {k: result[k] for k in AUTO} == AUTO
    assert all(isinstance(v, str) for v in result.values())


def test_user_values_win_over_filled_ones_and_stack_values_are_kept():
    current = {"name_prefix": "old", "gone_variable": "x", "region": "us-ashburn-1"}
    result = inputs.resolve(VARS, {"region": "ap-tokyo-1"}, AUTO, current)
    assert result["region"] == "ap-tokyo-1" and result["name_prefix"] == "old" and "gone_variable" not in result


@pytest.mark.parametrize("given, message", [
    ({"name_prefx": "x"}, "unknown variable 'name_prefx'; did you mean 'name_prefix'?"),
    ({"zzz": "x"}, "unknown variable 'zzz'; the stack declares: allowed_ingress_cidrs, "),
    ({"enable_serving": "yes"}, "variable 'enable_serving' is a bool: pass true or false"),
    ({"allowed_ingress_cidrs": "10.0.0.0/8"}, "variable 'allowed_ingress_cidrs' is list(string): pass JSON"),
    ({"extra_tags": "[1]"}, "variable 'extra_tags' is map(string): pass JSON"),
    ({"name_prefix": "x" * 9000}, "Resource Manager accepts at most 8192 per value"),
])
def test_bad_variables_are_one_line_usage_errors(given, message):
    with pytest.raises(UserError) as error:
        inputs.resolve(VARS, given, AUTO)
    assert message in str(error.value) and error.value.exit_code == ExitCode.USAGE


def test_required_variables_must_be_given():
    with pytest.raises(UserError, match="needs a value for 'tenancy_ocid'"):
        inputs.resolve(VARS, {}, {**AUTO, "tenancy_ocid": None})


def test_var_assignments_and_files(tmp_path):
    assert inputs.parse_assignments(["a=b=c", "x="]) == {"a": "b=c", "x": ""}
    with pytest.raises(UserError, match="is not NAME=VALUE"):
        inputs.parse_assignments(["novalue"])
    (tmp_path / "v.json").write_text('{"enable_serving": false}')
    (tmp_path / "v.yaml").write_text("allowed_ingress_cidrs: [10.0.0.0/8]\n")
    (tmp_path / "v.tfvars").write_text('name_prefix = "tf"\nextra_tags = { team = "ml" }\n')
    assert inputs.read_var_file(tmp_path / "v.json") == {"enable_serving": False}
    assert inputs.read_var_file(tmp_path / "v.yaml") == {"allowed_ingress_cidrs": ["10.0.0.0/8"]}
    tfvars = inputs.read_var_file(tmp_path / "v.tfvars")
    assert tfvars["name_prefix"] == "tf" and tfvars["extra_tags"] == {"team": "ml"}
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(UserError, match="cannot be parsed"):
        inputs.read_var_file(tmp_path / "bad.json")


# ------------------------------------------------------------------ ociconfig
def test_options_win_over_environment_over_defaults(tmp_path):
    env = {"OCI_CLI_PROFILE": "ENVP", "OCI_CLI_REGION": "eu-paris-1", "OCI_CLI_CONFIG_FILE": "/env/config",
           "OCI_CLI_AUTH": "security_token", "OCI_CLI_ENDPOINT": "http://e"}
    resolved = ociconfig.resolve(ociconfig.AuthOptions(profile="CLI"), env)
    assert (resolved.profile, resolved.region, resolved.config_file, resolved.auth, resolved.endpoint) == (
        "CLI", "eu-paris-1", "/env/config", "security_token", "http://e")
    default = ociconfig.resolve(ociconfig.AuthOptions(), {})
    assert default.profile == "DEFAULT" and default.auth == "api_key" and default.config_file.endswith(".oci/config")
    with pytest.raises(UserError, match="unknown --auth 'password'"):
        ociconfig.resolve(ociconfig.AuthOptions(auth="password"), {})


def test_api_key_config_problems_are_config_errors(tmp_path, api_key):
    config = write_oci_config(tmp_path, api_key)
    context = ociconfig.load(ociconfig.AuthOptions(config_file=str(config)), {})
    assert (context.tenancy_id, context.user_id, context.region) == (api_key.tenancy, api_key.user, "us-phoenix-1")
    assert context.describe() == f"profile [DEFAULT] of {config}"
    (tmp_path / "default_api_key.pem").write_text("not a key")
    with pytest.raises(UserError) as error:
        ociconfig.load(ociconfig.AuthOptions(config_file=str(config)), {})
    assert error.value.exit_code == ExitCode.CONFIG and "is not a readable PEM private key" in str(error.value)
    (tmp_path / "default_api_key.pem").write_bytes(api_key.private_pem)
    config.write_text(config.read_text().replace("fingerprint=", "fingerprint=zz"))
    with pytest.raises(UserError, match=r"profile \[DEFAULT\] of .* is invalid: fingerprint is malformed"):
        ociconfig.load(ociconfig.AuthOptions(config_file=str(config)), {})


# ------------------------------------------------------------------ the fake's signature check
def test_fake_rejects_unsigned_and_tampered_requests(fake, api_key):
    url = f"{fake.url}/20180917/stacks?compartmentId={COMPARTMENT}"
    unsigned = requests.get(url, timeout=10)
    assert unsigned.status_code == 401 and unsigned.json()["code"] == "NotAuthenticated"

    import oci

    signer = oci.signer.Signer(api_key.tenancy, api_key.user, api_key.fingerprint, None,
                               private_key_content=api_key.private_pem.decode())
    body = json.dumps({"compartmentId": COMPARTMENT, "configSource": {"configSourceType": "ZIP_UPLOAD"}})
    request = requests.Request("POST", f"{fake.url}/20180917/stacks", data=body,
                               headers={"content-type": "application/json", "date": formatdate(usegmt=True)})
    prepared = requests.Session().prepare_request(request)
    signer(prepared)
    evil = COMPARTMENT[:-1] + ("b" if COMPARTMENT.endswith("a") else "a")
    prepared.body = body.replace(COMPARTMENT, evil)  # same length, other content
    assert prepared.body != body
    tampered = requests.Session().send(prepared, timeout=10)
    assert tampered.status_code == 401
    assert "x-content-sha256 does not match the body" in fake.auth_failures[-1]
    good = requests.get(url, auth=signer, timeout=10)
    assert good.status_code == 200 and good.json() == []


# ------------------------------------------------------------------ log streaming
@pytest.mark.terraform
def test_streamed_logs_are_complete_and_without_duplicates(fake, oci_config):
    context = ociconfig.load(ociconfig.AuthOptions(config_file=str(oci_config), endpoint=fake.url), {})
    client = ociconfig.client("resource_manager", context, ociconfig.retry_strategy(1), context.endpoint)
    rm = resource_manager.ResourceManager(client, poll_seconds=0.1, page_size=3)  # pages of 3: many pages per poll
    source = archive.collect(FIXTURE_SOURCE)
    data = archive.zip_bytes(source)
    stack = rm.ensure_stack(COMPARTMENT, "logs", data, hashlib.sha256(data).hexdigest(),
                            inputs.resolve(VARS, {}, AUTO)).stack
    seen, states = [], []
    job = rm.follow_job(rm.start_job(stack.id, "PLAN").id, on_log=seen.append, on_state=states.append)
    assert job.state == "SUCCEEDED"
    assert [line.message for line in seen] == [e["message"] for e in fake.job_logs[job.id]]
    assert len(seen) > 30
    assert states[-1].state == "SUCCEEDED" and "IN_PROGRESS" in {s.state for s in states}
    log_requests = [r for r in fake.requests if r[1].endswith("/logs")]
    assert len(log_requests) > len(seen) / 3  # it really paged
    summary = PlanSummary.from_plan(rm.plan_json(job.id))
    assert (summary.add, summary.change, summary.destroy) == (3, 0, 0)


@pytest.mark.parametrize("target_service, named", [
    ("resource_manager", "Resource Manager"), ("secrets", "Vault"), ("container_engine", "Container Engine"),
    ("object_storage", "Object Storage"), (None, "Resource Manager"), ("some_new_service", "OCI")])
def test_a_service_error_names_the_service_that_answered(target_service, named):
    import oci

    for status, code in ((401, "NotAuthenticated"), (409, "Conflict"), (429, "TooManyRequests"),
                         (500, "InternalServerError"), (400, "InvalidParameter")):
        error = oci.exceptions.ServiceError(status, code, {}, "it went wrong.", target_service=target_service,
                                            operation_name="get_thing")
        text = str(resource_manager.translate_service_error(error, "~/.oci/config [DEFAULT]"))
        assert named in text, (status, text)
        assert ("orm-pack status" in text) == (status == 409 and named == "Resource Manager"), text
