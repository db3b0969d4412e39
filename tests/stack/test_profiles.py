"""Each deployment profile, as its user would meet it: the plan holds what the inventory says,
apply works, a second plan changes nothing, and the outputs carry the URLs (no secret value:
test_no_secret_values.py)."""
import re

import pytest

from harness.inventory import check_inventory

from .conftest import PROFILES, REPO, load_yaml

pytestmark = pytest.mark.terraform


def test_every_documented_profile_has_an_inventory_and_back():
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("### Deployment profiles"):readme.index("<!-- BEGIN PROFILE COSTS -->")]
    documented = re.findall(r"^\| `([a-z-]+)` \|", table, re.M)
    assert sorted(documented) == PROFILES


@pytest.mark.parametrize("profile", PROFILES)
def test_plan_matches_inventory(deployed, profile):
    d = deployed(profile)
    check_inventory(d.inventory, d.first_plan.values, d.first_plan.counts, d.first_plan.outputs)
    assert set(a for acts in d.first_plan.actions.values() for a in acts) == {"create"}


@pytest.mark.parametrize("profile", PROFILES)
def test_apply_then_replan_shows_no_drift(deployed, profile):
    d = deployed(profile)
    assert d.replan_exit_code == 0, "the second plan after apply wants changes"
    changes = {r["address"]: r["change"]["actions"] for r in d.replan["resource_changes"]
               if r["change"]["actions"] not in (["no-op"], ["read"])}
    assert changes == {}


@pytest.mark.parametrize("profile", PROFILES)
def test_outputs_after_apply(deployed, profile):
    d = deployed(profile)
    out = d.outputs
    for name, value in (d.inventory.get("outputs") or {}).items():
        if value != "__known_after_apply__":
            assert out[name] == value, name
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", out["mysql_private_ip"])
    if d.inventory["tfvars"].get("deployment_target") == "oke":
        # no VM: the URL is the reserved address of the load balancer orm-pack oke deploy has Kubernetes create
        assert out["mlflow_url"] == f"https://{out['tracking_public_ip']}"
        assert (out["commands_tracking"], out["serving_url"]) == ("",) * 2
        assert out["oke_next_command"].startswith("orm-pack oke deploy --compartment ")
        assert f"MLFLOW_TRACKING_URI={out['mlflow_url']}\n" in out["notebook_setup"]
        return
    assert re.fullmatch(r"https://\d+\.\d+\.\d+\.\d+", out["mlflow_url"])
    assert out["mlflow_url"] == f"https://{out['tracking_public_ip']}"
    assert out["mlflow_url"] in out["commands_tracking"]
    assert f"MLFLOW_TRACKING_URI={out['mlflow_url']}" in out["notebook_setup"]
    assert out["mysql_private_ip"] in out["commands_tracking"]
    if d.inventory["tfvars"].get("serving_enabled", True):
        assert out["serving_url"] == f"https://{out['serving_public_ip']}:1234"
        assert f"{out['serving_url']}/invocations" in out["commands_serving"]
        assert "champion" in out["commands_serving"] and "wine-quality" in out["commands_serving"]


# Outputs that apply to one kind of deployment only, and the profiles where they do. The form shows every
# output (an output's `visible` is a boolean in Resource Manager's meta schema), so one that does not apply
# must be empty there, as its title says.
CONDITIONAL_OUTPUTS = {
    "serving_url": {"default", "always-free", "existing-vcn", "notebook", "other-region", "per-person", "sso"},
    "serving_public_ip": {"default", "always-free", "existing-vcn", "notebook", "other-region", "per-person", "sso"},
    "commands_serving": {"default", "always-free", "existing-vcn", "notebook", "other-region", "per-person", "sso"},
    "commands_tracking": set(PROFILES) - {"oke"},
    "notebook_session_url": {"notebook"},
    "oke_next_command": {"oke"},
    "oke_kubeconfig_command": {"oke"},
    "oke_cluster_id": {"oke"},
    "oke_deploy_settings": {"oke"},
}


@pytest.mark.parametrize("profile", PROFILES)
def test_an_output_that_does_not_apply_is_empty_and_its_title_says_when(deployed, profile):
    titles = {name: spec["title"] for name, spec in load_yaml(REPO / "schema.yaml")["outputs"].items()}
    out = deployed(profile).outputs
    for name, applies_to in CONDITIONAL_OUTPUTS.items():
        assert "empty " in titles[name], name
        if profile in applies_to:
            assert out.get(name), f"{name} is empty in the {profile} profile"
        else:
            assert out.get(name) in (None, "", {}), f"{name} does not apply to {profile} but is {out.get(name)!r}"


def test_always_free_costs_nothing(deployed):
    """Always Free: A1 Flex within 4 OCPUs / 24 GB in total, MySQL.Free, no paid extras."""
    values = deployed("always-free").first_plan.values
    vms = [v for a, v in values.items() if a.startswith("oci_core_instance.")]
    assert all(v["shape"] == "VM.Standard.A1.Flex" for v in vms)
    assert sum(v["shape_config"][0]["ocpus"] for v in vms) <= 4
    assert sum(v["shape_config"][0]["memory_in_gbs"] for v in vms) <= 24
    assert values["oci_mysql_mysql_db_system.mlflow"]["shape_name"] == "MySQL.Free"
    assert values["oci_mysql_mysql_db_system.mlflow"]["data_storage_size_in_gb"] == 50


def test_nothing_is_open_to_the_world_by_default(deployed):
    values = deployed("default").first_plan.values
    ingress = [v for a, v in values.items()
               if a.startswith("oci_core_network_security_group_security_rule.") and v["direction"] == "INGRESS"]
    from_anywhere = [v for v in ingress if v.get("source") == "0.0.0.0/0"]  # NSG peers: known after apply
    # only ICMP "fragmentation needed", which routers anywhere on a client's path send (path MTU discovery)
    assert [(v["protocol"], v["icmp_options"], v["tcp_options"]) for v in from_anywhere] == [
        ("1", [{"type": 3, "code": 4}], [])] * 2
    tcp = [v for v in ingress if v["protocol"] == "6"]
    ports = sorted(v["tcp_options"][0]["destination_port_range"][0]["min"] for v in tcp)
    assert ports == [443, 443, 1234, 3306, 33060]  # no SSH unless ssh_source_cidr is set
    security_list = values["oci_core_security_list.baseline[0]"]
    assert [r["source"] for r in security_list["ingress_security_rules"]] == ["10.0.0.0/16"]
    assert values["oci_objectstorage_bucket.artifacts"]["access_type"] == "NoPublicAccess"
