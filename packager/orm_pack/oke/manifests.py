"""Renders oke/overlays/oke with a deployment's settings: `kubectl kustomize` on a copy of oke/ whose
settings/*.env files are written from DeploySettings. The checkout (or the installed bundle) is never
written to. The result must have no placeholder left: the base's stand-in values are replaced by the
overlay, and a value that did not arrive is an error, not YAML with a hole in it.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml

from orm_pack.errors import ExitCode, UserError
from orm_pack.oke.settings import DeploySettings

OVERLAY = Path("overlays") / "oke"
# The base's stand-ins for what the overlay fills in, and the images' short names.
STAND_INS = ("MYSQL_CIDR", "SUBNET", "NSG", "CIDR", "LB_IP")
PLACEHOLDER = re.compile(r"<[^<>\s]+>")


def _env_file(path: Path, values: dict) -> None:
    lines = []
    for name, value in sorted(values.items()):
        if "\n" in str(value):
            raise UserError(f"setting {name} spans lines; it cannot go into a ConfigMap", ExitCode.USAGE)
        lines.append(f"{name}={value}\n")
    path.write_text("".join(lines))


def write_settings(overlay: Path, settings: DeploySettings) -> None:
    directory = overlay / "settings"
    directory.mkdir(parents=True, exist_ok=True)
    _env_file(directory / "tracking.env", settings.tracking_env)
    _env_file(directory / "migrate.env", settings.migrate_env)
    _env_file(directory / "proxy.env", settings.proxy_env())
    _env_file(directory / "tls.env", settings.tls_env())
    _env_file(directory / "deploy.env", settings.deploy_values())


def leftovers(documents: list[dict]) -> list[str]:
    """Where the rendered manifests still hold a placeholder or an image without a registry."""
    found = []

    def walk(node, where):
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}[{index}]")
        elif isinstance(node, str):
            if node in STAND_INS or PLACEHOLDER.search(node):
                found.append(f"{where}: {node}")
            elif where.endswith(".image") and ("/" not in node or not re.search(r"[:@]", node.rsplit("/", 1)[1])):
                found.append(f"{where}: {node} (no registry or version)")

    for document in documents:
        walk(document, f"{document.get('kind')}/{document.get('metadata', {}).get('name')}")
    return found


def render(oke_dir: Path, settings: DeploySettings, kubectl: str) -> tuple[str, list[dict]]:
    """(YAML text, documents) of the overlay rendered with `settings`."""
    if not (oke_dir / OVERLAY / "kustomization.yaml").is_file():
        raise UserError(f"{oke_dir / OVERLAY} has no kustomization.yaml: pass --source with the oci-mlflow "
                        "checkout", ExitCode.USAGE)
    with tempfile.TemporaryDirectory(prefix="orm-pack-oke-") as work:
        copy = Path(work) / "oke"
        shutil.copytree(oke_dir, copy, ignore=shutil.ignore_patterns("settings", "__pycache__"))
        write_settings(copy / OVERLAY, settings)
        try:
            result = subprocess.run([kubectl, "kustomize", str(copy / OVERLAY)], capture_output=True, text=True,
                                    timeout=120)
        except OSError as exc:
            raise UserError(f"cannot run {kubectl}: {exc.strerror}", ExitCode.USAGE) from None
    if result.returncode != 0:
        raise UserError(f"kubectl kustomize failed: {result.stderr.strip()[-2000:]}", ExitCode.FAILURE)
    documents = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    problems = leftovers(documents)
    if problems:
        raise UserError("the rendered manifests still hold placeholders:\n  " + "\n  ".join(problems),
                        ExitCode.FAILURE)
    return result.stdout, documents
