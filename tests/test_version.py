"""One version, in VERSION: the package, `orm-pack --version`, the Resource Manager form, the image tags
the release pushes and the stack pulls, and the changelog all follow it."""
import re
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import yaml

import orm_pack

REPO_ROOT = Path(__file__).resolve().parents[1]
RELEASE = (REPO_ROOT / "VERSION").read_text().strip()


def test_version_is_a_semantic_version():
    assert re.fullmatch(r"\d+\.\d+\.\d+", RELEASE), RELEASE


def test_the_package_and_the_cli_report_the_release():
    assert version("oci-mlflow-stack") == RELEASE
    assert orm_pack.__version__ == RELEASE
    orm_pack_cli = shutil.which("orm-pack", path=str(Path(sys.executable).parent))
    shown = subprocess.run([orm_pack_cli, "--version"], capture_output=True, text=True, check=True)
    assert shown.stdout.split() == ["orm-pack", RELEASE]


def test_the_form_carries_the_release():
    assert str(yaml.safe_load((REPO_ROOT / "schema.yaml").read_text())["version"]) == RELEASE


def test_the_released_images_are_tagged_and_pulled_by_the_release():
    release_workflow = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "release.yml").read_text())
    version_step = next(s for s in release_workflow["jobs"]["images"]["steps"] if s.get("name") == "Version")
    assert version_step["run"].strip() == 'echo "version=$(cat VERSION)" >> "$GITHUB_OUTPUT"'
    locals_tf = (REPO_ROOT / "stack" / "locals.tf").read_text()
    assert 'release       = trimspace(file("${local.assets_dir}/VERSION"))' in locals_tf
    assert ':${local.release}"' in locals_tf


def test_the_changelog_has_a_section_for_the_release():
    changelog = (REPO_ROOT / "CHANGELOG.md").read_text()
    assert re.search(rf"^## \[{re.escape(RELEASE)}\] - \d{{4}}-\d{{2}}-\d{{2}}$", changelog, re.M)
    assert re.search(rf"^\[{re.escape(RELEASE)}\]: https://", changelog, re.M)
