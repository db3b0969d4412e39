"""README's variable and output tables are generated from stack/ and schema.yaml, never kept by hand.

    .venv/bin/python tests/test_readme.py     # rewrite the tables in README.md
"""
import json
import re
import sys
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
README = REPO_ROOT / "README.md"
BEGIN, END = "<!-- BEGIN GENERATED TABLES -->", "<!-- END GENERATED TABLES -->"


def _cell(text) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _default(variable) -> str:
    if not variable.has_default:
        return "**required**"
    if variable.sensitive:
        return "(secret)"
    return f"`{json.dumps(variable.default)}`" if variable.default not in ("", None) else '`""`'


def generated_tables() -> str:
    from orm_pack.stack.declarations import read_module

    module = read_module(REPO_ROOT / "stack")
    form = yaml.safe_load((REPO_ROOT / "schema.yaml").read_text())
    lines = ["### Inputs", ""]
    for group in form["variableGroups"]:
        lines += [f"**{group['title']}**", "", "| variable | default | description |", "|---|---|---|"]
        for name in group["variables"]:
            variable = module.variables[name]
            lines.append(f"| `{name}` | {_default(variable)} | {_cell(variable.description)} |")
        lines.append("")
    lines += ["### Outputs", "", "| output | description |", "|---|---|"]
    for name, output in module.outputs.items():
        suffix = " (sensitive)" if output.sensitive else ""
        lines.append(f"| `{name}` | {_cell(output.description)}{suffix} |")
    return "\n".join(lines) + "\n"


def _readme_block(text: str) -> str:
    match = re.search(re.escape(BEGIN) + r"\n(.*?)" + re.escape(END), text, re.S)
    assert match, f"README.md has no {BEGIN} ... {END} block"
    return match.group(1)


def test_readme_tables_match_the_stack():
    assert _readme_block(README.read_text()) == generated_tables(), \
        "README tables are stale: run .venv/bin/python tests/test_readme.py"


if __name__ == "__main__":
    sys.path.insert(0, str(REPO_ROOT / "packager"))
    text = README.read_text()
    old = BEGIN + "\n" + _readme_block(text) + END
    README.write_text(text.replace(old, BEGIN + "\n" + generated_tables() + END))
    print("README.md tables rewritten")
