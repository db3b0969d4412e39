"""OCI makes a new tag or policy usable only seconds after it is written, and the provider double does the
same (harness/double/propagation.py, with the sources): the stack waits where it uses one (waits.tf).
With the waits the profiles apply (test_profiles.py applies every one); without them the
first apply fails the way it would on OCI (each refusal is counted by its own message: without any wait,
other objects may be refused too)."""
import pytest

from harness.double import propagation
from harness.inventory import load_inventory
from harness.terraform import Terraform, TerraformError

from .conftest import INVENTORIES, repo_layout, tfvars_of

pytestmark = pytest.mark.terraform


@pytest.mark.parametrize("profile, waits_for, refusal", [
    ("oke", "oke_node_tag", "400-InvalidParameter, Failed to validate tags: TagNamespace mlflow-oke-"),
    ("notebook", 'policy["datascience"]', "404-NotAuthorizedOrNotFound, Authorization failed"),
    ("other-region", 'policy["bucket_key"]', "principal to use this key are insufficient"),
    # Object Storage applies the bucket's lifecycle rules as itself, once its policy is in effect
    ("always-free", 'policy["object_lifecycle"]', "400-InsufficientServicePermissions, Permissions granted to the "
                                                  "object storage service principal to this bucket"),
    # the DB system reads its own certificate as it is created (HeatWave's bring your own certificate)
    ("default", "mysql_certificate_policy", "404-NotAuthorizedOrNotFound, the DB system is not authorized"),
])
def test_without_the_wait_the_first_apply_fails_as_it_would_on_oci(deployed, tmp_path, profile, waits_for, refusal):
    applied = deployed(profile)  # with the wait: applied, and the wait is in the state
    waits_for = waits_for if "[" in waits_for else f"{waits_for}[0]"
    assert f"time_sleep.{waits_for}" in applied.tf.state_resources()

    inventory = load_inventory(INVENTORIES / f"{profile}.yaml")
    workdir = repo_layout(tmp_path)
    waits = workdir / "waits.tf"
    assert waits.read_text().count('create_duration = "30s"') == 3
    waits.write_text(waits.read_text().replace('create_duration = "30s"', 'create_duration = "0s"'))
    tf = Terraform(workdir, fixtures=inventory.get("fixtures"))
    tf.env[propagation.SCALE_ENV] = "1"  # the cloud's own pace: nothing in the double is that slow
    tf.init()
    with pytest.raises(TerraformError) as refused:
        tf.apply(tfvars_of(inventory))
    assert refused.value.message.count(refusal) == 1, refused.value.message
