"""Read the variables and outputs a Terraform root module declares, with python-hcl2.

    >>> variables = read_variables(Path("stack"))
    >>> variables["region"].type, variables["region"].required
    ('string', False)

Only the top-level *.tf files of `directory` are read (a root module, as Terraform does).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2

from .errors import ExitCode, UserError

_NO_DEFAULT = object()


@dataclass(frozen=True)
class Variable:
    """One `variable` block. `type` is the type expression as written ("string", "list(string)"...),
    "any" when omitted; `default` is None when `has_default` is False."""

    name: str
    type: str = "any"
    default: Any = None
    has_default: bool = False
    sensitive: bool = False
    description: str = ""
    file: str = ""

    @property
    def required(self) -> bool:
        return not self.has_default

    @property
    def kind(self) -> str:
        """The type's family: string, number, bool, list, map, object, set, tuple or any."""
        return re.split(r"[(\s]", self.type, maxsplit=1)[0] or "any"


@dataclass(frozen=True)
class Output:
    name: str
    description: str = ""
    sensitive: bool = False
    file: str = ""


@dataclass(frozen=True)
class Module:
    """What a root module declares: variables and outputs by name."""

    variables: dict[str, Variable] = field(default_factory=dict)
    outputs: dict[str, Output] = field(default_factory=dict)


def _unquote(value: Any) -> Any:
    """python-hcl2 keeps string quotes in some versions and wraps expressions in ${...}."""
    if isinstance(value, str):
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        return value
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    if isinstance(value, dict):
        return {_unquote(k): _unquote(v) for k, v in value.items() if k not in ("__start_line__", "__end_line__")}
    return value


def _type_expr(value: Any) -> str:
    if value is None:
        return "any"
    text = str(_unquote(value)).strip()
    match = re.fullmatch(r"\$\{(.*)\}", text, flags=re.S)
    if match:
        text = match.group(1).strip()
    return re.sub(r"\s+", "", text) or "any"


def _as_bool(value: Any) -> bool:
    value = _unquote(value)
    if isinstance(value, str):
        return value.strip().lower() in ("true", "${true}")
    return bool(value)


def _parse_file(path: Path) -> dict:
    try:
        with path.open(encoding="utf-8") as handle:
            return hcl2.load(handle)
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not UTF-8 text: {exc}", ExitCode.USAGE) from None
    except Exception as exc:  # the parser raises lark errors of many types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path} is not valid HCL: {first}", ExitCode.USAGE) from None


def read_module(directory: Path | str) -> Module:
    """Parse every top-level *.tf file of `directory`. Raises UserError on a parse error,
    a duplicate declaration, or a directory without *.tf files."""
    directory = Path(directory)
    files = sorted(directory.glob("*.tf"))
    if not files:
        raise UserError(f"no Terraform files (*.tf) in {directory}", ExitCode.USAGE)
    variables: dict[str, Variable] = {}
    outputs: dict[str, Output] = {}
    for path in files:
        document = _parse_file(path)
        for block in document.get("variable", []):
            for name, body in block.items():
                name = _unquote(name)
                body = body or {}
                if name in variables:
                    raise UserError(
                        f"variable {name!r} is declared twice ({variables[name].file} and {path.name})",
                        ExitCode.USAGE,
                    )
                default = body.get("default", _NO_DEFAULT)
                variables[name] = Variable(
                    name=name,
                    type=_type_expr(body.get("type")),
                    default=None if default is _NO_DEFAULT else _unquote(default),
                    has_default=default is not _NO_DEFAULT,
                    sensitive=_as_bool(body.get("sensitive", False)),
                    description=str(_unquote(body.get("description", "")) or ""),
                    file=path.name,
                )
        for block in document.get("output", []):
            for name, body in block.items():
                name = _unquote(name)
                body = body or {}
                if name in outputs:
                    raise UserError(
                        f"output {name!r} is declared twice ({outputs[name].file} and {path.name})", ExitCode.USAGE
                    )
                outputs[name] = Output(
                    name=name,
                    description=str(_unquote(body.get("description", "")) or ""),
                    sensitive=_as_bool(body.get("sensitive", False)),
                    file=path.name,
                )
    return Module(variables=variables, outputs=outputs)


def read_variables(directory: Path | str) -> dict[str, Variable]:
    """The variables declared by the root module in `directory`, by name."""
    return read_module(directory).variables


def read_outputs(directory: Path | str) -> dict[str, Output]:
    """The outputs declared by the root module in `directory`, by name."""
    return read_module(directory).outputs
