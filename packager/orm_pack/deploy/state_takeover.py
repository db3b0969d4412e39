"""Pointing a stack's Terraform state at the DB system a rollback restored.

A restored DB system is a new one (HeatWave restores a backup only into a new DB system). Terraform would
otherwise read the deleted one's OCID, find it gone and plan a new, empty DB system. So the state's
`oci_mysql_mysql_db_system.mlflow` is given the new OCID and the `source` block the service reports for a
system made from a backup; Resource Manager then takes the edited state in an import-state job.

`source` is Optional, Computed and ForceNew in the provider (mysql_mysql_db_system_resource.go): a
configuration without it keeps the refreshed value, so the next plan leaves the restored system alone.
"""
from __future__ import annotations

import copy

DB_SYSTEM = ("oci_mysql_mysql_db_system", "mlflow")


class TakeoverError(Exception):
    pass


def db_system_id(state: dict) -> str:
    return _instance(state)["attributes"]["id"]


def _instance(state: dict) -> dict:
    found = [resource for resource in state.get("resources") or []
             if resource.get("mode") == "managed" and (resource.get("type"), resource.get("name")) == DB_SYSTEM
             and not resource.get("module")]
    if len(found) != 1 or len(found[0].get("instances") or []) != 1:
        raise TakeoverError(f"the stack's state has no single {'.'.join(DB_SYSTEM)}: nothing to point at the "
                            "restored DB system")
    return found[0]["instances"][0]


def take_over(state: dict, old_id: str, new_id: str, backup_id: str) -> dict:
    """A copy of `state` whose DB system is `new_id`, restored from `backup_id`; its serial one higher, as
    Terraform numbers every new state of the same lineage."""
    edited = copy.deepcopy(state)
    instance = _instance(edited)
    attributes = instance["attributes"]
    if attributes.get("id") != old_id:
        raise TakeoverError(f"the stack's state names DB system {attributes.get('id')}, not {old_id}: it changed "
                            "since the upgrade started; nothing was imported")
    attributes["id"] = new_id
    # What the provider's Read stores: the service reports the type and the backup; the provider keeps its
    # other string fields as their zero value.
    attributes["source"] = [{"source_type": "BACKUP", "backup_id": backup_id, "db_system_id": "",
                             "recovery_point": "", "source_url": ""}]
    for endpoint in attributes.get("endpoints") or []:
        if endpoint.get("resource_id") == old_id:
            endpoint["resource_id"] = new_id
    edited["serial"] = int(edited.get("serial", 0)) + 1
    return edited
