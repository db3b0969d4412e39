"""Check a schema.yaml (Resource Manager form) against Resource Manager's rules and against the
Terraform variables and outputs it describes.

    >>> errors = check_form(yaml.safe_load(open("schema.yaml")), read_variables("stack"), read_outputs("stack"))
    >>> errors            # [] when the form is good; else one actionable line per problem

Structure is checked against Resource Manager's own meta schema (resource_manager_meta_schema.yaml, as
Oracle publishes it, with the DEVIATIONS Oracle's own stacks show); meaning in Python: every variable reference
(`visible`, `required`, `dependsOn`, variableGroups) names a variable, pickers have the dependsOn keys
they need, form types agree with Terraform types, primaryOutputButton names a `link` output, and the
form and the Terraform variables match both ways.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import jsonschema
import yaml

from orm_pack.errors import ExitCode, UserError

STATIC_TYPES = {
    "string", "text", "integer", "number", "boolean", "enum", "array", "password", "datetime", "file",
}
PICKER_TYPES = {
    "oci:apm:domain:id", "oci:blockstorage:policies:id", "oci:container:cluster:id",
    "oci:core:image:id", "oci:core:instance:id", "oci:core:instanceshape:name",
    "oci:core:instanceshapewithflex:name", "oci:core:natgateway:id", "oci:core:nsg:id",
    "oci:core:servicegateway:id", "oci:core:ssh:publickey", "oci:core:subnet:id", "oci:core:vcn:id",
    "oci:database:autonomouscontainerdatabase:id", "oci:database:autonomousdatabase:id",
    "oci:database:autonomousdatabaseversion:id", "oci:database:database:id", "oci:database:dbhome:id",
    "oci:database:dbhome:dbversion", "oci:database:dbsystem:id", "oci:identity:availabilitydomain:name",
    "oci:identity:compartment:id", "oci:identity:domains:id", "oci:identity:dynamicgroups:id",
    "oci:identity:faultdomain:name", "oci:identity:groups:id", "oci:identity:region:name",
    "oci:identity:tag:value", "oci:kms:key:id", "oci:kms:secret:id", "oci:kms:vault:id",
    "oci:kubernetes:versions:id", "oci:loadbalancer:loadbalancer:id", "oci:mount:target:id",
    "oci:ods:project:id", "oci:resourcemanager:privateendpoint:id",
}
VARIABLE_TYPES = STATIC_TYPES | PICKER_TYPES
# dependsOn keys a picker cannot work without
REQUIRED_DEPENDS_ON = {
    "oci:identity:availabilitydomain:name": ("compartmentId",),
    "oci:core:vcn:id": ("compartmentId",),
    "oci:core:subnet:id": ("compartmentId", "vcnId"),
    "oci:core:image:id": ("compartmentId",),
    "oci:core:instanceshape:name": ("compartmentId",),
    "oci:core:instanceshapewithflex:name": ("compartmentId",),
    "oci:core:nsg:id": ("compartmentId",),
    "oci:kms:vault:id": ("compartmentId",),
    "oci:kms:key:id": ("compartmentId", "vaultId"),
    "oci:kms:secret:id": ("compartmentId",),
}
OUTPUT_TYPES = {"boolean", "number", "string", "copyableString", "link", "ocid", "map", "json", "list", "csv"}
# The meta schema lets any key in; these are the ones Resource Manager reads, so another is a typo.
TOP_LEVEL_KEYS = {
    "title", "description", "stackDescription", "packageVersion", "version", "schemaVersion", "locale",
    "logoUrl", "source", "informationalText", "instructions", "troubleshooting", "allowViewState",
    "variables", "groupings", "variableGroups", "outputs", "outputGroups", "primaryOutputButton",
}
# which Terraform type families a form type can feed
TERRAFORM_KINDS = {
    "boolean": {"bool"},
    "integer": {"number"},
    "number": {"number"},
    "array": {"list", "set", "tuple"},
}
STRING_KINDS = {"string"}
# a string/text field may carry a JSON-encoded list or map (Resource Manager variables are strings)
TEXT_KINDS = {"string", "map", "object", "list", "set", "tuple"}

META_SCHEMA_FILE = Path(__file__).resolve().with_name("resource_manager_meta_schema.yaml")
# libyaml's loader when PyYAML has it: the pure-Python one takes ~0.2 s for schema.yaml
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Deviation:
    """Something Oracle's own published stacks do that the meta schema, read literally, refuses."""

    why: str
    source: str
    apply: Callable[[dict], None]


def _ssh_key_control(meta: dict) -> None:
    meta["definitions"]["dynamicVariable"]["oneOf"].append({"$ref": "#/definitions/sshPublicKeyVariable"})


DEVIATIONS = (
    Deviation(
        why="the meta schema defines sshPublicKeyVariable (type oci:core:ssh:publickey) but leaves it out of "
            "dynamicVariable, so every SSH key control would fail; Oracle documents that control and uses it",
        source="the same page's \"SSH key control\" section (type: oci:core:ssh:publickey), and its sample "
               "compute instance stack, docs.oracle.com/en-us/iaas/Content/ResourceManager/Concepts/"
               "samplecomputeinstance.htm (ssh_public_key: type: oci:core:ssh:publickey)",
        apply=_ssh_key_control,
    ),
)


@lru_cache(maxsize=1)
def _meta_validator() -> tuple[jsonschema.Draft7Validator, dict]:
    """Oracle's meta schema with DEVIATIONS applied, and where each of its subschemas sits in it."""
    meta = yaml.load(META_SCHEMA_FILE.read_text(encoding="utf-8"), Loader=YAML_LOADER)
    for deviation in DEVIATIONS:
        deviation.apply(meta)
    places: dict[int, str] = {}

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            places.setdefault(id(node), where)
            for key, value in node.items():
                walk(value, f"{where}.{key}" if where else str(key))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}[{index}]")

    walk(meta, "")
    return jsonschema.Draft7Validator(meta), places


_REF = re.compile(r"^\$\{([^}]+)\}$")


def reference_name(value: Any) -> str | None:
    """`${name}` or a bare identifier -> name; anything else -> None."""
    if not isinstance(value, str):
        return None
    match = _REF.match(value.strip())
    if match:
        return match.group(1).strip()
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", value.strip()):
        return value.strip()
    return None


def _where(path: Iterable[Any]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def load_form(path: Path | str) -> dict:
    """Read schema.yaml; raises UserError naming the file and line on a YAML error."""
    path = Path(path)
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=YAML_LOADER)
    except FileNotFoundError:
        raise UserError(f"{path} not found: the stack needs a schema.yaml (Resource Manager form)", ExitCode.USAGE) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise UserError(f"{path} is not valid YAML{where}: {getattr(exc, 'problem', exc)}", ExitCode.USAGE) from None
    if not isinstance(document, dict):
        raise UserError(f"{path} must be a YAML mapping with schemaVersion and variables", ExitCode.USAGE)
    return document


def _statement_refs(statement: Any, top: bool = True) -> list[str]:
    """Variable names a visible/required statement reads."""
    if isinstance(statement, str):
        if top:
            name = reference_name(statement)
            return [name] if name else [statement]
        match = _REF.match(statement.strip())
        return [match.group(1).strip()] if match else []
    if isinstance(statement, dict):
        names = []
        for op, args in statement.items():
            for arg in args if isinstance(args, list) else []:
                names += _statement_refs(arg, top=op in ("and", "or", "not"))
        return names
    return []


def _chose_another_type(error: jsonschema.ValidationError) -> bool:
    """An error of a oneOf branch for another `type:` than the one written, or for none written (variables
    and outputs: their own checks report an unknown or missing type)."""
    if error.validator == "required" and "type" in error.validator_value:
        return "type" not in error.instance
    return error.validator == "enum" and bool(error.path) and error.path[-1] == "type"


def _meant(error: jsonschema.ValidationError) -> jsonschema.ValidationError | None:
    """The error that says what is wrong: inside a oneOf over types, the branch of the type written.
    None when the error only says another type was not chosen (an unknown type is reported by the
    variable and output checks)."""
    if _chose_another_type(error):
        return None
    if error.validator != "oneOf" or not error.context:
        return error
    branches: dict[Any, list] = {}
    for sub in error.context:
        branches.setdefault(sub.schema_path[0], []).append(sub)
    candidates = []
    for errors in branches.values():
        inner = [_meant(sub) for sub in errors]
        if None not in inner:
            candidates.append(inner)
    if not candidates:
        return None
    if len(candidates) > 1:
        return error
    return max(candidates[0], key=lambda e: len(e.path))


def _structure_message(error: jsonschema.ValidationError, places: Mapping[int, str]) -> str:
    where = _where(error.absolute_path)
    rule = places.get(id(error.schema), "")
    if rule.endswith("booleanStatement") or error.validator == "oneOf" and "booleanStatement" in str(error.schema):
        problem = (f"{error.instance!r} is not true/false, a variable name, or one of eq/ge/gt/le/lt (two "
                   "operands), and/or (two statements) or not (one)")
    elif error.validator == "pattern" and rule.startswith("definitions.url"):
        problem = f"{error.instance!r} is not an http(s) URL"
    else:
        problem = error.message
    return f"{where}: {problem} (Resource Manager's meta schema: {rule or 'top level'}{'.' + error.validator if rule else ''})"


def _check_structure(document: Mapping) -> list[str]:
    """Oracle's meta schema (with DEVIATIONS), then the top-level keys Resource Manager reads."""
    validator, places = _meta_validator()
    errors = []
    for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path))):
        meant = _meant(error)
        if meant is not None:
            errors.append(_structure_message(meant, places))
    for key in document:
        if key not in TOP_LEVEL_KEYS:
            errors.append(f"{key}: unknown top-level key (Resource Manager knows {', '.join(sorted(TOP_LEVEL_KEYS))})")
    return errors


def _check_variable(name: str, spec: Mapping, known: set[str], terraform: Mapping | None) -> list[str]:
    errors = []
    where = f"variables.{name}"
    vtype = spec.get("type")
    if vtype is None:
        errors.append(f"{where}: needs a type (string, enum, boolean, … or an oci:... picker); Resource Manager's "
                      "meta schema requires one on every variable")
    elif vtype not in VARIABLE_TYPES:
        errors.append(f"{where}.type: unknown type {vtype!r} (use string, text, integer, number, boolean, enum, "
                      f"array, password, datetime, file or an oci:... picker such as oci:core:vcn:id)")
    for key in ("visible", "required"):
        if key in spec:
            for ref in _statement_refs(spec[key]):
                if ref not in known:
                    errors.append(f"{where}.{key} names {ref!r}, which is not a variable")
    depends = spec.get("dependsOn") or {}
    if isinstance(depends, dict):
        for key, value in depends.items():
            match = _REF.match(value.strip()) if isinstance(value, str) else None
            if match and match.group(1).strip() not in known:
                errors.append(f"{where}.dependsOn.{key} names {match.group(1).strip()!r}, which is not a variable")
    for key in REQUIRED_DEPENDS_ON.get(vtype, ()):
        if key not in depends:
            errors.append(f"{where}: type {vtype} needs dependsOn.{key} (e.g. {key}: ${{compartment_ocid}})")
    if vtype == "enum":
        choices = spec.get("enum")
        if not choices:
            errors.append(f"{where}: type enum needs an `enum:` list of choices")
        elif "default" in spec and not spec.get("allowMultiple") and spec["default"] not in choices:
            errors.append(f"{where}.default {spec['default']!r} is not one of its enum choices {choices}")
    if "pattern" in spec and isinstance(spec["pattern"], str):
        try:
            re.compile(spec["pattern"])
        except re.error as exc:
            errors.append(f"{where}.pattern does not compile: {exc}")
    if isinstance(spec.get("minLength"), int) and isinstance(spec.get("maxLength"), int) \
            and spec["minLength"] > spec["maxLength"]:
        errors.append(f"{where}: minLength {spec['minLength']} is greater than maxLength {spec['maxLength']}")
    if isinstance(spec.get("minimum"), (int, float)) and isinstance(spec.get("maximum"), (int, float)) \
            and spec["minimum"] > spec["maximum"]:
        errors.append(f"{where}: minimum {spec['minimum']} is greater than maximum {spec['maximum']}")
    tfvar = terraform.get(name) if terraform is not None else None
    kind = getattr(tfvar, "kind", "any")
    if tfvar is not None and kind != "any" and vtype in VARIABLE_TYPES:
        if vtype == "enum" and spec.get("allowMultiple"):
            allowed = TERRAFORM_KINDS["array"]
        elif vtype == "oci:identity:tag:value":
            allowed = {kind}
        elif vtype in ("string", "text"):
            allowed = TEXT_KINDS
        else:
            allowed = TERRAFORM_KINDS.get(vtype, STRING_KINDS)
        if kind not in allowed:
            errors.append(f"{where}.type {vtype} does not fit Terraform type {tfvar.type} of variable {name!r} "
                          f"({tfvar.file}); make the two agree")
    return errors


def check_form(schema_doc: Mapping, variables: Mapping | None = None, outputs: Mapping | None = None) -> list[str]:
    """Problems with a parsed schema.yaml, one actionable line each ([] when it is good).

    `variables`: the Terraform variables by name (e.g. from declarations.read_variables); when given,
    the form and Terraform must declare the same variables and agree on types.
    `outputs`: the Terraform outputs by name; when given, form outputs must exist in Terraform.
    """
    if not isinstance(schema_doc, Mapping):
        return ["schema.yaml must be a mapping with schemaVersion and variables"]
    errors = _check_structure(schema_doc)
    form_vars = schema_doc.get("variables") if isinstance(schema_doc.get("variables"), Mapping) else {}
    groups = [g for key in ("variableGroups", "groupings") for g in (schema_doc.get(key) or [])
              if isinstance(g, Mapping)]
    grouped: dict[str, str] = {}
    for index, group in enumerate(groups):
        for ref in group.get("variables") or []:
            name = reference_name(ref)
            if name is None:
                errors.append(f"variableGroups[{index}] ({group.get('title')}): {ref!r} is not a variable reference "
                              "(name or ${name})")
                continue
            if name in grouped and grouped[name] != group.get("title"):
                errors.append(f"variableGroups[{index}] ({group.get('title')}): {name!r} is already in group "
                              f"{grouped[name]!r}; a variable belongs to one group")
            grouped.setdefault(name, str(group.get("title")))
    in_form = set(form_vars) | set(grouped)
    known = in_form | set(variables or {})
    for name, spec in form_vars.items():
        if isinstance(spec, Mapping):
            errors += _check_variable(str(name), spec, known, variables)
    for index, group in enumerate(groups):
        if "visible" in group:
            for ref in _statement_refs(group["visible"]):
                if ref not in known:
                    errors.append(f"variableGroups[{index}].visible names {ref!r}, which is not a variable")
    if variables is not None:
        for name in sorted(in_form - set(variables)):
            where = "variables" if name in form_vars else f"variableGroups ({grouped.get(name)})"
            errors.append(f"{where}: {name!r} is not a Terraform variable; declare it in the stack or remove it "
                          f"from schema.yaml")
        for name in sorted(set(variables) - in_form):
            errors.append(f"Terraform variable {name!r} ({getattr(variables[name], 'file', '?')}) is not in "
                          f"schema.yaml; add it to `variables` or to a group with `visible: false`")
    form_outputs = schema_doc.get("outputs") if isinstance(schema_doc.get("outputs"), Mapping) else {}
    for name, spec in form_outputs.items():
        otype = spec.get("type") if isinstance(spec, Mapping) else None
        if otype is not None and otype not in OUTPUT_TYPES:
            errors.append(f"outputs.{name}.type: unknown output type {otype!r} (use one of "
                          f"{', '.join(sorted(OUTPUT_TYPES))})")
        if outputs is not None and name not in outputs:
            errors.append(f"outputs.{name} is not a Terraform output; declare it in the stack or remove it")
    for index, group in enumerate(schema_doc.get("outputGroups") or []):
        for ref in (group.get("outputs") or []) if isinstance(group, Mapping) else []:
            name = reference_name(ref)
            if name and name not in form_outputs and (outputs is None or name not in outputs):
                errors.append(f"outputGroups[{index}] names output {name!r}, which does not exist")
    button = schema_doc.get("primaryOutputButton")
    if button is not None:
        name = reference_name(button)
        spec = form_outputs.get(name) if name else None
        if name and spec is None:
            errors.append(f"primaryOutputButton names {name!r}, which is not in `outputs`; declare it there "
                          f"with type: link")
        elif isinstance(spec, Mapping) and spec.get("type") != "link":
            errors.append(f"primaryOutputButton names {name!r}, whose type is {spec.get('type')!r}; "
                          f"the primary button needs a `link` output")
    return errors
