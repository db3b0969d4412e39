"""The GitHub workflows: they parse, they start on the events they claim, they name only files and
commands the project has, and the release's steps really produce what README's Deploy button downloads
(the steps' own shell text is run here, in a copy of the project)."""
import hashlib
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from harness.project import copy_tracked_files, stack_variables_text

REPO_ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO_ROOT / ".github" / "workflows"
VERSION = (REPO_ROOT / "VERSION").read_text().strip()


def _workflow(name: str) -> dict:
    document = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the bare key `on` as the boolean true
    document["on"] = document.pop(True, document.get("on"))
    return document


def _step(job: dict, name: str) -> dict:
    matches = [step for step in job["steps"] if step.get("name") == name]
    assert len(matches) == 1, f"no single step named {name!r}: {[s.get('name') for s in job['steps']]}"
    return matches[0]


def _button_zip_name() -> str:
    url = re.search(r"zipUrl=(\S+?)\)", (REPO_ROOT / "README.md").read_text()).group(1)
    assert "/releases/latest/download/" in url, url
    return url.rsplit("/", 1)[1]


def _run_step(step: dict, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    # GitHub runs `run:` with `bash -e {0}`
    return subprocess.run(["bash", "-e", "-c", step["run"]], cwd=cwd, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=300)


def test_every_workflow_parses_and_every_job_has_steps():
    names = sorted(p.name for p in WORKFLOWS.glob("*.yml"))
    assert names == ["ci.yml", "release.yml"]
    for name in names:
        workflow = _workflow(name)
        assert workflow["on"], name
        for job_name, job in workflow["jobs"].items():
            assert job["steps"], f"{name}: {job_name}"
            for step in job["steps"]:
                assert ("run" in step) != ("uses" in step), f"{name}: {job_name}: {step}"


def test_ci_runs_the_ci_script_in_debian_on_pushes_and_pull_requests():
    workflow = _workflow("ci.yml")
    assert workflow["on"]["push"]["branches"] == ["main"]
    assert "pull_request" in workflow["on"]
    job = workflow["jobs"]["test"]
    assert job["container"]["image"].startswith("debian:")
    assert job["steps"][-1]["run"].strip() == "bash .ci/run"
    assert job["steps"][-1]["env"]["CI"] == "true"
    assert (REPO_ROOT / ".ci" / "run").is_file()


@pytest.mark.parametrize("name", ["ci.yml", "release.yml"])
def test_the_tests_run_on_the_terraform_resource_manager_runs(name):
    """Resource Manager runs 1.5.x (1.5.7); this machine's image has a newer Terraform only, so the public
    workflows install 1.5.7 and checks its checksum before .ci/run."""
    steps = _workflow(name)["jobs"]["test"]["steps"]
    names = [step.get("name", step.get("uses")) for step in steps]
    install = next(i for i, n in enumerate(names) if n.startswith("Terraform 1.5.7"))
    assert install < names.index("Install what the tests need, then run the tests")
    run = steps[install]["run"]
    assert "terraform_1.5.7_linux_amd64.zip" in run and "sha256sum -c" in run and "/usr/local/bin" in run


@pytest.mark.parametrize("name", ["ci.yml", "release.yml"])
def test_the_tests_may_make_a_network_namespace_of_their_own(name):
    """The serving VM's metadata block is tested in a network namespace with nftables rules (unshare -n):
    the job's container needs CAP_SYS_ADMIN and CAP_NET_ADMIN, which Docker does not give by default."""
    options = _workflow(name)["jobs"]["test"]["container"]["options"].split()
    assert {options[i + 1] for i, option in enumerate(options) if option == "--cap-add"} >= {"SYS_ADMIN", "NET_ADMIN"}


@pytest.mark.parametrize("name", ["ci.yml", "release.yml"])
def test_the_tests_start_from_the_whole_history(name):
    """tests/harness/release.py checks earlier releases out of git: a shallow checkout would lack them."""
    steps = _workflow(name)["jobs"]["test"]["steps"]
    checkout = next(step for step in steps if step.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0


def test_the_actions_used_are_pinned_to_a_major_version():
    for name in ("ci.yml", "release.yml"):
        for job in _workflow(name)["jobs"].values():
            for step in job["steps"]:
                if "uses" in step:
                    assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", step["uses"]), step["uses"]


def test_a_release_starts_from_a_version_tag_and_tests_before_it_builds():
    workflow = _workflow("release.yml")
    assert workflow["on"] == {"push": {"tags": ["v*"]}}
    jobs = workflow["jobs"]
    assert _step(jobs["test"], "Install what the tests need, then run the tests")["run"].strip() == "bash .ci/run"
    assert jobs["images"]["needs"] == "test"
    assert jobs["stack"]["needs"] == "images"


def test_the_tag_must_be_the_release_in_version(tmp_path):
    step = _step(_workflow("release.yml")["jobs"]["test"], "The tag is the release in VERSION")
    assert _run_step(step, REPO_ROOT, {"GITHUB_REF_NAME": f"v{VERSION}"}).returncode == 0
    assert _run_step(step, REPO_ROOT, {"GITHUB_REF_NAME": "v0.0.0-not-this"}).returncode != 0


def test_the_release_builds_every_image_the_project_has_for_both_architectures():
    job = _workflow("release.yml")["jobs"]["images"]
    dockerfiles = sorted(p.name.removeprefix("Dockerfile-") for p in (REPO_ROOT / "docker").glob("Dockerfile-*"))
    variants = job["strategy"]["matrix"]["include"]
    assert sorted(v["image"] for v in variants if not v["mlflow"]) == dockerfiles
    build = _step(job, "Build and push the image for amd64 and arm64")["with"]
    assert build["platforms"] == "linux/amd64,linux/arm64"
    assert build["push"] is True
    for image in dockerfiles:
        assert (REPO_ROOT / build["file"].replace("${{ matrix.image }}", image)).is_file()
    assert build["tags"].endswith("oci-mlflow-${{ matrix.image }}:${{ steps.version.outputs.version }}${{ matrix.suffix }}")
    version_step = _step(job, "Version")
    assert "cat VERSION" in version_step["run"]


def test_the_release_publishes_the_tracking_image_of_every_mlflow_version_the_stack_offers():
    """stack/locals.tf names <registry>/oci-mlflow-tracking:<release>-mlflow<version> (by digest tracking-<version>)
    for each previous MLflow: a release must push each, built with that version's lock, or a VM (and every OKE
    pod) asked for it has nothing to pull."""
    locals_tf = (REPO_ROOT / "stack" / "locals.tf").read_text()
    versions = re.findall(r'"([0-9.]+)"', re.search(r"mlflow_versions\s*=\s*\[([^]]*)\]", locals_tf).group(1))
    own, previous = versions[0], versions[1:]
    assert f"mlflow=={own} " in (REPO_ROOT / "docker" / "requirements-tracking.lock").read_text()
    job = _workflow("release.yml")["jobs"]["images"]
    tracking = [v for v in job["strategy"]["matrix"]["include"] if v["image"] == "tracking"]
    assert sorted((v["mlflow"], v["suffix"], v["digest"]) for v in tracking) == sorted(
        [("", "", "tracking")] + [(v, f"-mlflow{v}", f"tracking-{v}") for v in previous])
    for version in previous:
        assert (REPO_ROOT / "docker" / f"requirements-tracking-{version}.lock").is_file()
    build = _step(job, "Build and push the image for amd64 and arm64")["with"]
    assert build["build-args"] == "MLFLOW_VERSION=${{ matrix.mlflow }}"  # docker/Dockerfile-tracking's ARG
    assert "ARG MLFLOW_VERSION=\n" in (REPO_ROOT / "docker" / "Dockerfile-tracking").read_text()
    record = _step(job, "Record the digest")["run"]
    assert 'digests/${{ matrix.digest }}"' in record  # the key images.json carries: the stack's lookup key


def test_the_stack_default_registry_is_where_the_release_pushes():
    """The VMs pull <container_registry>/oci-mlflow-<role>; the release pushes to ghcr.io/<owner>, the
    owner being the one in the Deploy button's URL."""
    owner = re.search(r"github\.com/([\w.-]+)/oci-mlflow/releases", (REPO_ROOT / "README.md").read_text()).group(1)
    variables = stack_variables_text()
    default = re.search(r'variable "container_registry" \{.*?default\s*=\s*"([^"]*)"', variables, re.S).group(1)
    assert default == f"ghcr.io/{owner}"


def test_the_release_steps_produce_the_zip_the_deploy_button_downloads(tmp_path):
    """The digests step, then the build step, run as written in release.yml, in a copy of the project
    with orm-pack on PATH as the workflow installs it."""
    orm_pack = shutil.which("orm-pack", path=str(Path(sys.executable).parent))
    assert orm_pack, "orm-pack is not installed beside this Python"
    project = copy_tracked_files(tmp_path / "project")
    digests = {role: "sha256:" + hashlib.sha256(role.encode()).hexdigest() for role in ("serving", "tracking", "training")}
    (project / "digests").mkdir()
    for role, digest in digests.items():
        (project / "digests" / role).write_text(digest + "\n")
    job = _workflow("release.yml")["jobs"]["stack"]
    env = {"PATH": f"{Path(orm_pack).parent}{os.pathsep}{os.environ['PATH']}"}

    for name in ("The images' digests, for the VMs to pull by", "Build the stack zip", "Check the zip it publishes"):
        result = _run_step(_step(job, name), project, env)
        assert result.returncode == 0, f"{name}:\n{result.stdout}\n{result.stderr}"

    dist = project / "dist"
    button_zip = dist / _button_zip_name()
    assert sorted(p.name for p in dist.iterdir()) == sorted([button_zip.name, f"oci-mlflow-stack-{VERSION}.zip", "SHA256SUMS"])
    assert button_zip.read_bytes() == (dist / f"oci-mlflow-stack-{VERSION}.zip").read_bytes()
    checked = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=dist, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    with zipfile.ZipFile(button_zip) as archive:
        names = set(archive.namelist())
        assert {"schema.yaml", "VERSION", "provider.tf", "docker/images.json"} <= names
        assert yaml.safe_load(archive.read("docker/images.json")) == digests
        assert archive.read("VERSION").decode().strip() == VERSION


def test_the_release_notes_are_this_version_s_changelog_section(tmp_path):
    publish = _step(_workflow("release.yml")["jobs"]["stack"], "Publish the release")["run"]
    awk_line = next(line for line in publish.splitlines() if line.strip().startswith("awk "))
    for name in ("CHANGELOG.md", "VERSION"):
        shutil.copy2(REPO_ROOT / name, tmp_path / name)
    result = subprocess.run(["bash", "-e", "-c", awk_line.strip()], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    notes = (tmp_path / "notes.md").read_text()
    changelog = (REPO_ROOT / "CHANGELOG.md").read_text()
    section = changelog.split(f"## [{VERSION}]", 1)[1].split("\n## [", 1)[0]
    assert notes.strip() and notes.strip() == section.split("\n", 1)[1].strip()
    assert "## [" not in notes
    assert "gh release create" in publish and "dist/SHA256SUMS" in publish
