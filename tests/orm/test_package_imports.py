"""The package's modules meet through their public names: no module imports or reaches into a private
(`_name`) of another module of orm_pack. A private module (`commands/_shared.py`: what the command modules
share) is imported by the modules of its own package only."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "packager" / "orm_pack"


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _source(package: str, node: ast.ImportFrom) -> str:
    """The absolute module an ImportFrom names; `package` is the importing module's package."""
    if not node.level:
        return node.module or ""
    parts = package.split(".")
    parts = parts[:len(parts) - (node.level - 1)]
    return ".".join(parts + ([node.module] if node.module else []))


def _is_module(dotted: str, root: Path) -> bool:
    relative = Path(*dotted.split(".")[1:])
    return (root / relative).with_suffix(".py").is_file() or (root / relative / "__init__.py").is_file()


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_reaches(path: Path, root: Path = PACKAGE) -> list[str]:
    module = _module_name(path, root)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text())
    found, module_aliases = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = _source(package, node)
            if not source.startswith("orm_pack"):
                continue
            for alias in node.names:
                bound = f"{source}.{alias.name}"
                if _private(alias.name) and not (source == package and _is_module(bound, root)):
                    found.append(f"{module}:{node.lineno} imports {bound}")
                module_aliases[alias.asname or alias.name] = bound  # a module, or a name reached through
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("orm_pack"):
                    module_aliases[alias.asname or alias.name] = alias.name
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and _private(node.attr) and isinstance(node.value, ast.Name)
                and node.value.id in module_aliases):
            found.append(f"{module}:{node.lineno} reaches {module_aliases[node.value.id]}.{node.attr}")
    return found


def test_no_module_uses_a_private_name_of_another():
    problems = [problem for path in sorted(PACKAGE.rglob("*.py")) if "bundle" not in path.parts
                for problem in private_reaches(path)]
    assert problems == []


def test_the_check_sees_both_ways_of_reaching_in(tmp_path):
    """The control: an import of a private name, an attribute access to one, and a private module imported
    from outside its package are all reported; the private module's own siblings may import it."""
    root = tmp_path / "orm_pack"
    for package in ("commands", "oke", "stack"):
        (root / package).mkdir(parents=True)
    (root / "commands" / "_shared.py").write_text("def guarded(): pass\ndef _auth_parent(): pass\n")
    (root / "stack" / "declarations.py").write_text("def _unquote(): pass\n")
    (root / "commands" / "deploy.py").write_text("from orm_pack.commands import _shared\nrun = _shared.guarded\n")
    (root / "oke" / "workflow.py").write_text("from orm_pack.commands import _shared\n"
                                              "from ..stack.declarations import _unquote\n"
                                              "parent = _shared._auth_parent()\n")
    assert private_reaches(root / "commands" / "deploy.py", root) == []
    assert private_reaches(root / "oke" / "workflow.py", root) == [
        "orm_pack.oke.workflow:1 imports orm_pack.commands._shared",
        "orm_pack.oke.workflow:2 imports orm_pack.stack.declarations._unquote",
        "orm_pack.oke.workflow:3 reaches orm_pack.commands._shared._auth_parent"]


def test_one_factory_makes_the_sdk_clients():
    """cloud/ociconfig.client is the only place a client of the OCI SDK is built (signer, region, retries and an
    endpoint override the same way for every service)."""
    import re

    built_elsewhere = [f"{path.relative_to(PACKAGE)}: {match.group(0)}" for path in sorted(PACKAGE.rglob("*.py"))
                       if "bundle" not in path.parts
                       for match in re.finditer(r"\b\w+Client\((?!\))", path.read_text())]
    assert built_elsewhere == []
    from orm_pack.cloud import ociconfig

    assert set(ociconfig.CLIENTS) == {"resource_manager", "object_storage", "container_engine", "secrets", "certificates",
                                      "mysql_backups", "mysql_db_systems", "run_command", "monitoring",
                                      "management_dashboard"}


def test_one_client_speaks_http_to_mlflow():
    """orm_pack.mlflow_api.http_client is the package's only HTTP client to MLflow (users, doctor, readiness checks):
    no other module opens its own http.client connection or urllib request."""
    import re

    elsewhere = [f"{path.relative_to(PACKAGE)}: {match.group(0)}" for path in sorted(PACKAGE.rglob("*.py"))
                 if "bundle" not in path.parts and path.name != "http_client.py"
                 for match in re.finditer(r"urllib\.request|urlopen\(|HTTPS?Connection\(", path.read_text())]
    assert elsewhere == []
