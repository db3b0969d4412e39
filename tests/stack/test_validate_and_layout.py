"""The HCL is valid on every Terraform we support and plans the same from stack/ and from the zip root."""
import pytest

from harness import static
from harness.terraform import Terraform
from harness.tools import OLDEST_TERRAFORM, terraform_binaries

from .conftest import BASE_TFVARS, REPO, flat_layout, instance_user_data, repo_layout

pytestmark = pytest.mark.terraform


@pytest.mark.parametrize("label,binary", terraform_binaries(), ids=[b[0] for b in terraform_binaries()])
def test_validate_passes(tmp_path, label, binary):
    tf = Terraform(repo_layout(tmp_path), binary=binary)
    tf.init()
    result = tf.validate()
    assert "Success! The configuration is valid." in result.stdout
    assert "Warning" not in result.stdout + result.stderr


def test_hcl_is_formatted():
    result = Terraform(REPO / "stack").run("fmt", "-check", "-recursive", "-diff", str(REPO / "stack"), check=False)
    assert result.returncode == 0, result.stdout


def test_same_plan_from_stack_dir_and_from_flattened_zip_root(tmp_path):
    tfvars = {**BASE_TFVARS, "s3_credentials_source": "supply",
              "s3_access_key": "0123456789abcdef0123456789abcdef01234567", "s3_secret_key": "c2VjcmV0LWtleS1vZi10aGUtdGVzdA=="}
    repo = Terraform(repo_layout(tmp_path / "repo"))
    flat = Terraform(flat_layout(tmp_path / "zip"))
    assert not (tmp_path / "zip" / "stack").exists() and (tmp_path / "zip" / "compute.tf").exists()
    results = []
    for tf in (repo, flat):
        tf.init()
        first = tf.plan_summary(tfvars)
        tf.apply(tfvars, plan_file="plan.bin")
        results.append((first, {a: static.decode_user_data(u) for a, u in instance_user_data(tf.plan(tfvars, "replan.bin")).items()}))
    (repo_plan, repo_ud), (flat_plan, flat_ud) = results
    # a certificate is valid for a year from the plan that creates it (plantimestamp(): the two plans differ)
    for plan in (repo_plan, flat_plan):
        for address, values in plan.values.items():
            if address.startswith("oci_certificates_management_certificate."):
                assert values["certificate_config"][0].pop("validity")[0]["time_of_validity_not_after"]
    assert repo_plan.values == flat_plan.values
    assert repo_plan.outputs == flat_plan.outputs
    assert set(repo_ud) == {'oci_core_instance.vm["tracking"]', 'oci_core_instance.vm["serving"]'}
    assert repo_ud == flat_ud  # the same docker/ and userdata/ files were embedded


def test_the_tests_run_a_terraform_as_new_as_resource_managers():
    (label, _), = terraform_binaries()
    assert tuple(int(p) for p in label.split(".")) >= OLDEST_TERRAFORM
