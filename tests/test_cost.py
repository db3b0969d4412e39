"""The cost estimate's rules, on small plans written here: Always Free allowances, unknown shapes, and
a price for every shape the form offers."""
import re
from pathlib import Path

import yaml

from harness.project import stack_variables_text
from orm_pack.deploy.cost import estimate_plan, price_table

REPO_ROOT = Path(__file__).resolve().parents[1]


def _plan(*resources) -> dict:
    return {"planned_values": {"root_module": {"resources": [
        {"address": address, "mode": "managed", "type": kind, "values": values}
        for address, kind, values in resources]}}}


def _a1(ocpus, memory):
    return {"shape": "VM.Standard.A1.Flex", "shape_config": [{"ocpus": ocpus, "memory_in_gbs": memory}],
            "source_details": [{"source_type": "image", "boot_volume_size_in_gbs": None}]}


def test_a1_beyond_the_allowance_names_the_vm_that_pays():
    """Since June 2026 the A1 allowance is 1,500 OCPU hours and 9,000 GB hours a month (2 OCPUs, 12 GB)."""
    prices = price_table()
    rate, hours = prices["compute_flex"]["VM.Standard.A1.Flex"], prices["hours_per_month"]
    estimate = estimate_plan(_plan(("oci_core_instance.a", "oci_core_instance", _a1(2, 12)),
                                   ("oci_core_instance.b", "oci_core_instance", _a1(2, 12))))
    assert estimate.beyond_free_tier == ("oci_core_instance.b",)
    paid_ocpu_hours = 4 * hours - prices["always_free"]["compute_flex"]["VM.Standard.A1.Flex"]["ocpu_hours"]
    paid_gb_hours = 24 * hours - prices["always_free"]["compute_flex"]["VM.Standard.A1.Flex"]["memory_gb_hours"]
    expected = round(paid_ocpu_hours * rate["ocpu_hour"] + paid_gb_hours * rate["memory_gb_hour"], 2)
    assert estimate.total == expected
    assert [line.note for line in estimate.lines if line.address == "oci_core_instance.b"] == [
        "beyond the Always Free A1 allowance"]


def test_boot_volumes_beyond_200_gb_are_billed():
    big = {**_a1(1, 6), "source_details": [{"boot_volume_size_in_gbs": 150}]}
    estimate = estimate_plan(_plan(("oci_core_instance.a", "oci_core_instance", big),
                                   ("oci_core_instance.b", "oci_core_instance", big)))
    assert estimate.beyond_free_tier == ("oci_core_instance.b (boot volume)",)


def test_an_unknown_shape_or_type_is_reported_not_guessed():
    estimate = estimate_plan(_plan(("oci_core_instance.gpu", "oci_core_instance", {"shape": "VM.GPU.A10.1"}),
                                   ("oci_load_balancer.x", "oci_load_balancer", {})))
    assert estimate.not_priced == ("oci_core_instance.gpu", "oci_load_balancer.x")
    assert estimate.total == 0


def test_every_shape_the_form_offers_has_a_price():
    form = yaml.safe_load((REPO_ROOT / "schema.yaml").read_text())["variables"]
    prices = price_table()
    for name in ("tracking_shape", "serving_shape"):
        assert set(form[name]["enum"]) <= set(prices["compute_flex"]), name
    mysql_shapes = set(prices["mysql"]["ecpus"]) | set(prices["mysql"]["free_shapes"])
    variables_tf = stack_variables_text()
    offered = re.search(r'contains\((\[[^]]*"MySQL\.[^]]*\]), var\.mysql_shape\)', variables_tf).group(1)
    assert set(yaml.safe_load(offered)) <= mysql_shapes


def test_the_price_table_is_dated():
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", price_table()["checked"])
