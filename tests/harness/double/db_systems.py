"""MySQL DB systems as the MySQL service creates and lists them.

- CreateDbSystem with an `ipAddress` gives the DB system that private address; its primary endpoint
  carries the same address (DbSystem.endpoints, ports 3306 and 33060).
- ListDbSystems answers DbSystemSummary items, and the provider's data source copies exactly their
  fields (internal/service/mysql/mysql_mysql_db_systems_data_source.go, SetData): no top-level
  `ip_address` or `subnet_id` there, the address is only under `endpoints`.
- A deleted DB system stays listed in state DELETED (ListDbSystems' lifecycleState filter offers DELETED).
"""
from .memory import opened

RESOURCE = "oci_mysql_mysql_db_system"
DATA_SOURCE = "oci_mysql_mysql_db_systems"
# The DbSystemSummary fields the data source sets; everything else in an element stays null.
SUMMARY_FIELDS = ("id", "compartment_id", "display_name", "description", "availability_domain", "fault_domain",
                  "freeform_tags", "defined_tags", "is_highly_available", "is_heat_wave_cluster_attached",
                  "mysql_version", "time_created", "time_updated", "endpoints")


def with_endpoint(state: dict) -> dict:
    """A created DB system's primary endpoint, at its address."""
    state["endpoints"] = [{
        "hostname": state.get("hostname_label") or "", "ip_address": state["ip_address"], "modes": ["READ", "WRITE"],
        "port": 3306, "port_x": 33060, "resource_id": state["id"], "resource_type": "DBSYSTEM",
        "status": "ACTIVE", "status_details": "",
    }]
    return state


def record(state: dict) -> None:
    summary = {name: state.get(name) for name in SUMMARY_FIELDS}
    with opened() as memory:
        memory.setdefault("db_systems", {})[state["id"]] = {**summary, "state": "ACTIVE"}


def deleted(prior: dict) -> None:
    with opened() as memory:
        listed = memory.get("db_systems", {}).get(prior["id"])
        if listed:
            listed["state"] = "DELETED"


def listed() -> list[dict]:
    """The ListDbSystems answer, newest first (before the data source's own arguments and filters)."""
    with opened() as memory:
        return list(reversed(list(memory.get("db_systems", {}).values())))
