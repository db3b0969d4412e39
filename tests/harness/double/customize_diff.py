"""Replacements the provider decides in code rather than with ForceNew flags in its schema.

The oracle/oci provider's `CustomizeDiff` functions (read at tag v7.19.0 of oracle/terraform-provider-oci)
force a new object in three cases among the types this project uses; the schema the double serves
carries ForceNew flags only, so these rules are taught here:

- oci_core_instance (internal/service/core/core_instance_resource.go, CoreInstanceResource):
  `ForceNewIfChange("metadata", …)` replaces the instance when `metadata["user_data"]` or
  `metadata["ssh_authorized_keys"]` differs (a key that is added or removed compares as ""); any other
  metadata key is updated in place. `ForceNewIfChange("platform_config.0.type", …)` and two `ForceNewIf`
  rules on `platform_config.0.config_map` / `is_symmetric_multi_threading_enabled` replace it when the
  old or new platform is bare metal (any type but "", INTEL_VM and AMD_VM).
- oci_containerengine_cluster (internal/service/containerengine/containerengine_cluster_resource.go):
  `ForceNewIfChange("endpoint_config.0.subnet_id", …)` replaces the cluster when the API endpoint's
  subnet changes from a non-empty value (setting it the first time migrates the cluster in place).
- oci_vault_secret's CustomizeDiff only marks `current_version_number` unknown; it replaces nothing.
"""

VM_PLATFORMS = ("", "INTEL_VM", "AMD_VM")


def _first(value) -> dict:
    if isinstance(value, list):
        return (value[0] or {}) if value else {}
    return value or {}


def _instance(prior: dict, planned: dict) -> list[str]:
    reasons = []
    old, new = prior.get("metadata") or {}, planned.get("metadata")
    keys = ("user_data", "ssh_authorized_keys")
    if not isinstance(new, dict):  # unknown until apply: it may differ
        new = {} if new is None else {key: new for key in keys}
    if any(old.get(key, "") != new.get(key, "") for key in keys):
        reasons.append("metadata")
    old_platform, new_platform = _first(prior.get("platform_config")), _first(planned.get("platform_config"))
    bare_metal = any((p.get("type") or "") not in VM_PLATFORMS for p in (old_platform, new_platform))
    changed = any(old_platform.get(k) != new_platform.get(k)
                  for k in ("type", "config_map", "is_symmetric_multi_threading_enabled"))
    if bare_metal and changed:
        reasons.append("platform_config")
    return reasons


def _cluster(prior: dict, planned: dict) -> list[str]:
    old = _first(prior.get("endpoint_config")).get("subnet_id") or ""
    new = _first(planned.get("endpoint_config")).get("subnet_id") or ""
    return ["endpoint_config"] if old and old != new else []


RULES = {"oci_core_instance": _instance, "oci_containerengine_cluster": _cluster}


def replace_reasons(type_name: str, prior: dict, planned: dict) -> list[str]:
    """Top-level attribute or block names whose change replaces the object under the provider's
    CustomizeDiff rules ([] for types without such rules)."""
    rule = RULES.get(type_name)
    return rule(prior, planned) if rule else []
