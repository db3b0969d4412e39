"""The provider double enforces the cloud's own rules, not just the schema, each shown on a small
configuration written here. (The rules, as OCI documents them:)

- IAM writes go to the tenancy's home region only: Identity answers a create, update or delete sent
  to another region's endpoint with `403-NotAllowed, Please go to your home region <KEY> to execute
  CREATE, UPDATE and DELETE operations`, and the oci provider does not redirect them.
"""
import pytest

from harness.terraform import Terraform, TerraformError

VERSIONS = """
terraform {
  required_providers {
    oci = { source = "oracle/oci" }
  }
}
"""
POLICY = """
resource "oci_identity_policy" "readers" {
  %s
  compartment_id = "ocid1.tenancy.oc1..test"
  name           = "readers"
  description    = "test policy"
  statements     = ["Allow group readers to read all-resources in tenancy"]
}
"""


def _config(tmp_path, body: str) -> Terraform:
    workdir = tmp_path / "config"
    workdir.mkdir()
    (workdir / "main.tf").write_text(VERSIONS + body)
    tf = Terraform(workdir)
    tf.init()
    return tf


def test_an_iam_write_outside_the_home_region_is_refused(tmp_path):
    tf = _config(tmp_path, 'provider "oci" {\n  region = "eu-frankfurt-1"\n}\n' + POLICY % "")
    with pytest.raises(TerraformError) as refused:
        tf.apply()
    assert "403-NotAllowed, Please go to your home region IAD to execute CREATE, UPDATE and DELETE operations." \
        in refused.value.args[0]
    assert tf.state_resources() == []


def test_an_iam_write_in_the_home_region_is_accepted(tmp_path):
    tf = _config(tmp_path, 'provider "oci" {\n  region = "us-ashburn-1"\n}\n' + POLICY % "")
    tf.apply()
    assert tf.state_resources() == ["oci_identity_policy.readers"]


def test_a_home_region_alias_found_through_region_subscriptions_works_from_any_region(tmp_path):
    """The pattern of Oracle's stacks: a provider alias whose region is the home region subscription."""
    tf = _config(tmp_path, """
provider "oci" {
  region = "eu-frankfurt-1"
}

data "oci_identity_region_subscriptions" "home" {
  tenancy_id = "ocid1.tenancy.oc1..test"
  filter {
    name   = "is_home_region"
    values = [true]
  }
}

provider "oci" {
  alias  = "home"
  region = data.oci_identity_region_subscriptions.home.region_subscriptions[0].region_name
}
""" + POLICY % "provider = oci.home")
    tf.apply()
    assert "oci_identity_policy.readers" in tf.state_resources()
