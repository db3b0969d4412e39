"""Every profile, as its previous stack made it, planned with this tree: an upgrade replaces or destroys no
data resource (harness.release.DATA_RESOURCES: the DB system, the buckets, the vault, its keys and secrets,
the reserved IPs, …) and nothing can excuse one; what else it replaces is known and explained; and the
network's move to one resource per role (network.tf) replaces nothing, because its `moved` blocks carry the
old addresses over. The control plans the same tree without those blocks and with a bucket renamed.

Terraform plans a resource whose address changed without a `moved` block as a destroy and a create
(developer.hashicorp.com/terraform/language/modules/develop/refactoring). OCI cannot re-create a subnet
while VNICs use it, so a missed move would fail the upgrade, or, with nothing attached yet, give the
VMs new subnets.
"""
import re

import pytest

from harness.inventory import load_inventory
from harness.release import DATA_RESOURCES, profile_baseline, upgrade_plan

from .conftest import BASE_TFVARS, INVENTORIES, PROFILES

NETWORK = ("oci_core_vcn.", "oci_core_internet_gateway.", "oci_core_nat_gateway.", "oci_core_service_gateway.",
           "oci_core_route_table.", "oci_core_security_list.", "oci_core_subnet.", "oci_core_network_security_group")
# What an upgrade from a previous stack may replace or delete, and why. Anything else fails. Each pattern starts
# with its resource type, never a data resource's (test below): no explanation excuses losing data.
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


def _data_lost_message(upgrade, lost: dict) -> str:
    return (f"from {upgrade.baseline[:7]}, the upgrade would lose "
            + "; ".join(f"{address} ({', '.join(actions)})" for address, actions in lost.items())
            + ". A data resource may never be replaced or destroyed by an upgrade, and no EXPLAINED entry excuses"
            " it: give a changed address a `moved` block, keep a ForceNew attribute's value (or ignore_changes it)")


def test_no_explanation_can_excuse_losing_a_data_resource():
    """Every EXPLAINED pattern names one resource type literally, and none is a data resource's."""
    types = {pattern: re.match(r"([a-z0-9_]+)\\\.", pattern) for pattern in EXPLAINED}
    assert [pattern for pattern, literal in types.items() if not literal] == [], "a pattern must start with `<type>\\.`"
    assert {pattern: literal[1] for pattern, literal in types.items() if literal[1] in DATA_RESOURCES} == {}


@pytest.mark.terraform
@pytest.mark.parametrize("profile", PROFILES)
def test_an_upgrade_loses_no_data_replaces_only_what_is_explained_and_no_network(profile, tmp_path):
    upgrade = upgrade_plan(profile, load_inventory(INVENTORIES / f"{profile}.yaml"), BASE_TFVARS, tmp_path)
    lost = upgrade.data_resources_lost()
    assert lost == {}, _data_lost_message(upgrade, lost)
    data = [r["address"] for r in upgrade.plan["resource_changes"] if r["type"] in DATA_RESOURCES]
    assert {address: pattern for address in data for pattern in EXPLAINED if re.fullmatch(pattern, address)} == {}
    replaced = upgrade.replaced_or_deleted()
    assert _unexplained(replaced) == {}, f"from {upgrade.baseline[:7]}"
    network = {address: actions for address, actions in upgrade.actions().items()
               if address.startswith(NETWORK) and actions != ["no-op"]}
    assert network == {}, f"from {upgrade.baseline[:7]}"
    moved = upgrade.moved()
    assert all(re.fullmatch(r'oci_core_(subnet|route_table|nat_gateway)\.mlflow\["[a-z_]+"\]', new) for new in moved)
    if profile != "existing-vcn":  # its subnets are the user's: the stack makes none
        assert moved, "the baseline predates the role maps, so its subnets must have moved"


@pytest.mark.terraform
def test_without_the_moved_blocks_the_network_and_the_database_would_be_replaced(tmp_path):
    """The control, one plan of the default profile with three edits to this tree: network.tf's moved blocks
    deleted, which destroys the old subnets and route tables and creates them anew, and with its subnet the
    MySQL DB system that holds every run; the artifact bucket renamed (`name` forces a new bucket); and the
    runtime bucket declared at another address without a `moved` block (Terraform plans the old address as
    a delete). The guard names all three data resources."""
    def drop_moved_blocks_and_move_the_buckets(root_module):
        network = root_module / "network.tf"
        network.write_text(re.sub(r"\nmoved \{[^}]*\}\n", "\n", network.read_text()))
        storage = root_module / "storage.tf"
        renamed = storage.read_text().replace("name                  = local.bucket_name",
                                              'name                  = "${local.bucket_name}-renamed"')
        assert renamed != storage.read_text(), "storage.tf no longer names the artifact bucket as expected"
        storage.write_text(renamed)
        for tf in root_module.glob("*.tf"):
            tf.write_text(tf.read_text().replace('"oci_objectstorage_bucket" "runtime"', '"oci_objectstorage_bucket" "runtime_files"')
                          .replace("oci_objectstorage_bucket.runtime.", "oci_objectstorage_bucket.runtime_files."))

    upgrade = upgrade_plan("default", load_inventory(INVENTORIES / "default.yaml"), BASE_TFVARS, tmp_path,
                           edit=drop_moved_blocks_and_move_the_buckets)
    assert profile_baseline("default") == upgrade.baseline
    assert upgrade.moved() == {}
    unexplained = _unexplained(upgrade.replaced_or_deleted())
    assert set(unexplained) == {"oci_core_subnet.public[0]", "oci_core_subnet.private[0]",
                                "oci_core_route_table.public[0]", "oci_core_route_table.private[0]",
                                "oci_mysql_mysql_db_system.mlflow", "oci_objectstorage_bucket.artifacts",
                                "oci_objectstorage_bucket.runtime"}
    assert upgrade.data_resources_lost() == {"oci_mysql_mysql_db_system.mlflow": ["delete", "create"],
                                             "oci_objectstorage_bucket.artifacts": ["delete", "create"],
                                             "oci_objectstorage_bucket.runtime": ["delete"]}
