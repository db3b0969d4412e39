"""Released versions of the stack, taken from the repository's history, to apply before the current one:
a new release must leave what the previous one made (the database, the buckets, the reserved IPs) alone.

`upgrade_plan(profile, …)` is the general form: it applies a profile as the previous release made it and
plans this tree over that state, as Resource Manager plans an updated stack zip over the stack's state.
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
