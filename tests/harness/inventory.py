"""YAML inventories in the style of cloud-foundation-fabric: tfvars in; counts, values, outputs out."""
from pathlib import Path

import yaml


def load_inventory(path: Path) -> dict:
    """A YAML inventory: `tfvars` in; expected `counts`, `values` and `outputs` out."""
    inventory = yaml.safe_load(path.read_text()) or {}
    unknown = set(inventory) - {"description", "tfvars", "fixtures", "counts", "values", "outputs"}
    assert not unknown, f"{path.name}: unknown inventory keys {sorted(unknown)}"
    return inventory


def check_inventory(inventory: dict, values: dict, counts: dict, outputs: dict) -> None:
    """Assert a plan against an inventory: plan values on the left, expectations on the right."""
    if "counts" in inventory:
        assert counts == inventory["counts"]
    for address, expected in (inventory.get("values") or {}).items():
        assert address in values, f"{address} is not in the plan; planned: {sorted(values)}"
        _assert_subset(values[address], expected, address)
    for name, expected in (inventory.get("outputs") or {}).items():
        assert name in outputs, f"output {name} is not in the plan; planned: {sorted(outputs)}"
        if expected != "__known_after_apply__":
            _assert_subset(outputs[name], expected, f"output {name}")


def _assert_subset(actual, expected, where: str) -> None:
    """Dicts match on the keys the inventory names; lists and scalars match exactly."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key, value in expected.items():
            assert key in actual, f"{where}: no attribute {key}"
            _assert_subset(actual[key], value, f"{where}.{key}")
    elif isinstance(expected, list) and isinstance(actual, list) and all(isinstance(e, dict) for e in expected):
        assert len(actual) == len(expected), f"{where}: {len(actual)} elements, expected {len(expected)}"
        for i, (a, e) in enumerate(zip(actual, expected, strict=False)):
            _assert_subset(a, e, f"{where}[{i}]")
    else:
        assert actual == expected, f"{where}: planned {actual!r}, expected {expected!r}"
