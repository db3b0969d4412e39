"""README's OKE commands end to end, as a reader runs them: `orm-pack apply --var deployment_target=oke`
through the Resource Manager fake (real Terraform, the provider double), then `orm-pack oke deploy`
reading that apply's outputs, writing the kubeconfig of the cluster the apply created (the Container
Engine fake finds it in the stack's state) and deploying to the pretend cluster behind the fake kubectl."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.readme import block_starting
from okefake import install
from ormfake import write_oci_config
from ormfake.testing import COMPARTMENT, REGION, cli_env

pytestmark = pytest.mark.terraform

MYSQL_PASSWORD = "Db-admin-Passw0rd#2026"


def test_the_readme_oke_commands_deploy_mlflow_on_the_stacks_cluster(tmp_path, api_key, fake):
    apply_line, install_cli_line, deploy_line = block_starting(
        "orm-pack apply --compartment ocid1.compartment.oc1..xxxx --var deployment_target=oke").text.splitlines()
    assert install_cli_line.startswith("pip install oci-cli")  # the fake kubectl's `oci` stands in for it here
    home = tmp_path / "home"
    write_oci_config(home / ".oci", api_key, region=REGION)
    orm_pack_dir = Path(shutil.which("orm-pack", path=str(Path(sys.executable).parent))).parent
    env = cli_env(home, {"OCI_CLI_ENDPOINT": fake.url, "ORM_PACK_VAR_mysql_admin_password": MYSQL_PASSWORD,
                         "PATH": f"{orm_pack_dir}{os.pathsep}{os.environ['PATH']}"})

    def run(line: str, extra_env=None) -> subprocess.CompletedProcess:
        line = line.replace("ocid1.compartment.oc1..xxxx", COMPARTMENT)
        return subprocess.run(["bash", "-e", "-c", line], env={**env, **(extra_env or {})}, cwd=tmp_path,
                              capture_output=True, text=True, timeout=1200, stdin=subprocess.DEVNULL)

    applied = run(apply_line + " --auto-approve")
    assert applied.returncode == 0, applied.stdout[-3000:] + applied.stderr[-3000:]
    apply_job = [j for j in fake.jobs.values() if j["operation"] == "APPLY"][0]
    outputs = {o["outputName"]: o["outputValue"] for o in fake.job_outputs[apply_job["id"]]}
    assert outputs["oke_cluster_id"].startswith("ocid1.cluster.")
    assert "orm-pack oke deploy" in outputs["oke_next_command"]

    kube = install(tmp_path / "kube", outputs["oke_cluster_id"], mysql_admin_password=MYSQL_PASSWORD)
    cluster_env = {**kube.env(), "PATH": f"{kube.bin_dir}{os.pathsep}{env['PATH']}"}
    # The administrator's password comes from the stack's Vault secret, read with the reader's key.
    deployed = run(deploy_line + f" --container-engine-endpoint {fake.url} --secrets-endpoint {fake.url} --timeout 30",
                   cluster_env)
    assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
    # the load balancer comes up at the stack's reserved address: the URL the outputs gave before the deploy
    assert f"MLflow on OKE: {outputs['mlflow_url']}/" in deployed.stdout
    assert outputs["mlflow_url"] == f"https://{outputs['tracking_public_ip']}"
    kubeconfig = home / ".kube" / "oci-mlflow-oke.yaml"
    assert outputs["oke_cluster_id"] in kubeconfig.read_text()
    objects = kube.objects()
    service = objects["Service/mlflow/mlflow"]
    annotations = service["metadata"]["annotations"]
    assert annotations["service.beta.kubernetes.io/oci-load-balancer-subnet1"].startswith("ocid1.subnet.")
    assert annotations["oci.oraclecloud.com/oci-network-security-groups"].startswith("ocid1.networksecuritygroup.")
    assert service["spec"]["loadBalancerIP"] == outputs["tracking_public_ip"]
    tracking_settings = [o for k, o in objects.items() if k.startswith("ConfigMap/mlflow/mlflow-tracking-")][0]["data"]
    assert tracking_settings["MLFLOW_DB_PASSWORD_SECRET_OCID"].startswith("ocid1.vaultsecret.")
    assert MYSQL_PASSWORD not in deployed.stdout + deployed.stderr + str(objects)
