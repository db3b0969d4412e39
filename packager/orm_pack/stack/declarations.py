"""Read the variables and outputs a Terraform root module declares, with python-hcl2.

    >>> variables = read_variables(Path("stack"))
    >>> variables["region"].type, variables["region"].required
    ('string', False)

Only the top-level *.tf files of `directory` are read (a root module, as Terraform does). For speed
(python-hcl2 parses ~30 KB/s), a small scanner cuts out the top-level `variable` blocks, minus their
`validation` sub-blocks, and only those go to python-hcl2; output names come from the block headers.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2

from orm_pack.errors import ExitCode, UserError

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
class OutputDeclaration:
    name: str
    description: str = ""
    sensitive: bool = False
    file: str = ""


@dataclass(frozen=True)
class Module:
    """What a root module declares: variables and outputs by name."""

    variables: dict[str, Variable] = field(default_factory=dict)
    outputs: dict[str, OutputDeclaration] = field(default_factory=dict)


def _hcl_text(escaped: str) -> str:
    """A description as written between HCL quotes, as a reader sees it (\\" is ", \\\\ is \\)."""
    return re.sub(r'\\(["\\])', r"\1", escaped)


def unquote(value: Any) -> Any:
    """python-hcl2 keeps string quotes in some versions and wraps expressions in ${...}."""
    if isinstance(value, str):
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        return value
    if isinstance(value, list):
        return [unquote(v) for v in value]
    if isinstance(value, dict):
        return {unquote(k): unquote(v) for k, v in value.items() if k not in ("__start_line__", "__end_line__")}
    return value


def _type_expr(value: Any) -> str:
    if value is None:
        return "any"
    text = str(unquote(value)).strip()
    match = re.fullmatch(r"\$\{(.*)\}", text, flags=re.S)
    if match:
        text = match.group(1).strip()
    return re.sub(r"\s+", "", text) or "any"


def _as_bool(value: Any) -> bool:
    value = unquote(value)
    if isinstance(value, str):
        return value.strip().lower() in ("true", "${true}")
    return bool(value)


_HEREDOC = re.compile(r"<<-?([A-Za-z_][A-Za-z0-9_]*)[ \t]*\n")


def top_level_blocks(text: str) -> list[tuple[str, int, int]]:
    """(header, start, end) of each top-level `header { ... }` block, skipping strings, heredocs and
    comments; `text[start:end]` is the whole block from the start of its header line."""
    blocks: list[tuple[str, int, int]] = []
    i, n, depth, opened = 0, len(text), 0, -1
    while i < n:
        char = text[i]
        if char == "#" or text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
            continue
        if char == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
            continue
        if char == "<":
            match = _HEREDOC.match(text, i)
            if match:
                closing = re.compile(r"^[ \t]*" + re.escape(match.group(1)) + r"[ \t]*$", re.M)
                end = closing.search(text, match.end())
                i = n if end is None else end.end()
                continue
        if char == "{":
            if depth == 0:
                opened = i
            depth += 1
        elif char == "}":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unexpected '}}' at line {text.count(chr(10), 0, i) + 1}")
            if depth == 0 and opened >= 0:
                line_start = text.rfind("\n", 0, opened) + 1
                blocks.append((text[line_start:opened].strip(), line_start, i + 1))
                opened = -1
        i += 1
    if depth:
        raise ValueError(f"the '{{' at line {text.count(chr(10), 0, opened) + 1} is never closed")
    return blocks


def _declarations(text: str) -> tuple[str, list[tuple[str, str]]]:
    """The variable blocks without their validation sub-blocks, and (name, block text) of outputs."""
    variables, outputs = [], []
    for header, start, end in top_level_blocks(text):
        match = re.fullmatch(r'(variable|output)\s+"?([A-Za-z_][A-Za-z0-9_-]*)"?', header)
        if not match:
            continue
        block = text[start:end]
        if match.group(1) == "output":
            outputs.append((match.group(2), block))
            continue
        brace = block.index("{")
        inner, kept, last = block[brace + 1:-1], [], 0
        for sub_header, sub_start, sub_end in top_level_blocks(inner):
            if sub_header == "validation":
                kept.append(inner[last:sub_start])
                last = sub_end
        kept.append(inner[last:])
        variables.append(block[:brace + 1] + "".join(kept) + "}")
    return "\n".join(variables), outputs


def _parse_file(path: Path) -> tuple[dict, list[tuple[str, str]]]:
    try:
        text = path.read_text(encoding="utf-8")
        variables, outputs = _declarations(text)
        return (hcl2.loads(variables) if variables.strip() else {}), outputs
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
    outputs: dict[str, OutputDeclaration] = {}
    for path in files:
        document, output_blocks = _parse_file(path)
        for block in document.get("variable", []):
            for name, body in block.items():
                name = unquote(name)
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
                    default=None if default is _NO_DEFAULT else unquote(default),
                    has_default=default is not _NO_DEFAULT,
                    sensitive=_as_bool(body.get("sensitive", False)),
                    description=_hcl_text(str(unquote(body.get("description", "")) or "")),
                    file=path.name,
                )
        for name, block in output_blocks:
            if name in outputs:
                raise UserError(
                    f"output {name!r} is declared twice ({outputs[name].file} and {path.name})", ExitCode.USAGE
                )
            description = re.search(r'^\s*description\s*=\s*"((?:[^"\\]|\\.)*)"', block, re.M)
            outputs[name] = OutputDeclaration(
                name=name,
                description=_hcl_text(description.group(1)) if description else "",
                sensitive=bool(re.search(r"^\s*sensitive\s*=\s*true\b", block, re.M)),
                file=path.name,
            )
    return Module(variables=variables, outputs=outputs)


def read_variables(directory: Path | str) -> dict[str, Variable]:
    """The variables declared by the root module in `directory`, by name."""
    return read_module(directory).variables


def read_outputs(directory: Path | str) -> dict[str, OutputDeclaration]:
    """The outputs declared by the root module in `directory`, by name."""
    return read_module(directory).outputs
