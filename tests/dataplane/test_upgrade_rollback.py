"""`orm-pack upgrade` against a deployment whose new version's migration breaks halfway: it ends with the
previous version serving the original data, within 10 minutes on this machine, and says where the failed
state is kept.

The deployment: the upgrade fixture stack (a DB system and a tracking VM whose user_data names the MLflow
version) in the Resource Manager fake, run by real Terraform against the provider double; its DB system's data
in a real MariaDB behind the fake's MySQL HeatWave API (backups are dumps, a restore is a new MariaDB); its
tracking VM run here by dataplane/tracking_vm.py after every apply (MLflow 3.16.1 from .tools, the pinned
3.17.2 from this venv, the auth proxy in front); orm-pack runs as a user runs it, a process of its own.
"""
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dataplane.tracking_vm import TrackingVm
from dataplane.trust import CA_FILE
from dataplane.upgrade_data import ADMIN_PASSWORD, SOURCE, database_uri, forget_the_health_gates_scratch, mlflow_data, start_cloud
from harness.mariadb_backend import MariaDBBackend
from harness.readme import block_starting, fill
from harness.terminal import run_in_terminal
from orm_pack.local import credentials
from ormfake.testing import COMPARTMENT, CliResult, cli_env

pytestmark = [pytest.mark.journey, pytest.mark.dataplane, pytest.mark.terraform]

STACK = "mlflow-upgrade"


@pytest.fixture
def cloud(tracker, s3, tmp_path):
    fake, config = start_cloud(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    login = credentials.generate("mlflow")
    vm = TrackingVm(fake, tracker, s3, tmp_path / "vm", MariaDBBackend.start(tracker, tmp_path / "mysql"), login,
                    break_migration={"3.17.2": "executor_backend"}).start()

    # What only this machine needs: the fakes' endpoints, the fixture stack, the proxy standing for the
    # reserved IP and the lane's CA; README's commands get them appended.
    plumbing = ["--config-file", str(config), "--endpoint", fake.url, "--poll-interval", "0.2", "--stack-name", STACK,
                "--source", str(SOURCE)]
    # --gate-wait: a VM booting on a loaded CI machine may take minutes (orm-pack upgrade waits 1800 s by default)
    upgrade_plumbing = ["--mlflow-url", vm.url, "--ca-file", CA_FILE, "--mysql-endpoint", fake.url,
                        "--compute-agent-endpoint", fake.url, "--gate-wait", "420"]
    # the login's user in full: a username another test left in the worker's environment must not reach the gate
    env = cli_env(home, {"ORM_PACK_VAR_mysql_admin_password": ADMIN_PASSWORD, "MLFLOW_TRACKING_USERNAME": login.username,
                         "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"})

    def orm_pack(*args: str, timeout: float = 600) -> CliResult:
        done = subprocess.run(["orm-pack", *args, "--compartment", COMPARTMENT, *plumbing], capture_output=True,
                              text=True, timeout=timeout, cwd=tmp_path, env=env, stdin=subprocess.DEVNULL)
        return CliResult(done.returncode, done.stdout, done.stderr)

    def readme_upgrade(lines: slice, answers=(), timeout: float = 900) -> CliResult:
        """README's "Upgrade MLflow" block as a reader runs it (those of its lines), with the password the stack
        would print."""
        script = fill(block_starting("orm-pack upgrade --compartment <compartment OCID> --dry-run"),
                      {"MLFLOW_TRACKING_PASSWORD=...": f"MLFLOW_TRACKING_PASSWORD={shlex.quote(login.password)}",
                       "<compartment OCID>": COMPARTMENT})
        script = "\n".join(script.splitlines()[lines])
        wrapper = (f"orm-pack() {{ command orm-pack \"$@\" {shlex.join(plumbing)} "
                   f"$([[ $1 == upgrade ]] && echo {shlex.quote(shlex.join(upgrade_plumbing))}); }}\nset -e\n")
        # On a terminal, as a reader runs it: the upgrade asks before it backs up and applies.
        done = run_in_terminal(["bash", "-c", wrapper + script], answers, env={**env, "TERM": "xterm"}, cwd=tmp_path,
                               timeout=timeout)
        return CliResult(done.returncode, done.output, "")

    try:
        yield fake, vm, orm_pack, readme_upgrade
    finally:
        vm.stop()
        fake.stop()


def test_a_migration_that_breaks_halfway_ends_with_the_previous_version_serving_the_data(cloud):
    fake, vm, orm_pack, readme_upgrade = cloud
    first = orm_pack("apply", "--auto-approve", "--var", "mlflow_version=3.16.1", "--var", f"mlflow_url={vm.url}")
    assert first.code == 0, first
    vm.wait_serving("3.16.1")
    original = fake.db_system_backend(next(iter(fake.mysql.db_systems)))
    mlflow_data("fill", "--tracking-uri", database_uri(original), "--runs", "500", "--models", "3", "--users", "0",
                version="3.16.1")
    before = mlflow_data("fingerprint", "--tracking-uri", database_uri(original))

    # the dry run says what would change and leaves the stack as it was
    (stack,) = fake.stacks.values()
    configured = (dict(stack["variables"]), stack["freeformTags"]["orm-pack-zip-sha256"])
    dry_run = readme_upgrade(slice(0, 1))
    assert dry_run.code == 0, dry_run
    assert "MLflow 3.16.1 -> 3.17.2" in dry_run.stdout and "dc11669786a5" in dry_run.stdout
    assert "oci_core_instance.vm" in dry_run.stdout  # the stack's plan: the tracking VM is replaced
    (stack,) = fake.stacks.values()
    assert (stack["variables"], stack["freeformTags"]["orm-pack-zip-sha256"]) == configured

    started = time.monotonic()
    upgrade = readme_upgrade(slice(1, None), answers=[(r"Back up MySQL and upgrade MLflow 3\.16\.1 -> 3\.17\.2\?", "y")])
    elapsed = time.monotonic() - started
    output = upgrade.stdout + upgrade.stderr
    (vm.workdir / "upgrade.out").write_text(output)
    assert upgrade.code == 1, upgrade
    assert elapsed < 600, f"the upgrade and its rollback took {elapsed:.0f}s"

    # what it said: the plan, each step with its time, why it rolled back and where the failed state is
    assert "MLflow 3.16.1 -> 3.17.2" in output
    assert "dc11669786a5" in output and "75868b020152" in output  # the pending revisions
    failed_boot = vm.boots[1]
    assert failed_boot.version == "3.17.2"
    assert "a deliberately broken migration step" in failed_boot.log.read_text()
    # the gate did not wait its whole time: the VM said why its server will not come up
    assert "and will not be: the migration from revision b7e2c1a4d9f3 to dc11669786a5 stopped after revision" in output
    backups = {b["id"]: b for b in fake.mysql.backups.values()}
    failed = [b for b in backups.values() if "-failed-mlflow-3.17.2-" in b["displayName"]]
    assert len(failed) == 1 and failed[0]["lifecycleState"] == "ACTIVE"
    assert f"The failed database is kept in backup {failed[0]['id']}" in output, output[-6000:]
    assert "Rolled back: MLflow 3.16.1 serves the data as it was before the upgrade" in output, output[-6000:]

    # the previous version serves the original data, on the restored DB system the stack now manages
    serving = vm.wait_serving("3.16.1")
    assert len(vm.boots) == 3 and serving is vm.boots[2]
    restored_id = fake.job_outputs[max((j for j in fake.jobs.values() if j["operation"] == "APPLY"),
                                       key=lambda j: j["timeCreated"])["id"]]
    restored_id = {o["outputName"]: o["outputValue"] for o in restored_id}["mysql_db_system_id"]
    assert restored_id != next(iter(fake.mysql.db_systems))
    assert fake.mysql.db_systems[next(iter(fake.mysql.db_systems))]["lifecycleState"] == "DELETED"
    restored = fake.db_system_backend(restored_id)
    forget_the_health_gates_scratch(restored)
    after = mlflow_data("fingerprint", "--tracking-uri", database_uri(restored))
    assert after == before

    # the next plan does not fight the restored DB system: it reads it and changes nothing
    again = orm_pack("plan")
    assert again.code == 0, again
    assert f"oci_mysql_mysql_db_system.mlflow: Refreshing state... [id={restored_id}]" in again.stdout, again
    assert "No changes. Your infrastructure matches the configuration." in again.stdout, again
    rollback_apply = fake.job_logs[max((j for j in fake.jobs.values() if j["operation"] == "APPLY"),
                                       key=lambda j: j["timeCreated"])["id"]]
    assert not [line for line in rollback_apply if "oci_mysql_mysql_db_system.mlflow: Modifying" in line["message"]]
