"""The OKE manifests rendered the way `orm-pack oke deploy` renders them, from a saved copy of the stack's
oke_deploy_settings output (settings.json)."""
import json
from pathlib import Path

import pytest

from harness.tools import require_binary
from orm_pack.oke import manifests, settings

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
SETTINGS = HERE / "settings.json"


def deploy_settings(**changes) -> settings.DeploySettings:
    raw = json.loads(SETTINGS.read_text())
    raw.update(changes)
    return settings.from_output(raw)


@pytest.fixture(scope="session")
def kubectl() -> str:
    return require_binary("kubectl", how="the machine image's kubectl (with kustomize)")


@pytest.fixture(scope="session")
def rendered(kubectl) -> tuple[str, list[dict]]:
    return manifests.render(REPO_ROOT / "oke", deploy_settings(), kubectl)


@pytest.fixture(scope="session")
def documents(rendered) -> list[dict]:
    return rendered[1]


def find(documents: list[dict], kind: str, name: str) -> dict:
    matches = [d for d in documents if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def pod_spec(document: dict) -> dict:
    """The pod template's spec of a Deployment, Job or CronJob."""
    spec = document["spec"]["jobTemplate"]["spec"] if document["kind"] == "CronJob" else document["spec"]
    return spec["template"]["spec"]


def pod_specs(documents: list[dict]) -> dict[str, dict]:
    return {f"{d['kind']}/{d['metadata']['name']}": pod_spec(d)
            for d in documents if d["kind"] in ("Deployment", "Job", "CronJob")}
