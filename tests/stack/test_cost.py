"""What each deployment profile costs a month, estimated from its real plan and the committed price
table, and README's cost table generated from the same numbers.

    UPDATE_README=1 .venv/bin/python -m pytest tests/stack/test_cost.py   # rewrite README's cost table
"""
import os
import re

import pytest
import yaml

from orm_pack.deploy.cost import estimate_plan, price_table, usage_note

from .conftest import PROFILES, REPO

pytestmark = pytest.mark.terraform

README = REPO / "README.md"
BEGIN, END = "<!-- BEGIN PROFILE COSTS -->", "<!-- END PROFILE COSTS -->"


def _estimate(deployed, profile):
    return estimate_plan(deployed(profile).first_plan.raw)


@pytest.mark.parametrize("profile", PROFILES)
def test_every_planned_resource_is_priced_or_free(deployed, profile):
    assert _estimate(deployed, profile).not_priced == ()


def test_the_always_free_profile_costs_nothing(deployed):
    estimate = _estimate(deployed, "always-free")
    assert estimate.beyond_free_tier == (), [line for line in estimate.lines if line.monthly]
    assert estimate.total == 0
    assert estimate.usage_based == ('oci_logging_log.mlflow["audit"]', 'oci_logging_log.mlflow["service"]',
                                    *(f'oci_monitoring_alarm.mlflow["{name}"]' for name in (
                                        "database", "disk", "down", "errors", "serving_alias", "serving_silent",
                                        "silent")),
                                    "oci_objectstorage_bucket.artifacts", "oci_objectstorage_bucket.runtime")
    # what is billed by use is named with its price and free allowance
    note, prices = usage_note(estimate), price_table()
    for name, service in (("Object Storage", "object_storage"), ("OCI Logging", "logging")):
        price, free = prices[service]["storage_gb_month"], prices[service]["always_free_gb"]
        assert re.search(rf"{name} {price} USD/GB-month (of logs )?after the first {free} GB", note), note


def test_the_default_profile_is_priced_from_the_table(deployed):
    """Two E5 VMs of 1 OCPU and 8 GB with default boot volumes, MySQL.2 with 50 GB, two reserved IPs."""
    prices = price_table()
    hours, e5, block, mysql = (prices["hours_per_month"], prices["compute_flex"]["VM.Standard.E5.Flex"],
                               prices["block_volume"], prices["mysql"])
    vm = (1 * e5["ocpu_hour"] + 8 * e5["memory_gb_hour"]) * hours
    database = mysql["ecpus"]["MySQL.2"] * mysql["ecpu_hour"] * hours + 50 * mysql["storage_gb_month"]
    # the first 200 GB of block volumes are Always Free: two default boot volumes fit in it
    assert 2 * block["platform_image_boot_volume_gb"] <= prices["always_free"]["block_volume_gb"]
    expected = 2 * vm + database + 2 * prices["reserved_public_ip_month"]
    assert _estimate(deployed, "default").total == pytest.approx(expected, abs=0.02)


def test_the_oke_profile_is_priced_as_its_nodes_and_a_free_control_plane(deployed):
    """OKE bills worker nodes as compute instances of their shape (each with its boot volume, 50 GB unless
    set) and nothing for a basic cluster's control plane (Oracle's OKE pricing page)."""
    prices = price_table()
    hours, e5, mysql = prices["hours_per_month"], prices["compute_flex"]["VM.Standard.E5.Flex"], prices["mysql"]
    estimate = _estimate(deployed, "oke")
    (cluster,) = [line for line in estimate.lines if line.address.startswith("oci_containerengine_cluster.")]
    assert (cluster.item, cluster.monthly) == ("OKE basic cluster", 0)
    node = (1 * e5["ocpu_hour"] + 8 * e5["memory_gb_hour"]) * hours
    database = mysql["ecpus"]["MySQL.2"] * mysql["ecpu_hour"] * hours + 50 * mysql["storage_gb_month"]
    assert 2 * prices["oke"]["node_boot_volume_gb"] <= prices["always_free"]["block_volume_gb"]
    assert estimate.total == pytest.approx(2 * node + database, abs=0.02)
    assert len([line for line in estimate.lines if line.item.startswith("VM.Standard.E5.Flex")]) == 2


def test_every_node_shape_the_form_offers_has_a_price():
    form = yaml.safe_load((REPO / "schema.yaml").read_text())["variables"]
    assert set(form["oke_node_shape"]["enum"]) <= set(price_table()["compute_flex"])


def cost_table(deployed) -> str:
    checked = price_table()["checked"]
    lines = [f"Estimated monthly cost of each profile at OCI list prices in USD (checked {checked}; the same table "
             "and arithmetic as `orm-pack plan`; storage and traffic are billed by use on top; with `oke`, the "
             "load balancer that Kubernetes creates for MLflow is not in the plan and is billed apart):", "",
             "| profile | a month | what is billed |", "|---|---|---|"]
    for profile in PROFILES:
        estimate = _estimate(deployed, profile)
        billed = sorted({line.item.split(",")[0] for line in estimate.lines if line.monthly})
        lines.append(f"| `{profile}` | {estimate.total:.2f} | {', '.join(billed) or 'nothing: Always Free'} |")
    return "\n".join(lines) + "\n"


def test_readme_shows_the_estimates(deployed):
    text = README.read_text()
    match = re.search(re.escape(BEGIN) + r"\n(.*?)" + re.escape(END), text, re.S)
    assert match, f"README.md has no {BEGIN} ... {END} block"
    expected = cost_table(deployed)
    if os.environ.get("UPDATE_README") == "1":
        README.write_text(text.replace(match.group(0), BEGIN + "\n" + expected + END))
        return
    assert match.group(1) == expected, "README's cost table is stale: run with UPDATE_README=1 (see this module)"
