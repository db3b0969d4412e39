"""Released versions of the stack, taken from the repository's history, to apply before the current one:
a new release must leave what the previous one made (the database, the buckets, the reserved IPs) alone.

`upgrade_plan(profile, …)` is the general form: it applies a profile as the previous release made it and
plans this tree over that state, as Resource Manager plans an updated stack zip over the stack's state.
`UpgradePlan.data_resources_lost()` names what such a plan would lose of DATA_RESOURCES.
"""
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import yaml

from harness.terraform import Terraform
from orm_pack.stack.declarations import read_variables

REPO = Path(__file__).resolve().parents[2]
# The commit each version in CHANGELOG.md was released from.
RELEASES = {"0.2.0": "e65a291b1f28973779aa3d1e61d3359419b2d7e5"}
STACK_FILES = ("stack", "userdata", "docker", "schema.yaml", "VERSION")


# The stack's data resources, by type: replacing or destroying one loses data, or an identity that users and
# their clients depend on, so no upgrade may plan one for delete. What is not here holds nothing of the
# kind: the VMs and OKE's node pool (every user_data or image change replaces them), the certificates (the
# CA issues new ones, which the VMs and pods read by a secret's name), the runtime objects, policies,
# dynamic groups, the network (tests/stack/test_upgrade_plans.py keeps it unchanged anyway) and waits.
DATA_RESOURCES = {
    "oci_mysql_mysql_db_system": "MLflow's backend store: every experiment, run, registered model and MLflow user",
    "oci_objectstorage_bucket": "the artifacts bucket holds every logged model and file (guarded by type: the runtime bucket too)",
    "oci_kms_vault": "every key and secret of the stack lives in it; deleting it schedules them all for deletion",
    "oci_kms_key": "what it encrypted (the secrets) cannot be read without it; the CA signs with the other one",
    "oci_vault_secret": "generated passwords exist nowhere else (MySQL's MLflow user), and a deleted name stays taken",
    "oci_core_public_ip": "the reserved address is the MLflow URL in clients, notebooks and the TLS certificates",
    "oci_certificates_management_certificate_authority":
        "every client verifies with this CA's certificate: a new CA invalidates every CA file handed out",
    "oci_identity_domains_app": "single sign-on's client: sessions' tokens were issued to its client id, grants name it",
    "oci_datascience_notebook_session": "its block volume is the notebook's home directory: the user's notebooks and files",
    "oci_datascience_project": "users file their models, jobs and other notebook sessions under it",
    "oci_containerengine_cluster":
        "it holds MLflow's Kubernetes objects (orm-pack oke deploy applies them, not Terraform); kubeconfigs name it",
}


PREVIOUS_RELEASE = "0.2.0"  # until the first v* tag: the commit VERSION last changed for

# Profiles whose earliest stacks fail a first apply on OCI start from the first commit that does not (the one
# that added the waits). Each failed on IAM's propagation delay (harness/double/propagation.py).
LATER_BASELINES = {
    "notebook": ("36d59ad0c91629c2992d0d201bb9812e1faecc75",
                 "the notebook session was created before Data Science was allowed to use its subnet"),
    "oke": ("36d59ad0c91629c2992d0d201bb9812e1faecc75",
            "the node pool was tagged with a tag namespace not yet visible"),
    "other-region": ("36d59ad0c91629c2992d0d201bb9812e1faecc75",
                     "the bucket was encrypted with the key before Object Storage was allowed to use it"),
}


def released_tree(version: str, dest: Path) -> Path:
    """The stack of a release in the repository layout under dest; returns its root module (dest/stack)."""
    return tree_at(RELEASES[version], dest, f"release {version}")


def tree_at(commit: str, dest: Path, what: str | None = None) -> Path:
    """The stack of any commit in the repository layout under dest; returns its root module (dest/stack)."""
    what = what or f"commit {commit}"
    found = subprocess.run(["git", "-C", str(REPO), "cat-file", "-e", f"{commit}^{{commit}}"], capture_output=True)
    if found.returncode != 0:
        raise AssertionError(f"{what} ({commit}) is not in this clone's history: the release-over-release "
                             "tests need a full clone (git fetch --unshallow)")
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", commit, *STACK_FILES], capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest / "stack"


def upgrade_in_place(root_module: Path) -> None:
    """Replace a released stack by the current one where it lies, keeping Terraform's state and plugins:
    what Resource Manager does when a stack's zip is updated."""
    root = root_module.parent
    for old in root_module.glob("*.tf"):
        old.unlink()
    for tf in (REPO / "stack").glob("*.tf"):
        shutil.copy(tf, root_module / tf.name)
    for name in ("userdata", "docker"):
        shutil.rmtree(root / name, ignore_errors=True)
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("schema.yaml", "VERSION"):
        shutil.copy(REPO / name, root / name)


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True).stdout


def profile_baseline(profile: str) -> str:
    """The commit a profile's previous state comes from: the previous release if it had the profile, else
    the commit that added the profile (its first state); LATER_BASELINES where those cannot apply."""
    if profile in LATER_BASELINES:
        return LATER_BASELINES[profile][0]
    release = RELEASES[PREVIOUS_RELEASE]
    inventory = f"tests/stack/inventories/{profile}.yaml"
    if _git("ls-tree", "--name-only", release, inventory).strip():
        return release
    added = _git("log", "--diff-filter=A", "--format=%H", "--", inventory).split()
    if not added:
        raise AssertionError(f"profile {profile}: {inventory} was never committed")
    return added[-1]


@dataclass
class UpgradePlan:
    profile: str
    baseline: str        # the commit whose stack made the state
    plan: dict           # this tree's plan JSON over that state

    def actions(self) -> dict[str, list[str]]:
        return {r["address"]: r["change"]["actions"] for r in self.plan["resource_changes"]}

    def replaced_or_deleted(self) -> dict[str, list[str]]:
        return {address: actions for address, actions in self.actions().items() if "delete" in actions}

    def moved(self) -> dict[str, str]:
        """new address -> the address the state had it at (a `moved` block followed)."""
        return {r["address"]: r["previous_address"] for r in self.plan["resource_changes"] if r.get("previous_address")}

    def data_resources_lost(self) -> dict[str, list[str]]:
        """address -> actions of each data resource (DATA_RESOURCES) the upgrade would lose: planned for delete,
        whether replaced or destroyed (Terraform plans a resource of the state that this tree no longer declares,
        at an address no `moved` block carries over, as a delete), and ["absent"] for one of the old state
        that the plan does not mention at all."""
        lost = {r["address"]: r["change"]["actions"] for r in self.plan["resource_changes"]
                if r["mode"] == "managed" and r["type"] in DATA_RESOURCES and "delete" in r["change"]["actions"]}
        planned = set(self.actions()) | set(self.moved().values())
        for resource in _state_resources(self.plan.get("prior_state", {}).get("values", {}).get("root_module", {})):
            if resource["mode"] == "managed" and resource["type"] in DATA_RESOURCES and resource["address"] not in planned:
                lost[resource["address"]] = ["absent"]
        return lost


def _state_resources(module: dict) -> list[dict]:
    """The resources of a state's module (JSON values representation) and of its child modules."""
    return [*module.get("resources", []), *(r for child in module.get("child_modules", []) for r in _state_resources(child))]


def upgrade_plan(profile: str, inventory: dict, base_tfvars: dict, dest: Path, baseline: str | None = None,
                 edit: Callable[[Path], None] | None = None) -> UpgradePlan:
    """Apply `profile` with the stack of `baseline` (default: profile_baseline), then plan this tree over its
    state. Both run against the same cloud (the inventory's fixtures, today's provider double). The old
    stack gets the choices its commit's inventory made, with today's values where both set one (the ids
    of that cloud), those of them it declared. `edit(root_module)` changes this tree's copy before the plan."""
    baseline = baseline or profile_baseline(profile)
    root_module = tree_at(baseline, dest)
    old_choices = (yaml.safe_load(_git("show", f"{baseline}:tests/stack/inventories/{profile}.yaml")) or {}).get("tfvars") or {}
    choices = inventory.get("tfvars") or {}
    declared = read_variables(root_module)
    old_tfvars = {**base_tfvars, **{name: choices.get(name, value) for name, value in old_choices.items()}}
    tfvars = {**base_tfvars, **choices}
    tf = Terraform(root_module, fixtures=inventory.get("fixtures"))
    tf.init()
    tf.apply({name: value for name, value in old_tfvars.items() if name in declared})
    upgrade_in_place(root_module)
    if edit:
        edit(root_module)
    tf.run("init", "-input=false")
    return UpgradePlan(profile, baseline, tf.plan(tfvars))
