"""An estimated monthly cost of what a Terraform plan leaves deployed, from the dated list prices in
prices.json, with the Always Free allowances taken off.

    estimate = estimate_plan(plan)      # Terraform's JSON plan
    estimate.total, estimate.lines, estimate.beyond_free_tier

An estimate, not a bill: list prices in USD for a month of `hours_per_month` hours, the free
allowances counted as if this deployment were the tenancy's only user of them, usage (stored
artifacts, backups beyond the free quota, traffic) not included.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PRICES_FILE = Path(__file__).with_name("prices.json")


@cache
def price_table(path: Path = PRICES_FILE) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


@dataclass(frozen=True)
class CostLine:
    address: str
    item: str            # what is priced, e.g. "VM.Standard.E5.Flex, 1 OCPU, 8 GB"
    list_monthly: float  # at list price
    monthly: float       # after the Always Free allowance
    note: str = ""


@dataclass(frozen=True)
class CostEstimate:
    lines: tuple[CostLine, ...]
    currency: str
    checked: str                      # the date the price table was checked
    usage_based: tuple[str, ...]      # addresses billed by what they store
    not_priced: tuple[str, ...]       # addresses of types the table does not know

    @property
    def total(self) -> float:
        return round(sum(line.monthly for line in self.lines), 2)

    @property
    def beyond_free_tier(self) -> tuple[str, ...]:
        """Addresses of what costs money: every one of them is outside the Always Free allowance."""
        return tuple(dict.fromkeys(line.address for line in self.lines if line.monthly > 0))


def planned_resources(plan: dict) -> list[dict]:
    """Managed resources in the plan's planned values (what exists after the apply), child modules included."""
    found: list[dict] = []

    def walk(module: dict) -> None:
        found.extend(r for r in module.get("resources") or [] if r.get("mode", "managed") == "managed")
        for child in module.get("child_modules") or []:
            walk(child)

    walk((plan.get("planned_values") or {}).get("root_module") or {})
    return sorted(found, key=lambda r: r["address"])


class _Allowance:
    """What is left of one Always Free allowance while lines take from it, in address order."""

    def __init__(self, amount: float):
        self.left = amount

    def take(self, wanted: float) -> float:
        taken = min(self.left, wanted)
        self.left -= taken
        return taken


def _first(values: dict, key: str) -> dict:
    block = values.get(key) or [{}]
    return block[0] if isinstance(block, list) and block else (block if isinstance(block, dict) else {})


def _flex_size(shape_config: dict) -> tuple[float, float]:
    """(OCPUs, GB of memory) of a flexible shape's config block."""
    return float(shape_config.get("ocpus") or 0), float(shape_config.get("memory_in_gbs") or 0)


def _flex_hourly(rate: dict, ocpus: float, memory: float) -> float:
    return ocpus * rate["ocpu_hour"] + memory * rate["memory_gb_hour"]


def estimate_plan(plan: dict, prices: dict | None = None) -> CostEstimate:
    prices = prices or price_table()
    hours = prices["hours_per_month"]
    free = prices["always_free"]
    free_compute = {shape: (_Allowance(a["ocpu_hours"]), _Allowance(a["memory_gb_hours"]))
                    for shape, a in free["compute_flex"].items()}
    free_block_gb = _Allowance(free["block_volume_gb"])
    block = prices["block_volume"]
    block_gb_month = block["storage_gb_month"] + block["performance_vpu_gb_month"] * block["balanced_vpus_per_gb"]
    lines: list[CostLine] = []
    usage_based: list[str] = []
    not_priced: list[str] = []

    def compute_lines(address: str, shape: str, ocpus: float, memory: float, boot_gb: float) -> None:
        """A VM (or an OKE worker node, which OKE bills as the same instance): its shape, less what is
        left of the Always Free allowance, and its boot volume, less the free block storage."""
        rate = prices["compute_flex"][shape]
        list_price = _flex_hourly(rate, ocpus, memory) * hours
        monthly, note = list_price, "price unconfirmed" if rate.get("unconfirmed") else ""
        if shape in free_compute:
            free_ocpu, free_memory = free_compute[shape]
            paid_ocpu_hours = ocpus * hours - free_ocpu.take(ocpus * hours)
            paid_memory_hours = memory * hours - free_memory.take(memory * hours)
            monthly = _flex_hourly(rate, paid_ocpu_hours, paid_memory_hours)
            note = "Always Free" if monthly < 0.005 else "beyond the Always Free A1 allowance"
        lines.append(CostLine(address, f"{shape}, {ocpus:g} OCPU, {memory:g} GB", round(list_price, 2),
                              round(monthly, 2), note))
        paid_gb = boot_gb - free_block_gb.take(boot_gb)
        lines.append(CostLine(f"{address} (boot volume)", f"boot volume, {boot_gb:g} GB",
                              round(boot_gb * block_gb_month, 2), round(paid_gb * block_gb_month, 2),
                              "Always Free" if paid_gb == 0 else ""))

    for resource in planned_resources(plan):
        address, kind, values = resource["address"], resource["type"], resource.get("values") or {}
        if kind == "oci_core_instance":
            shape = values.get("shape")
            if shape not in prices["compute_flex"]:
                not_priced.append(address)
                continue
            source = _first(values, "source_details")
            compute_lines(address, shape, *_flex_size(_first(values, "shape_config")),
                          float(source.get("boot_volume_size_in_gbs") or block["platform_image_boot_volume_gb"]))
        elif kind == "oci_containerengine_node_pool":
            # OKE bills each worker node as a compute instance of the pool's shape, with its boot volume.
            shape = values.get("node_shape")
            if shape not in prices["compute_flex"]:
                not_priced.append(address)
                continue
            size = _flex_size(_first(values, "node_shape_config"))
            boot_gb = float(_first(values, "node_source_details").get("boot_volume_size_in_gbs")
                            or prices["oke"]["node_boot_volume_gb"])
            for node in range(int(_first(values, "node_config_details").get("size") or 0)):
                compute_lines(f"{address} (node {node + 1})", shape, *size, boot_gb)
        elif kind == "oci_containerengine_cluster":
            if values.get("type") != "BASIC_CLUSTER":
                not_priced.append(address)
                continue
            monthly = round(prices["oke"]["basic_cluster_hour"] * hours, 2)
            lines.append(CostLine(address, "OKE basic cluster", monthly, monthly,
                                  "no control-plane charge; the load balancer Kubernetes creates is billed apart"))
        elif kind == "oci_datascience_notebook_session":
            # Data Science bills a notebook session as its compute shape and its block storage.
            config = _first(values, "notebook_session_config_details")
            shape = config.get("shape")
            rate = prices["compute_flex"].get(shape)
            if rate is None:
                not_priced.append(address)
                continue
            ocpus, memory = _flex_size(_first(config, "notebook_session_shape_config_details"))
            monthly = _flex_hourly(rate, ocpus, memory) * hours
            lines.append(CostLine(address, f"notebook session, {shape}, {ocpus:g} OCPU, {memory:g} GB",
                                  round(monthly, 2), round(monthly, 2),
                                  "price unconfirmed" if rate.get("unconfirmed") else "while the session is active"))
            storage = float(config.get("block_storage_size_in_gbs") or 50)
            lines.append(CostLine(f"{address} (block storage)", f"notebook block storage, {storage:g} GB",
                                  round(storage * block_gb_month, 2), round(storage * block_gb_month, 2), ""))
        elif kind == "oci_mysql_mysql_db_system":
            shape = values.get("shape_name")
            storage = float(values.get("data_storage_size_in_gb") or 50)
            if shape in prices["mysql"]["free_shapes"]:
                lines.append(CostLine(address, f"{shape}, {storage:g} GB", 0.0, 0.0, "Always Free"))
            elif shape in prices["mysql"]["ecpus"]:
                ecpus = prices["mysql"]["ecpus"][shape]
                monthly = ecpus * prices["mysql"]["ecpu_hour"] * hours + storage * prices["mysql"]["storage_gb_month"]
                lines.append(CostLine(address, f"{shape} ({ecpus} ECPU), {storage:g} GB", round(monthly, 2),
                                      round(monthly, 2), "backups free up to the storage size"))
            else:
                not_priced.append(address)
        elif kind == "oci_core_public_ip":
            if values.get("lifetime") == "RESERVED":
                price = prices["reserved_public_ip_month"]
                lines.append(CostLine(address, "reserved public IP", price, price, "no charge" if not price else ""))
        elif kind in ("oci_objectstorage_bucket", "oci_logging_log", "oci_monitoring_alarm", "oci_ons_subscription"):
            usage_based.append(address)
        elif kind not in prices["no_charge_types"]:
            not_priced.append(address)
    return CostEstimate(tuple(lines), prices["currency"], prices["checked"], tuple(usage_based), tuple(not_priced))


def usage_note(estimate: CostEstimate, prices: dict | None = None) -> str:
    """One sentence on what the estimate leaves out."""
    prices = prices or price_table()
    storage = prices["object_storage"]
    parts = ["stored artifacts, backups beyond the free quota and traffic are billed by use"]
    if any(".oci_objectstorage_bucket." in f".{a}" for a in estimate.usage_based):
        parts.append(f"Object Storage {storage['storage_gb_month']} {estimate.currency}/GB-month after the first "
                     f"{storage['always_free_gb']} GB")
    if any(".oci_monitoring_alarm." in f".{a}" for a in estimate.usage_based):
        monitoring = prices["monitoring"]
        parts.append(f"Monitoring beyond {monitoring['always_free_million_datapoints_ingested']} million datapoints "
                     f"posted and {monitoring['always_free_million_datapoints_retrieved']} million read a month "
                     "(the metrics and alarms use a small part of it)")
    if any(".oci_ons_subscription." in f".{a}" for a in estimate.usage_based):
        notifications = prices["notifications"]
        parts.append(f"alarm e-mails beyond {notifications['always_free_emails']} a month "
                     f"({notifications['emails_per_thousand']} {estimate.currency} per 1,000)")
    if any(".oci_logging_log." in f".{a}" for a in estimate.usage_based):
        logging = prices["logging"]
        parts.append(f"OCI Logging {logging['storage_gb_month']} {estimate.currency}/GB-month of logs after the first "
                     f"{logging['always_free_gb']} GB")
    return "; ".join(parts)
