"""The first URL sooner: a new stack's VMs boot, install and pull while the MySQL DB system is created
(9-12 minutes), because the DB's address is chosen up front (mysql_private_ip, the private subnet's 10th
address by default). A stack made before keeps its DB system and its address: ip_address forces a new DB
system in the provider, so the stack looks the existing one up (datasources.tf) and uses its address.
"""
import json

import pytest

from harness import static
from harness.release import released_tree, upgrade_in_place
from harness.terraform import Terraform

from .conftest import BASE_TFVARS, instance_user_data

pytestmark = pytest.mark.terraform

DB = "oci_mysql_mysql_db_system.mlflow"


def _state_resources(tf: Terraform) -> dict:
    state = json.loads(tf.run("show", "-json").stdout)
    return {r["address"]: r for r in state["values"]["root_module"]["resources"]}


def _tracking_env(plan: dict) -> dict:
    encoded = instance_user_data(plan)['oci_core_instance.vm["tracking"]']
    text = static.written_files(static.decode_user_data(encoded))["/etc/mlflow/tracking.env"]
    return dict(line.split("=", 1) for line in text.splitlines() if line)


@pytest.mark.parametrize("profile, address", [("default", "10.0.2.10"), ("existing-vcn", "10.20.2.10")])
def test_a_new_stacks_vms_are_created_without_waiting_for_the_db_system(deployed, profile, address):
    d = deployed(profile)
    resources = _state_resources(d.tf)
    vms = [a for a in resources if a.startswith("oci_core_instance.vm[")]
    assert len(vms) == 2
    for vm in vms:  # the state keeps every resource an instance waited for, directly or not
        assert DB not in resources[vm]["depends_on"], vm
    assert resources[DB]["values"]["ip_address"] == address == d.outputs["mysql_private_ip"]
    env = _tracking_env(d.replan)
    assert env["MLFLOW_DB_HOST"] == address
    assert int(env["MLFLOW_DB_WAIT_SECONDS"]) >= 20 * 60  # covers the DB system's creation


def test_a_stack_of_the_previous_release_keeps_its_db_system_and_address(tmp_path):
    tf = Terraform(released_tree("0.2.0", tmp_path / "stack-0.2.0"))
    tf.init()
    tf.apply(BASE_TFVARS)
    before = _state_resources(tf)
    old_address = before[DB]["values"]["ip_address"]
    assert old_address != "10.0.2.10"  # MySQL chose it

    upgrade_in_place(tf.workdir)
    tf.run("init", "-input=false")
    plan = tf.plan(BASE_TFVARS)
    actions = {r["address"]: r["change"]["actions"] for r in plan["resource_changes"]}
    # updated in place, and only to present its certificate from the stack's CA (tls.tf): the data stays
    assert actions[DB] == ["update"]
    (db_change,) = [r["change"] for r in plan["resource_changes"] if r["address"] == DB]
    changed = {key for key in set(db_change["before"]) | set(db_change["after"] or {})
               if db_change["before"].get(key) != (db_change["after"] or {}).get(key)}
    assert changed <= {"secure_connections"}, changed
    for kept in ("oci_objectstorage_bucket.artifacts", 'oci_core_public_ip.vm["tracking"]',
                 'oci_core_public_ip.vm["serving"]'):
        assert "delete" not in actions[kept], (kept, actions[kept])

    tf.apply(plan_file="plan.bin")
    after = _state_resources(tf)
    assert after[DB]["values"]["id"] == before[DB]["values"]["id"]
    certificate = after['oci_certificates_management_certificate.service["mysql"]']["values"]
    assert after[DB]["values"]["secure_connections"] == [{"certificate_generation_type": "BYOC",
                                                          "certificate_id": certificate["id"]}]
    # the certificate names the address the DB system kept, which the tracking server checks
    assert [san["value"] for san in certificate["certificate_config"][0]["subject_alternative_names"]] == [old_address]
    assert tf.output()["mysql_private_ip"] == old_address
    replan = tf.plan(BASE_TFVARS, "replan.bin")
    assert _tracking_env(replan)["MLFLOW_DB_HOST"] == old_address
    assert {r["address"] for r in replan["resource_changes"] if r["change"]["actions"] != ["no-op"]} == set()
