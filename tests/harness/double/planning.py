"""Plan-time behaviour of an SDKv2 provider, on plain values (dicts/lists, `Unknown` for unknowns).

- a new or replaced object: every computed attribute left null becomes unknown, recursively;
- an update keeps the prior value of computed attributes the configuration leaves null;
- a change to a ForceNew attribute (flag `x_force_new` from the overlay) requires replacement;
- a block the provider declares Optional and Computed (flag `x_computed`) keeps its prior value when the
  configuration leaves it out, so its ForceNew does not fire.
"""
from tf.types import Unknown


def _is_single(nested: dict) -> bool:
    return nested["nesting_mode"] in ("single", "group")


def _elements(nested: dict, value):
    if value is None or value is Unknown:
        return []
    if _is_single(nested):
        return [value]
    if nested["nesting_mode"] == "map":
        return list(value.values())
    return list(value)


def mark_computed_unknown(block: dict, value):
    """Null computed attributes become unknown: the provider fills them in at apply."""
    if not isinstance(value, dict):
        return value
    out = dict(value)
    for name, attr in block.get("attributes", {}).items():
        if attr.get("computed") and out.get(name) is None:
            out[name] = Unknown
    for name, nested in block.get("block_types", {}).items():
        inner = out.get(name)
        if inner is None or inner is Unknown:
            continue
        if _is_single(nested):
            out[name] = mark_computed_unknown(nested["block"], inner)
        elif nested["nesting_mode"] == "map":
            out[name] = {k: mark_computed_unknown(nested["block"], v) for k, v in inner.items()}
        else:
            out[name] = [mark_computed_unknown(nested["block"], v) for v in inner]
    return out


def keep_prior_computed(block: dict, proposed, prior):
    """On update, computed attributes the configuration leaves null keep their prior value."""
    if not isinstance(proposed, dict) or not isinstance(prior, dict):
        return proposed
    out = dict(proposed)
    for name, attr in block.get("attributes", {}).items():
        if attr.get("computed") and out.get(name) is None and prior.get(name) is not None:
            out[name] = prior[name]
    for name, nested in block.get("block_types", {}).items():
        new, old = out.get(name), prior.get(name)
        if nested.get("x_computed") and not new and old:
            # Optional and Computed in the provider (SDKv2): left out of the configuration, it keeps what the
            # service reported (e.g. a DB system's `source` once restored from a backup).
            out[name] = old
            continue
        if _is_single(nested):
            out[name] = keep_prior_computed(nested["block"], new, old)
        elif nested["nesting_mode"] == "list" and isinstance(new, list) and isinstance(old, list):
            out[name] = [keep_prior_computed(nested["block"], n, o) for n, o in zip(new, old, strict=False)] + new[len(old):]
        elif nested["nesting_mode"] == "set" and isinstance(new, list) and isinstance(old, list):
            out[name] = _merge_set(nested["block"], new, old)
    return out


def kept_computed_block(block: dict, proposed, planned) -> bool:
    """Whether keep_prior_computed kept a computed block the configuration leaves out (top level)."""
    if not isinstance(proposed, dict) or not isinstance(planned, dict):
        return False
    return any(nested.get("x_computed") and not proposed.get(name) and planned.get(name)
               for name, nested in block.get("block_types", {}).items())


def _merge_set(block: dict, new: list, old: list) -> list:
    # Set elements have no index: an element of the prior state is "the same" as a proposed one
    # when it agrees on every attribute the configuration sets (what the SDK's set hash compares).
    unmatched = list(old)
    merged = []
    for element in new:
        match = next((o for o in unmatched if _agrees(block, element, o)), None)
        if match is not None:
            unmatched.remove(match)
            element = keep_prior_computed(block, element, match)
        merged.append(element)
    return merged


def _agrees(block: dict, proposed, prior) -> bool:
    if not isinstance(proposed, dict) or not isinstance(prior, dict):
        return proposed == prior
    for name in block.get("attributes", {}):
        if proposed.get(name) is not None and proposed.get(name) != prior.get(name):
            return False
    for name, nested in block.get("block_types", {}).items():
        new, old = proposed.get(name), prior.get(name)
        if not new:
            continue
        if _is_single(nested):
            if not _agrees(nested["block"], new, old):
                return False
        elif not isinstance(old, list) or len(new) != len(old) or not all(
            _agrees(nested["block"], a, b) for a, b in zip(new, old, strict=False)
        ):
            return False
    return True


def _changed(old, new) -> bool:
    if new is Unknown:
        return old is not None
    return old != new


def _contains_force_new(block: dict) -> bool:
    return any(a.get("x_force_new") for a in block.get("attributes", {}).values()) or any(
        n.get("x_force_new") or _contains_force_new(n["block"]) for n in block.get("block_types", {}).values()
    )


def replace_reasons(block: dict, prior: dict, planned: dict) -> list[str]:
    """Top-level attribute/block names whose ForceNew content changed (so the object is replaced)."""
    reasons = []
    for name, attr in block.get("attributes", {}).items():
        if attr.get("x_force_new") and _changed(prior.get(name), planned.get(name)):
            reasons.append(name)
    for name, nested in block.get("block_types", {}).items():
        if not (nested.get("x_force_new") or _contains_force_new(nested["block"])):
            continue
        old, new = _elements(nested, prior.get(name)), _elements(nested, planned.get(name))
        if nested.get("x_force_new") and len(old) != len(new):
            reasons.append(name)
        elif any(replace_reasons(nested["block"], o, n) for o, n in zip(old, new, strict=False)):
            reasons.append(name)
    return reasons


def forget_computed(block: dict, value: dict) -> dict:
    """A replacement gets new values for every computed-only attribute (and a new id)."""
    out = dict(value)
    for name, attr in block.get("attributes", {}).items():
        if attr.get("computed") and not attr.get("optional") and not attr.get("required"):
            out[name] = None
    if "id" in block.get("attributes", {}):
        out["id"] = None
    return out
