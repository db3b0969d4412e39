"""The offline harness itself: Terraform with the oci provider double behaves like the real provider.

Proved on a small configuration of our own (tests/fixtures/harness-config)."""
import re
from pathlib import Path

import pytest

from harness.terraform import TerraformError, apply_and_replan

pytestmark = pytest.mark.terraform

CONFIG = Path(__file__).resolve().parent / "fixtures" / "harness-config"


@pytest.fixture(scope="module")
def tf_config_dir():
    return CONFIG


def _break(tf, old: str, new: str) -> TerraformError:
    main = tf.workdir / "main.tf"
    source = main.read_text()
    assert old in source, f"fixture text not found: {old!r}"
    main.write_text(source.replace(old, new, 1))
    with pytest.raises(TerraformError) as failure:
        tf.validate()
    return failure.value


def test_valid_configuration_validates(planned_config):
    assert "Success! The configuration is valid." in planned_config.validate().stdout


def test_unknown_argument_is_rejected(fresh_config):
    error = _break(fresh_config(), 'cidr_block                 = "10.0.1.0/24"', 'cidr                       = "10.0.1.0/24"')
    assert 'An argument named "cidr" is not expected here.' in error.message
    assert 'The argument "cidr_block" is required, but no definition was found.' in error.message


def test_missing_required_argument_is_rejected(fresh_config):
    error = _break(fresh_config(), '  shape_name              = "MySQL.2"\n', "")
    assert 'The argument "shape_name" is required, but no definition was found.' in error.message


def test_block_written_as_attribute_is_rejected(fresh_config):
    error = _break(fresh_config(), "  shape_config {\n", "  shape_config = {\n")
    assert 'An argument named "shape_config" is not expected here. Did you mean to define a block of type "shape_config"?' in error.message


def test_nested_block_in_wrong_place_is_rejected(fresh_config):
    # backup_policy belongs to the DB system, not inside the instance's source_details
    error = _break(fresh_config(), '    source_type = "image"\n',
                   '    source_type = "image"\n    backup_policy {\n      is_enabled = true\n    }\n')
    assert 'Blocks of type "backup_policy" are not expected here.' in error.message


def test_two_blocks_where_max_is_one_are_rejected(fresh_config):
    error = _break(fresh_config(), "  shape_config {\n", "  shape_config {\n    ocpus = 2\n  }\n  shape_config {\n")
    assert "Too many shape_config blocks" in error.message


def test_plan_marks_computed_attributes_unknown_and_reads_data_sources(planned_config):
    plan = planned_config.plan()
    changes = {c["address"]: c["change"] for c in plan["resource_changes"] if c["mode"] == "managed"}
    assert {a: c["actions"] for a, c in changes.items()} == {
        "oci_core_instance.app": ["create"],
        "oci_core_network_security_group.app": ["create"],
        "oci_core_security_list.app": ["create"],
        "oci_core_subnet.app": ["create"],
        "oci_core_vcn.main": ["create"],
        "oci_mysql_mysql_db_system.db": ["create"],
        "oci_objectstorage_bucket.artifacts": ["create"],
    }
    db = changes["oci_mysql_mysql_db_system.db"]
    assert db["after_unknown"]["ip_address"] is True and db["after_unknown"]["id"] is True
    # nested computed attributes are unknown too (SDKv2 sets unknowns recursively)
    assert db["after_unknown"]["backup_policy"][0]["window_start_time"] is True
    assert db["after_sensitive"]["admin_password"] is True
    instance = changes["oci_core_instance.app"]["after"]
    # the newest Oracle Linux 9 image compatible with the shape, as the images API answers
    assert instance["source_details"][0]["source_id"] == "ocid1.image.oc1.iad.amaaaaaak7zeokbygadn2vmfjh3kmfjsc543l24wi2ejyrubol5ze7o7737q"
    assert plan["planned_values"]["outputs"]["namespace"]["value"] == "testnamespace"


def test_images_follow_the_shape_architecture(plan_summary):
    values, _, outputs = plan_summary({"shape": "VM.Standard.A1.Flex"})
    assert outputs["image_id"] == "ocid1.image.oc1.iad.amaaaaaaarlambklpz7ddvatmrlo5nsppfelvk4rseu66ri2vjbcqokz2jka"


def test_apply_then_replan_shows_no_changes_and_destroy_succeeds(fresh_config):
    tf = fresh_config()
    outputs = apply_and_replan(tf)
    assert re.fullmatch(r"10\.\d+\.\d+\.\d+", outputs["db_ip"]), outputs
    assert re.fullmatch(r"10\.\d+\.\d+\.\d+", outputs["instance_private_ip"]), outputs
    assert len(tf.state_resources()) == 10  # 7 resources + 3 data sources
    tf.destroy()
    assert tf.state_resources() == []


def test_force_new_change_replaces_and_display_name_updates_in_place(fresh_config):
    tf = fresh_config()
    tf.apply()
    plan = tf.plan({"bucket_name": "harness-bucket-2", "vcn_name": "harness-vcn-2"})
    actions = {c["address"]: c["change"]["actions"] for c in plan["resource_changes"]
               if c["change"]["actions"] not in (["no-op"], ["read"])}
    assert actions["oci_objectstorage_bucket.artifacts"] == ["delete", "create"]  # name is ForceNew
    assert actions["oci_core_vcn.main"] == ["update"]                               # display_name is not
    tf.apply(plan_file="plan.bin")
    assert tf.plan_exit_code({"bucket_name": "harness-bucket-2", "vcn_name": "harness-vcn-2"}).returncode == 0


def test_data_source_fixtures_can_be_overridden_per_test(fresh_config):
    tf = fresh_config(fixtures={"oci_objectstorage_namespace": {"namespace": "othertenancy"}})
    plan = tf.plan()
    assert plan["planned_values"]["outputs"]["namespace"]["value"] == "othertenancy"




def test_only_the_doubles_process_ending_mid_call_is_taken_for_a_crash():
    """The diagnostic CI saw once (plan after apply, other-region); any other failure is the test's."""
    import subprocess

    from harness.terraform import _double_died

    crashed = ("\nError: Plugin error\n\nThe plugin returned an unexpected error from\n"
               "plugin6.(*GRPCProvider).ReadResource: rpc error: code = Internal desc =\nunexpected EOF\n")
    assert _double_died(subprocess.CompletedProcess([], 1, "", crashed))
    assert not _double_died(subprocess.CompletedProcess([], 1, "", "Error: Invalid value for variable"))
    assert not _double_died(subprocess.CompletedProcess([], 0, "", crashed))
