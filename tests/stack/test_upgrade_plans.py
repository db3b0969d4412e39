"""Every profile, as its previous stack made it, planned with this tree: what an upgrade replaces is known
and explained, and the network's move to one resource per role (network.tf) replaces nothing, because its
`moved` blocks carry the old addresses over. The control plans the same tree without those blocks.

Terraform plans a resource whose address changed without a `moved` block as a destroy and a create
(developer.hashicorp.com/terraform/language/modules/develop/refactoring). OCI cannot re-create a subnet
while VNICs use it, so a missed move would fail the upgrade, or, with nothing attached yet, give the
VMs new subnets.
"""
import re

import pytest

from harness.inventory import load_inventory
from harness.release import profile_baseline, upgrade_plan

from .conftest import BASE_TFVARS, INVENTORIES, PROFILES

pytestmark = pytest.mark.terraform

NETWORK = ("oci_core_vcn.", "oci_core_internet_gateway.", "oci_core_nat_gateway.", "oci_core_service_gateway.",
           "oci_core_route_table.", "oci_core_security_list.", "oci_core_subnet.", "oci_core_network_security_group")
# What an upgrade from a previous stack may replace or delete, and why. Anything else fails.
EXPLAINED = {
    r'oci_core_instance\.vm\["(tracking|serving)"\]':
        "its user_data changed: the provider replaces an instance on a user_data change (customize_diff.py)",
    r'oci_objectstorage_object\.(requirements_lock|runtime_files)\["(tracking|serving)"\]':
        "the runtime files the VM fetches changed: an object's content is replaced, not updated",
    r"oci_identity_customer_secret_key\.mlflow\[0\]":
        "artifacts go through the VM's instance principal since 0.3.0: the S3 key is no longer made",
    r"time_sleep\.[a-z_]+(\[.+\])?":
        "a wait of the earlier stack, made differently since; a time_sleep holds nothing in the cloud",
}


def _unexplained(replaced: dict) -> dict:
    return {address: actions for address, actions in replaced.items()
            if not any(re.fullmatch(pattern, address) for pattern in EXPLAINED)}


@pytest.mark.parametrize("profile", PROFILES)
def test_an_upgrade_replaces_only_what_is_explained_and_no_network(profile, tmp_path):
    upgrade = upgrade_plan(profile, load_inventory(INVENTORIES / f"{profile}.yaml"), BASE_TFVARS, tmp_path)
    replaced = upgrade.replaced_or_deleted()
    assert _unexplained(replaced) == {}, f"from {upgrade.baseline[:7]}"
    network = {address: actions for address, actions in upgrade.actions().items()
               if address.startswith(NETWORK) and actions != ["no-op"]}
    assert network == {}, f"from {upgrade.baseline[:7]}"
    moved = upgrade.moved()
    assert all(re.fullmatch(r'oci_core_(subnet|route_table|nat_gateway)\.mlflow\["[a-z_]+"\]', new) for new in moved)
    if profile != "existing-vcn":  # its subnets are the user's: the stack makes none
        assert moved, "the baseline predates the role maps, so its subnets must have moved"


def test_without_the_moved_blocks_the_network_would_be_replaced(tmp_path):
    """The control: the same upgrade with network.tf's moved blocks deleted destroys the old subnets and
    route tables and creates them anew, and with its subnet the MySQL DB system that holds every run."""
    def drop_moved_blocks(root_module):
        network = root_module / "network.tf"
        network.write_text(re.sub(r"\nmoved \{[^}]*\}\n", "\n", network.read_text()))

    upgrade = upgrade_plan("default", load_inventory(INVENTORIES / "default.yaml"), BASE_TFVARS, tmp_path,
                           edit=drop_moved_blocks)
    assert profile_baseline("default") == upgrade.baseline
    assert upgrade.moved() == {}
    unexplained = _unexplained(upgrade.replaced_or_deleted())
    assert set(unexplained) == {"oci_core_subnet.public[0]", "oci_core_subnet.private[0]",
                                "oci_core_route_table.public[0]", "oci_core_route_table.private[0]",
                                "oci_mysql_mysql_db_system.mlflow"}
