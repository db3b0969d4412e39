"""The cluster's kubeconfig, written through the Container Engine API (as `oci ce cluster
create-kubeconfig` does) into a file of its own, so the user's ~/.kube/config is never touched.

The kubeconfig's user runs a command for each token (OKE's v2 tokens: `oci ce cluster generate-token`);
that command must be installed, or every kubectl call would fail later with a less helpful message.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import yaml

from orm_pack.errors import ExitCode, UserError

TOKEN_VERSION = "2.0.0"
ENDPOINT = "PUBLIC_ENDPOINT"


def default_path(stack_name: str) -> Path:
    return Path.home() / ".kube" / f"{stack_name}-oke.yaml"


def fetch(client, cluster_id: str) -> str:
    """The kubeconfig's text for the cluster's public Kubernetes API endpoint."""
    import oci

    details = oci.container_engine.models.CreateClusterKubeconfigContentDetails(
        token_version=TOKEN_VERSION, endpoint=ENDPOINT)
    response = client.create_kubeconfig(cluster_id, create_cluster_kubeconfig_content_details=details)
    data = response.data
    content = data.content if hasattr(data, "content") else data
    return content.decode() if isinstance(content, bytes) else str(content)


def token_commands(text: str) -> list[str]:
    """The commands the kubeconfig's users run for tokens."""
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        raise UserError("the Container Engine API returned a kubeconfig that is not YAML", ExitCode.SERVICE) from None
    return [user["user"]["exec"]["command"] for user in document.get("users") or []
            if isinstance(user, dict) and isinstance(user.get("user"), dict) and user["user"].get("exec")]


def write(path: Path, text: str, environ=None) -> Path:
    """Writes the kubeconfig (0600) after checking its token command is on PATH."""
    environ = os.environ if environ is None else environ
    for command in token_commands(text):
        if not shutil.which(command, path=environ.get("PATH")):
            raise UserError(f"kubectl gets its OKE token from `{command}`, which is not on PATH: install the OCI "
                            "CLI (pip install oci-cli) and run this again", ExitCode.CONFIG)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    os.replace(temporary, path)
    return path
