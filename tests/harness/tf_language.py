"""What Terraform 1.5 (the version Resource Manager runs) cannot read, found statically.

This machine has Terraform 1.11 only, which accepts everything 1.5 does and more; so the features
Terraform added after 1.5 are refused by reading the HCL. Each rule names the release that brought the
feature (Terraform's CHANGELOG):
- `removed` blocks (1.7), `import` blocks with `for_each` (1.7; a plain `import` block is 1.5);
- provider-defined functions, `provider::name::function(…)` (1.8);
- ephemeral resources, variables and outputs (1.10), write-only `*_wo` arguments (1.11);
- the functions templatestring (1.9), issensitive (1.8), ephemeralasnull (1.10);
- a variable's validation that reads another variable (1.9: before it, a condition sees only its own).
"""
import re
from pathlib import Path

import hcl2

NEWER_BLOCKS = {"removed": "1.7", "ephemeral": "1.10"}
NEWER_FUNCTIONS = {"templatestring": "1.9", "issensitive": "1.8", "ephemeralasnull": "1.10"}
_PROVIDER_FUNCTION = re.compile(r"\bprovider::[A-Za-z0-9_-]+::")
_FUNCTION_CALL = re.compile(r"\b([a-z_][a-z0-9_]*)\s*\(")
_VAR = re.compile(r"\bvar\.([A-Za-z_][A-Za-z0-9_-]*)")


def _label(key: str) -> str:
    return key.strip('"')


def _strings(node, path=()):
    """(path, text) of every string in a parsed file."""
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, path + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _strings(value, path + (index,))


def _keys(node, path=()):
    """(path, key) of every attribute or block name in a parsed file."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield path, key
            yield from _keys(value, path + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _keys(value, path + (index,))


def problems_in(text: str, where: str) -> list[str]:
    """What Terraform 1.5 would refuse in one .tf file's text, one line each."""
    document = hcl2.loads(text)
    found = []
    for block, since in NEWER_BLOCKS.items():
        if document.get(block):
            found.append(f"{where}: a `{block}` block needs Terraform {since}")
    for block in document.get("import") or []:
        if "for_each" in block:
            found.append(f"{where}: an `import` block with for_each needs Terraform 1.7")
    for kind in ("variable", "output"):
        for entry in document.get(kind) or []:
            for name, body in entry.items():
                if body.get("ephemeral") is not None:
                    found.append(f"{where}: {kind} {_label(name)} is ephemeral, which needs Terraform 1.10")
    for path, key in _keys(document):
        if isinstance(key, str) and key.endswith("_wo") and path and path[0] == "resource":
            found.append(f"{where}: write-only argument {key} needs Terraform 1.11")
    for _path, text_value in _strings(document):
        if _PROVIDER_FUNCTION.search(text_value):
            found.append(f"{where}: a provider-defined function needs Terraform 1.8 ({text_value[:60]})")
        for function in _FUNCTION_CALL.findall(text_value):
            if function in NEWER_FUNCTIONS:
                found.append(f"{where}: {function}() needs Terraform {NEWER_FUNCTIONS[function]}")
    for entry in document.get("variable") or []:
        for name, body in entry.items():
            own = _label(name)
            for validation in body.get("validation") or []:
                others = sorted(set(_VAR.findall(str(validation.get("condition", "")))) - {own})
                if others:
                    found.append(f"{where}: variable {own}'s validation reads var.{', var.'.join(others)}, which "
                                 "needs Terraform 1.9 (move the rule to a precondition)")
    return found


def problems(directory: Path) -> list[str]:
    """What Terraform 1.5 would refuse in every .tf file of `directory`."""
    return [p for path in sorted(Path(directory).glob("*.tf")) for p in problems_in(path.read_text(), path.name)]
