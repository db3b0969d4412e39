"""Released versions of the stack, taken from the repository's history, to apply before the current one:
a new release must leave what the previous one made (the database, the buckets, the reserved IPs) alone.
"""
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# The commit each version in CHANGELOG.md was released from.
RELEASES = {"0.2.0": "e65a291b1f28973779aa3d1e61d3359419b2d7e5"}
STACK_FILES = ("stack", "userdata", "docker", "schema.yaml", "VERSION")


def released_tree(version: str, dest: Path) -> Path:
    """The stack of a release in the repository layout under dest; returns its root module (dest/stack)."""
    commit = RELEASES[version]
    found = subprocess.run(["git", "-C", str(REPO), "cat-file", "-e", f"{commit}^{{commit}}"], capture_output=True)
    if found.returncode != 0:
        raise AssertionError(f"release {version} ({commit}) is not in this clone's history: the release-over-release "
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
