"""Every code block in README is either run by a test, as a reader would run it, or says why not.

Run here: the quickstart (a fresh venv from a clean copy of the project, then `orm-pack build`) followed
by the laptop runtime (`pip install -e '.[local]' && orm-pack local up`); the fast-lane command's
selection. Run elsewhere: the terminal deploy (tests/orm/test_readme_deploy.py) and the doctor, notebook
and curl blocks (tests/dataplane/test_doctor.py), the Mermaid diagram (tests/test_readme_diagram.py)."""
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from harness.loopback import wait_healthy
from harness.project import copy_tracked_files
from harness.readme import block_starting, code_blocks

REPO_ROOT = Path(__file__).resolve().parents[1]

RUN_BY = {
    "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/orm-pack build":
        "tests/test_readme_commands.py::test_the_quickstart_and_the_laptop_runtime_work_from_a_clean_copy",
    ".venv/bin/pip install -e '.[local]' && .venv/bin/orm-pack local up":
        "tests/test_readme_commands.py::test_the_quickstart_and_the_laptop_runtime_work_from_a_clean_copy",
    '.venv/bin/python -m pytest -n 2 -m "not terraform and not dataplane"':
        "tests/test_readme_commands.py::test_the_fast_lane_command_leaves_out_terraform_and_the_runtime",
    "read -rsp 'MySQL admin password: ' ORM_PACK_VAR_mysql_admin_password && export ORM_PACK_VAR_mysql_admin_password":
        "tests/orm/test_readme_deploy.py::test_the_readme_terminal_deploy_applies_with_the_typed_passwords",
    "export MLFLOW_TRACKING_PASSWORD   # the MLflow password (the output mlflow_password_command prints it)":
        "tests/dataplane/test_doctor.py::test_the_readme_doctor_command_passes_on_a_working_deployment",
    "import os": "tests/dataplane/test_doctor.py::test_the_readme_notebook_settings_reach_mlflow",
    "curl -s --cacert \"$MLFLOW_TRACKING_SERVER_CERT_PATH\" -u mlflow:\"$MLFLOW_TRACKING_PASSWORD\" "
    "https://<serving-ip>:1234/invocations \\":
        "tests/dataplane/test_doctor.py::test_the_readme_curl_gets_a_prediction",
    "flowchart LR": "tests/test_readme_diagram.py::test_the_architecture_diagram_renders",
    "export MLFLOW_TRACKING_USERNAME=mlflow MLFLOW_TRACKING_PASSWORD   # the admin's login (mlflow_password_command)":
        "tests/dataplane/test_mlflow_users.py::test_the_readme_user_commands_manage_a_person",
    "orm-pack apply --compartment ocid1.compartment.oc1..xxxx --var deployment_target=oke --var "
    "allowed_ingress_cidr=203.0.113.7/32":
        "tests/orm/test_oke_e2e.py::test_the_readme_oke_commands_deploy_mlflow_on_the_stacks_cluster",
    "orm-pack upgrade --compartment <compartment OCID> --dry-run   # what would change, and the database's checks":
        "tests/dataplane/test_upgrade_rollback.py::"
        "test_a_migration_that_breaks_halfway_ends_with_the_previous_version_serving_the_data",
    "orm-pack sso groups-claim --domain-url https://idcs-<id>.identity.oraclecloud.com":
        "tests/orm/test_sso_groups_claim.py::test_the_readme_command_adds_the_claim",
}
NOT_RUN = {
    ".venv/bin/python -m pytest -n 2": "the suite itself; tests/test_project.py checks that .ci/run runs exactly it",
    "docker build -f docker/Dockerfile-tracking -t <region-key>.ocir.io/<namespace>/oci-mlflow-tracking:<version> .":
        "needs a Docker engine and an OCIR login; the Dockerfile is checked statically "
        "(tests/dataplane/test_docker_static.py) and --image by tests/orm/test_oke_deploy.py",
    " notebook / browser ──HTTPS 443, basic auth──▶ tracking VM: nginx ─▶ mlflow server (127.0.0.1:5000)":
        "a text drawing, not a command",
}


def test_every_readme_code_block_is_run_by_a_test_or_says_why_not():
    first_lines = [block.first_line for block in code_blocks()]
    assert sorted(first_lines) == sorted([*RUN_BY, *NOT_RUN]), "classify the new README block here"
    for node_id in set(RUN_BY.values()):
        path, name = node_id.split("::")
        assert f"def {name}(" in (REPO_ROOT / path).read_text(), f"{node_id} does not exist"


def test_the_fast_lane_command_leaves_out_terraform_and_the_runtime():
    command = block_starting('.venv/bin/python -m pytest -n 2 -m "not terraform and not dataplane"').text.strip()
    argv = [sys.executable if word == ".venv/bin/python" else word.strip('"')
            for word in command.replace('"not terraform and not dataplane"', "MARKEXPR").split()]
    argv = [("not terraform and not dataplane" if word == "MARKEXPR" else word) for word in argv]
    collected = subprocess.run([*argv, "--collect-only", "-q", "-p", "no:cacheprovider"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=300)
    assert collected.returncode == 0, collected.stdout + collected.stderr
    selected = [line for line in collected.stdout.splitlines() if "::" in line]
    assert len(selected) > 150
    for family in ("tests/stack/test_profiles.py", "tests/dataplane/test_browser.py", "tests/orm/test_clean_install.py",
                   "tests/orm/test_deploy_e2e.py", "tests/test_harness_terraform.py"):
        assert not any(line.startswith(family) for line in selected), family


@pytest.mark.install
@pytest.mark.dataplane
def test_the_quickstart_and_the_laptop_runtime_work_from_a_clean_copy(tmp_path):
    project = copy_tracked_files(tmp_path / "oci-mlflow")
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    # PIP_NO_COMPILE=0 is pip's way of saying --no-compile (the variable sets "compile"): byte-compiling
    # every installed file is most of an install's time and changes nothing the commands do.
    env.update(HOME=str(tmp_path), XDG_STATE_HOME=str(state), PIP_NO_COMPILE="0")
    # pip keeps its downloads where it would for this user, as a reader's pip does: the test is about the
    # commands, not about downloading MLflow's wheels again
    env["PIP_CACHE_DIR"] = os.environ.get("PIP_CACHE_DIR") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pip")

    def run(script: str, timeout: float = 1200) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-e", "-c", script], cwd=project, env=env, capture_output=True, text=True,
                              timeout=timeout)

    quickstart = run(block_starting("python3 -m venv .venv && ").text)
    assert quickstart.returncode == 0, quickstart.stdout + quickstart.stderr
    with zipfile.ZipFile(project / "dist" / "oci-mlflow-stack.zip") as archive:
        assert {"schema.yaml", "VERSION", "variables.tf"} <= set(archive.namelist())

    laptop = run(block_starting(".venv/bin/pip install -e '.[local]'").text)
    try:
        assert laptop.returncode == 0, laptop.stdout + laptop.stderr
        status = run(".venv/bin/orm-pack local status --json")
        assert status.returncode == 0, status.stdout + status.stderr
        document = json.loads(status.stdout)
        assert wait_healthy(document["tracking_url"] + "/health") == 200
        assert str(state) in laptop.stdout + laptop.stderr + status.stdout  # the per-user state directory
    finally:
        down = run(".venv/bin/orm-pack local down", timeout=300)
    assert down.returncode == 0, down.stdout + down.stderr
