"""The distribution declares exactly what its code imports: a clean `pip install` has every module a
command needs, and nothing the test extra happens to install is relied on."""
import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import tomllib

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = REPO_ROOT / "packager" / "orm_pack"
PROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _third_party_imports(files) -> set[str]:
    modules = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return {m for m in modules if m not in sys.stdlib_module_names and m != "orm_pack"}


def _distributions(modules: set[str]) -> set[str]:
    owners = packages_distributions()
    missing = sorted(m for m in modules if m not in owners)
    assert not missing, f"imported but installed by no distribution here: {missing}"
    return {_name(owners[m][0]) for m in modules}


def test_runtime_dependencies_are_exactly_what_the_cli_imports():
    core_files = [p for p in PACKAGE.rglob("*.py") if "local" not in p.relative_to(PACKAGE).parts]
    imported = _distributions(_third_party_imports(core_files))
    declared = {_name(r) for r in PROJECT["dependencies"]}
    assert imported == declared


def test_the_local_extra_covers_what_local_imports():
    local_files = list((PACKAGE / "local").rglob("*.py"))
    imported = _distributions(_third_party_imports(local_files))
    declared = {_name(r) for r in PROJECT["dependencies"] + PROJECT["optional-dependencies"]["local"]}
    assert imported <= declared, imported - declared
