"""Stack variables for Resource Manager: gather them from the environment, --var-file and --var, check
them against the Terraform variables of the stack, encode them as Resource Manager wants (a dict of
strings).

Precedence, lowest first, as Terraform's: ORM_PACK_VAR_<name> environment variables, then --var-file
files in order, then --var. Passwords belong in the first two: a --var stays in `ps` and the shell history.

Strings go as-is, booleans as true/false, numbers as text, lists and maps as JSON (which Terraform
reads as HCL). `tenancy_ocid`, `region`, `compartment_ocid` and `current_user_ocid` are filled from the
OCI config as the console does, when the stack declares them and the user did not set them.
"""
from __future__ import annotations

import difflib
import json
import math
import os
import re
from pathlib import Path
from typing import Any, Mapping

import yaml

from orm_pack.errors import ExitCode, UserError
from orm_pack.stack.declarations import Variable

AUTO_FILLED = ("tenancy_ocid", "region", "compartment_ocid", "current_user_ocid")
MAX_VARIABLES = 250
MAX_VALUE_BYTES = 8192
ENV_PREFIX = "ORM_PACK_VAR_"
# a number as Terraform writes one; finite (nan, inf and 1e400 are not numbers an OCI field takes)
_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")


def from_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """ORM_PACK_VAR_<name>=value for each variable set in the environment."""
    env = os.environ if environ is None else environ
    return {name[len(ENV_PREFIX):]: value for name, value in sorted(env.items())
            if name.startswith(ENV_PREFIX) and len(name) > len(ENV_PREFIX)}


def gather(var_files: list, assignments: list[str], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Every value the user gave, the later source winning: environment, var-files, --var."""
    given: dict[str, Any] = dict(from_environment(environ))
    for path in var_files:
        given.update(read_var_file(path))
    given.update(parse_assignments(assignments))
    return given


def parse_assignments(items: list[str] | None) -> dict[str, str]:
    """["k=v", ...] -> {"k": "v"}; the value may contain '='."""
    result: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UserError(f"--var {item!r} is not NAME=VALUE (e.g. --var name_prefix=mlflow)", ExitCode.USAGE)
        result[name] = value
    return result


def read_var_file(path: str | Path) -> dict[str, Any]:
    """A JSON, YAML or Terraform .tfvars file of name -> value."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"--var-file {path}: {exc.strerror or exc}", ExitCode.USAGE) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or "\x00" in text:
        raise UserError(f"--var-file {path} is not a text file: pass a .json, .yaml or .tfvars file of "
                        "variable names and values", ExitCode.USAGE)
    try:
        if path.suffix == ".tfvars":
            import hcl2

            from orm_pack.stack.declarations import unquote

            document = {k: unquote(v) for k, v in hcl2.loads(text).items()}
        elif path.suffix == ".json":
            document = json.loads(text)
        else:
            document = yaml.safe_load(text)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"--var-file {path} cannot be parsed: {first}", ExitCode.USAGE) from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise UserError(f"--var-file {path} must hold a mapping of variable names to values", ExitCode.USAGE)
    return {str(k): v for k, v in document.items()}


def encode(value: Any) -> str:
    """One value as a Resource Manager variable string."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _check_value(variable: Variable, text: str) -> None:
    kind = variable.kind
    example = {"list": '["a","b"]', "set": '["a","b"]', "tuple": '["a",1]', "map": '{"k":"v"}',
               "object": '{"k":"v"}'}
    if kind == "bool" and text not in ("true", "false"):
        raise UserError(f"variable {variable.name!r} is a bool: pass true or false, not {text!r}", ExitCode.USAGE)
    if kind == "number" and not (_NUMBER.fullmatch(text) and math.isfinite(float(text))):
        raise UserError(f"variable {variable.name!r} is a number: {text!r} is not a finite one", ExitCode.USAGE)
    if kind in example:
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        expected = dict if kind in ("map", "object") else list
        if not isinstance(parsed, expected):
            raise UserError(
                f"variable {variable.name!r} is {variable.type}: pass JSON, e.g. "
                f"--var '{variable.name}={example[kind]}'", ExitCode.USAGE)


def check_given(declared: Mapping[str, Variable], given: Mapping[str, Any]) -> None:
    """Reject unknown names and values of the wrong type (before anything is sent)."""
    unknown = [name for name in given if name not in declared]
    if unknown:
        name = unknown[0]
        close = difflib.get_close_matches(name, list(declared), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; the stack declares: {', '.join(sorted(declared))}"
        raise UserError(f"unknown variable {name!r}{hint}", ExitCode.USAGE)
    for name, value in given.items():
        _check_value(declared[name], encode(value))


def resolve(declared: Mapping[str, Variable], given: Mapping[str, Any], auto: Mapping[str, str | None],
            current: Mapping[str, str] | None = None) -> dict[str, str]:
    """The stack variables to send.

    declared: the Terraform variables of the stack being uploaded (unknown names are rejected).
    given:    what the user passed (--var-file values, then --var), any JSON-able values.
    auto:     values for AUTO_FILLED names (None = unknown).
    current:  the stack's variables in Resource Manager: kept unless overridden (as when a stack is
              edited in the console), dropped when the stack no longer declares them.
    """
    check_given(declared, given)
    result: dict[str, str] = {k: v for k, v in (current or {}).items() if k in declared}
    for name in AUTO_FILLED:
        if name in declared and auto.get(name):
            result[name] = str(auto[name])
    for name, value in given.items():
        result[name] = encode(value)
    missing = [v.name for v in declared.values() if v.required and v.name not in result]
    if missing:
        raise UserError(
            f"the stack needs a value for {', '.join(repr(m) for m in missing)}: pass --var {missing[0]}=VALUE",
            ExitCode.USAGE)
    if len(result) > MAX_VARIABLES:
        raise UserError(f"{len(result)} variables: Resource Manager accepts at most {MAX_VARIABLES}", ExitCode.USAGE)
    for name, text in result.items():
        if len(text.encode()) > MAX_VALUE_BYTES:
            raise UserError(f"variable {name!r} is {len(text.encode())} bytes: Resource Manager accepts at most "
                            f"{MAX_VALUE_BYTES} per value", ExitCode.USAGE)
    return dict(sorted(result.items()))
