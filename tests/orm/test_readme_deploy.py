"""README's terminal deploy, typed as a reader types it: the block runs in bash on a terminal, reads the
two passwords from the keyboard, and `orm-pack apply` asks before it applies. OCI is the Resource Manager
fake (reached through OCI_CLI_ENDPOINT), with the config in ~/.oci/config as README assumes."""
import os
import shutil
import sys
from pathlib import Path

import pytest

from harness.readme import block_starting, fill
from harness.terminal import run_in_terminal
from ormfake import write_oci_config
from ormfake.testing import COMPARTMENT, REGION, cli_env

pytestmark = pytest.mark.terraform

MYSQL_PASSWORD = "Db-admin-Passw0rd#2026"
MLFLOW_PASSWORD = "mlflow-Readme-Passw0rd"


def test_the_readme_terminal_deploy_applies_with_the_typed_passwords(tmp_path, api_key, fake):
    home = tmp_path / "home"
    write_oci_config(home / ".oci", api_key, region=REGION)
    script = fill(block_starting("read -rsp 'MySQL admin password: '"),
                  {"ocid1.compartment.oc1..xxxx": COMPARTMENT})
    orm_pack_dir = Path(shutil.which("orm-pack", path=str(Path(sys.executable).parent))).parent
    env = cli_env(home, {"OCI_CLI_ENDPOINT": fake.url, "TERM": "xterm",
                         "PATH": f"{orm_pack_dir}{os.pathsep}{os.environ['PATH']}"})

    result = run_in_terminal(["bash", "-e", "-c", script], [
        (r"MySQL admin password: ", MYSQL_PASSWORD),
        (r"MLflow password \(empty: Vault makes one\): ", MLFLOW_PASSWORD),
        (r"Apply these changes\?", "y"),
    ], env=env, cwd=tmp_path)

    assert result.returncode == 0, result.output
    assert MYSQL_PASSWORD not in result.output and MLFLOW_PASSWORD not in result.output  # typed unechoed, never printed
    (stack,) = fake.stacks.values()
    assert stack["compartmentId"] == COMPARTMENT
    assert stack["variables"]["allowed_ingress_cidr"] == "203.0.113.7/32"
    assert stack["variables"]["mysql_admin_password"] == MYSQL_PASSWORD  # from the environment, as typed
    assert stack["variables"]["mlflow_password"] == MLFLOW_PASSWORD
    jobs = sorted(fake.jobs.values(), key=lambda job: job["timeCreated"])
    assert [(j["operation"], j["lifecycleState"]) for j in jobs] == [("PLAN", "SUCCEEDED"), ("APPLY", "SUCCEEDED")]
    outputs = {o["outputName"]: o["outputValue"] for o in fake.job_outputs[jobs[1]["id"]]}
    assert f"MLflow: {outputs['mlflow_url']}" in result.output
