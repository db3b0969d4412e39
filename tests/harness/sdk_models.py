"""A JSON document checked against an OCI API model as the oci SDK describes it: its fields (`attribute_map`), their
types (`swagger_types`), which are required ("**[Required]**" in the field's documentation) and the values an enum
allows ("Allowed values for this property are: ..."). The SDK is generated from the service's API specification, so
a document it finds nothing wrong with has the shape the service takes; what is inside a field typed `object` is the
service's own business and is not looked at."""
from __future__ import annotations

import re

ALLOWED = re.compile(r"Allowed values for this property are: (.*?)(?:\. |$)")
QUOTED = re.compile(r"\"([^\"]+)\"|'([^']+)'")
LIST = re.compile(r"^list\[(.+)\]$")
DICT = re.compile(r"^dict\(str, (.+)\)$")
SCALARS = {"str": str, "bool": bool, "int": int, "float": (int, float), "datetime": str}


def _allowed(doc: str) -> set[str]:
    found = ALLOWED.search(" ".join(doc.split()))
    values = {a or b for a, b in QUOTED.findall(found.group(1))} if found else set()
    return values - {"UNKNOWN_ENUM_VALUE"}


def problems(document, model: str, models, where: str = "$") -> list[str]:
    """What keeps `document` (parsed JSON) from being the model named `model` of the SDK module `models` (e.g.
    "ManagementDashboardImportDetails" of oci.management_dashboard.models); empty when nothing does."""
    if not isinstance(document, dict):
        return [f"{where}: an object is expected, not {type(document).__name__}"]
    model_class = getattr(models, model)
    instance = model_class()
    names = {json_name: attribute for attribute, json_name in instance.attribute_map.items()}
    found = [f"{where}.{key}: not a field of {model}" for key in document if key not in names]
    for json_name, attribute in names.items():
        doc = getattr(model_class, attribute).__doc__ or ""
        value = document.get(json_name)
        if value is None:
            if "**[Required]**" in doc:
                found.append(f"{where}.{json_name}: required by {model}")
            continue
        found += _typed(value, instance.swagger_types[attribute], models, f"{where}.{json_name}")
        allowed = _allowed(doc)
        if allowed and value not in allowed:
            found.append(f"{where}.{json_name}: {value!r} is not one of {sorted(allowed)}")
    return found


def _typed(value, type_name: str, models, where: str) -> list[str]:
    if type_name == "object":
        return []
    if type_name in SCALARS:
        wrong = not isinstance(value, SCALARS[type_name]) or (type_name in ("int", "float") and isinstance(value, bool))
        return [f"{where}: {type_name} expected, not {value!r}"] if wrong else []
    listed, mapped = LIST.match(type_name), DICT.match(type_name)
    if listed:
        if not isinstance(value, list):
            return [f"{where}: a list expected, not {type(value).__name__}"]
        return [problem for i, item in enumerate(value) for problem in _typed(item, listed[1], models, f"{where}[{i}]")]
    if mapped:
        if not isinstance(value, dict):
            return [f"{where}: an object expected, not {type(value).__name__}"]
        return [problem for key, item in value.items() for problem in _typed(item, mapped[1], models, f"{where}.{key}")]
    return problems(value, type_name, models, where)
