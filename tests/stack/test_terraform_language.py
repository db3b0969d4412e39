"""The stack reads on Terraform 1.5, the only version Resource Manager runs, although the tests run a
newer Terraform (harness/tools.py): every feature added after 1.5 is refused by reading the HCL."""
import pytest

from harness import tf_language

from .conftest import REPO


def test_the_stack_uses_nothing_newer_than_terraform_1_5():
    assert tf_language.problems(REPO / "stack") == []


def test_the_stack_requires_1_5_and_pins_the_provider_the_double_serves():
    versions = (REPO / "stack" / "versions.tf").read_text()
    assert 'required_version = ">= 1.5"' in versions
    assert 'version = "~> 7.19.0"' in versions  # the schema the double serves is 7.19.0's


@pytest.mark.parametrize("hcl, expected", [
    ('removed {\n  from = oci_core_vcn.old\n}\n', "a `removed` block needs Terraform 1.7"),
    ('import {\n  for_each = var.m\n  to = oci_core_vcn.v[each.key]\n  id = each.value\n}\n',
     "an `import` block with for_each needs Terraform 1.7"),
    ('locals {\n  x = provider::terraform::encode_tfvars({})\n}\n', "a provider-defined function needs Terraform 1.8"),
    ('locals {\n  x = templatestring("a", {})\n}\n', "templatestring() needs Terraform 1.9"),
    ('variable "a" {\n  type = string\n  ephemeral = true\n}\n', "variable a is ephemeral, which needs Terraform 1.10"),
    ('resource "oci_vault_secret" "s" {\n  secret_content_wo = "x"\n}\n', "write-only argument secret_content_wo needs Terraform 1.11"),
    ('variable "a" {\n  type = string\n  validation {\n    condition = var.a != var.b\n    error_message = "x."\n  }\n}\n',
     "variable a's validation reads var.b, which needs Terraform 1.9"),
])
def test_each_newer_feature_is_refused(hcl, expected):
    assert any(expected in problem for problem in tf_language.problems_in(hcl, "x.tf")), tf_language.problems_in(hcl, "x.tf")


def test_what_1_5_has_is_allowed():
    hcl = ('import {\n  to = oci_core_vcn.v\n  id = "ocid1.vcn.oc1.iad.amaaaaaaga2ihfhv5ov5jvmz3lpwylglm5vtqwx5wnx7fcp2riwjb2dloqkq"\n}\n'
           'moved {\n  from = oci_core_vcn.a\n  to = oci_core_vcn.b\n}\n'
           'check "x" {\n  assert {\n    condition = true\n    error_message = "x."\n  }\n}\n'
           'variable "a" {\n  type = string\n  validation {\n    condition = startswith(var.a, "b")\n'
           '    error_message = "x."\n  }\n}\n')
    assert tf_language.problems_in(hcl, "x.tf") == []
