"""`orm-pack upgrade` on a stack whose MLflow runs on its OKE cluster: the plan and the migration run as Jobs of the
cluster, the old version's pods are stopped before the migration, and a migration that breaks halfway ends with
the previous version serving the original data; the same upgrade then goes through.

The deployment: the upgrade fixture stack with deployment_target = oke in the Resource Manager fake (real
Terraform, the provider double); its DB system's data in a real MariaDB behind the fake's MySQL HeatWave API; the
cluster is okefake's kubectl, whose pods okefake's Kubelet runs here through dataplane/oke_nodes.py (MLflow
3.16.1 from .tools, the pinned 3.17.2 from this venv, the auth proxy at the load balancer's address).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dataplane.oke_nodes import OkeNodes
from dataplane.trust import CA_FILE
from dataplane.upgrade_data import ADMIN_PASSWORD, SOURCE, database_uri, forget_the_health_gates_scratch, mlflow_data, start_cloud
from harness.mariadb_backend import MariaDBBackend
from okefake import install
from okefake.kubelet import Kubelet
from orm_pack.local import credentials
from ormfake.containerengine import Cluster
from ormfake.testing import COMPARTMENT, CliResult, cli_env

pytestmark = [pytest.mark.journey, pytest.mark.dataplane, pytest.mark.terraform]

STACK = "mlflow-upgrade-oke"
# The fixture's oke_deploy_settings names these (tests/orm/fixtures/stack-upgrade/stack/outputs.tf).
CLUSTER_ID = "ocid1.cluster.oc1.phx.amaaaaaazg6sntqtzwftee7gvabu6rtmxor2uthl6aoxm5qylpzr33ze32yq"
ADMIN_SECRET = "ocid1.vaultsecret.oc1.phx.amaaaaaarsako3pa66gvyyubfiar6xktoe2d4jzrab325iyhcavlv2ghrahq"
IMAGES = "phx.ocir.io/upgradetest/oci-mlflow-tracking:0.9.0"


@pytest.fixture
def oke(tracker, s3, tmp_path):
    fake, config = start_cloud(tmp_path)
    fake.add_cluster(Cluster(CLUSTER_ID, "us-phoenix-1", "203.0.113.10:6443"))
    backend = MariaDBBackend.start(tracker, tmp_path / "mysql")
    fake.add_secret(ADMIN_SECRET, backend.server.admin_password)
    login = credentials.generate("mlflow")
    nodes = OkeNodes(fake, tracker, s3, tmp_path / "nodes", login, break_migration={"3.17.2": "executor_backend"})
    nodes.workdir.mkdir()
    cluster = install(tmp_path / "kube", CLUSTER_ID)
    kubelet = Kubelet(cluster.state_file, nodes).start()
    home = tmp_path / "home"
    home.mkdir()
    # the login in full: a username another test left in the worker's environment must not reach the gate
    env = cli_env(home, {"ORM_PACK_VAR_mysql_admin_password": ADMIN_PASSWORD, "MLFLOW_TRACKING_PASSWORD": login.password,
                         "MLFLOW_TRACKING_USERNAME": login.username,
                         "PATH": f"{cluster.bin_dir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}"
                                 f"{os.environ['PATH']}", "FAKE_KUBE_STATE": str(cluster.state_file)})
    plumbing = ["--compartment", COMPARTMENT, "--config-file", str(config), "--endpoint", fake.url,
                "--poll-interval", "0.2", "--stack-name", STACK]
    oke_plumbing = ["--container-engine-endpoint", fake.url, "--secrets-endpoint", fake.url]

    def orm_pack(*args: str, timeout: float = 900) -> CliResult:
        extra = {"apply": ["--source", str(SOURCE)], "oke": oke_plumbing,
                 "upgrade": ["--source", str(SOURCE), *oke_plumbing, "--mlflow-url", nodes.url, "--ca-file", CA_FILE,
                             "--mysql-endpoint", fake.url, "--gate-wait", "420", "--oke-timeout", "300"]}[args[0]]
        done = subprocess.run(["orm-pack", *args, *plumbing, *extra], capture_output=True, text=True, timeout=timeout,
                              cwd=tmp_path, env=env, stdin=subprocess.DEVNULL)
        return CliResult(done.returncode, done.stdout, done.stderr)

    def said(result: CliResult) -> str:
        return result.stdout[-4000:] + result.stderr[-4000:]

    try:
        yield fake, nodes, cluster, backend, orm_pack, said
    finally:
        kubelet.stop()
        nodes.halt()
        nodes.address.close()
        fake.stop()


def latest_outputs(fake) -> dict:
    job = max((j for j in fake.jobs.values() if j["operation"] == "APPLY" and j["lifecycleState"] == "SUCCEEDED"),
              key=lambda j: j["timeCreated"])
    values = {o["outputName"]: o["outputValue"] for o in fake.job_outputs[job["id"]]}
    return {name: json.loads(value) if isinstance(value, str) and value.startswith("{") else value
            for name, value in values.items()}


def test_an_oke_upgrade_runs_its_jobs_in_the_cluster_rolls_back_a_broken_migration_then_goes_through(oke):
    fake, nodes, cluster, backend, orm_pack, said = oke
    first = orm_pack("apply", "--auto-approve", "--var", "deployment_target=oke", "--var", "mlflow_version=3.16.1",
                     "--var", f"mlflow_url={nodes.url}")
    assert first.code == 0, said(first)
    outputs = latest_outputs(fake)
    assert outputs["tracking_instance_id"] == ""
    assert outputs["oke_deploy_settings"]["tracking_image"] == f"{IMAGES}-mlflow3.16.1"
    original_id = outputs["mysql_db_system_id"]
    fake.add_db_system(COMPARTMENT, "upgrade-mysql", "10.0.2.10", backend, db_system_id=original_id)
    deployed = orm_pack("oke", "deploy", "--timeout", "300")
    assert deployed.code == 0, said(deployed)
    assert nodes.serving() == "3.16.1"
    mlflow_data("fill", "--tracking-uri", database_uri(backend), "--runs", "300", "--models", "2", "--users", "0",
                version="3.16.1")
    before = mlflow_data("fingerprint", "--tracking-uri", database_uri(backend))

    # 3.17.2's second revision breaks on the real data: the plan Job's rehearsal on an empty copy passes
    upgrade = orm_pack("upgrade", "--to", "3.17.2", "--auto-approve")
    output = upgrade.stdout + upgrade.stderr
    (nodes.workdir / "upgrade.out").write_text(output)
    assert upgrade.code == 1, output[-6000:]
    assert "1. plan MLflow 3.16.1 -> 3.17.2 in the OKE cluster" in output
    assert "dc11669786a5" in output
    plan_run, failed_migration, rollback_migration = nodes.jobs[1:]
    assert plan_run == ("mlflow-upgrade-plan", "3.17.2", 0)  # the target's image, and the pre-checks passed
    assert failed_migration[:2] == ("mlflow-migrate", "3.17.2") and failed_migration[2] != 0
    assert rollback_migration == ("mlflow-migrate", "3.16.1", 0)
    assert "a deliberately broken migration step" in output  # the migrate Job's log, in the report
    # the old version's pods were stopped before the migration Job ran
    calls = cluster.calls()
    stop = calls.index(["scale", "deployment/mlflow-tracking", "--replicas=0"])
    migrate_jobs = [i for i, call in enumerate(calls) if call[:2] == ["delete", "job/mlflow-migrate"]]
    assert stop < migrate_jobs[1], calls
    assert [version for version, *_ in nodes.served] == ["3.16.1", "3.16.1"]  # 3.17.2 never served
    failed = [b for b in fake.mysql.backups.values() if "-failed-mlflow-3.17.2-" in b["displayName"]]
    assert len(failed) == 1 and f"The failed database is kept in backup {failed[0]['id']}" in output, output[-6000:]
    assert "Rolled back: MLflow 3.16.1 serves the data as it was before the upgrade" in output, output[-6000:]
    assert nodes.serving() == "3.16.1"
    restored_id = latest_outputs(fake)["mysql_db_system_id"]
    assert restored_id != original_id
    restored = fake.db_system_backend(restored_id)
    forget_the_health_gates_scratch(restored)
    assert mlflow_data("fingerprint", "--tracking-uri", database_uri(restored)) == before

    # with the step mended, the same upgrade goes through on the restored system
    nodes.break_migration.clear()
    again = orm_pack("upgrade", "--to", "3.17.2", "--auto-approve")
    assert again.code == 0, said(again)
    assert nodes.serving() == "3.17.2"
    assert latest_outputs(fake)["oke_deploy_settings"]["tracking_image"] == IMAGES
    forget_the_health_gates_scratch(restored)
    assert mlflow_data("fingerprint", "--tracking-uri", database_uri(restored)) == before
