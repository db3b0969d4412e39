"""What a Terraform plan will do, resource by resource, and what data it puts at risk.

Read from Terraform's JSON plan (`terraform show -json`, Resource Manager's get_job_tf_plan JSON):

    summary = PlanSummary.from_plan(plan)
    summary.changes        # every resource with its action: create, update, replace, delete
    summary.data_at_risk   # replaced or deleted resources that hold data (database, bucket, secrets)
"""
from __future__ import annotations

from dataclasses import dataclass

# Resource types whose replacement or deletion loses data, and what is lost.
DATA_HOLDERS = {
    "oci_mysql_mysql_db_system": "the MLflow database: experiments, runs, metrics and the model registry",
    "oci_objectstorage_bucket": "the MLflow artifacts: models and logged files",
    "oci_vault_secret": "a secret's value",
    "oci_kms_key": "a key: whatever it encrypts becomes unreadable",
    "oci_kms_vault": "a vault with its keys and secrets",
    "oci_core_volume": "a block volume's data",
}
ACTIONS = ("create", "update", "replace", "delete")


@dataclass(frozen=True)
class ResourceChange:
    address: str
    type: str
    action: str                      # create, update, replace or delete
    forced_by: tuple[str, ...] = ()  # for a replacement: the attributes that force it

    @property
    def data_loss(self) -> str | None:
        """What is lost when this change is applied, or None."""
        if self.action in ("replace", "delete"):
            return DATA_HOLDERS.get(self.type)
        return None


def _action(actions: list[str]) -> str | None:
    if "create" in actions and "delete" in actions:
        return "replace"
    for action in ("create", "update", "delete"):
        if action in actions:
            return action
    return None  # no-op, read


def _forced_by(resource_change: dict) -> tuple[str, ...]:
    paths = resource_change.get("change", {}).get("replace_paths") or []
    return tuple(sorted({".".join(str(step) for step in path) for path in paths if path}))


@dataclass(frozen=True)
class PlanSummary:
    changes: tuple[ResourceChange, ...]
    output_changes: tuple[str, ...]   # names of outputs the plan changes

    @classmethod
    def from_plan(cls, plan: dict) -> "PlanSummary":
        changes = []
        for rc in plan.get("resource_changes") or []:
            if rc.get("mode", "managed") != "managed":
                continue
            action = _action(rc.get("change", {}).get("actions") or [])
            if action:
                changes.append(ResourceChange(rc["address"], rc.get("type", "?"), action,
                                              _forced_by(rc) if action == "replace" else ()))
        outputs = tuple(sorted(name for name, oc in (plan.get("output_changes") or {}).items()
                               if set(oc.get("actions") or []) - {"no-op"}))
        return cls(tuple(sorted(changes, key=lambda c: (ACTIONS.index(c.action), c.address))), outputs)

    def count(self, action: str) -> int:
        return sum(1 for c in self.changes if c.action == action)

    @property
    def add(self) -> int:
        """As Terraform counts: a replacement is one to add and one to destroy."""
        return self.count("create") + self.count("replace")

    @property
    def change(self) -> int:
        return self.count("update")

    @property
    def destroy(self) -> int:
        return self.count("delete") + self.count("replace")

    @property
    def data_at_risk(self) -> tuple[ResourceChange, ...]:
        return tuple(c for c in self.changes if c.data_loss)

    @property
    def no_changes(self) -> bool:
        return not (self.changes or self.output_changes)


def data_held_by(address: str) -> str | None:
    """What a resource at `address` (type.name[index], maybe inside module.x.) holds, if it holds data."""
    parts = [p for p in address.split(".") if p]
    while parts and parts[0] == "module":
        parts = parts[2:]
    return DATA_HOLDERS.get(parts[0]) if parts else None
