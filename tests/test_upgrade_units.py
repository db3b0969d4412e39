"""The upgrade's pure parts: how a migration's statements are classed, the plan's one-line form for Run
Command (which returns only the last 1 KB of output), and the state edit that hands a restored DB system
to the stack."""
import hashlib
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docker" / "lib"))
from mlflow_oci.schema_plan import Plan, Step, classify, read_wire_format, wire_format  # noqa: E402

from harness.ocids import mint  # noqa: E402
from orm_pack.deploy import state_takeover  # noqa: E402


def test_a_statement_on_a_large_table_is_slow_and_a_drop_or_change_is_breaking():
    step = classify("r1", "title", [
        "SELECT 1",
        "UPDATE alembic_version SET version_num='r1' WHERE alembic_version.version_num = 'r0'",
        "CREATE INDEX index_metrics_run_uuid_key_step ON metrics (run_uuid, `key`, step)",
        "ALTER TABLE experiment_tags MODIFY value VARCHAR(8000) NULL",
        "ALTER TABLE jobs ADD COLUMN creator VARCHAR(255)",
    ], {"metrics": 1_500_000})
    assert (step.slow, step.breaking, step.tables, step.statements) == (True, True, ["metrics", "experiment_tags", "jobs"], 3)
    assert "about 1,500,000 rows" in step.why[0]
    quick = classify("r2", "t", ["CREATE TABLE job_locks (lock_key VARCHAR(255) NOT NULL, PRIMARY KEY (lock_key))",
                                 "ALTER TABLE jobs ADD COLUMN next_attempt_at BIGINT"], {})
    assert (quick.slow, quick.breaking) == (False, False)
    dropping = classify("r3", "t", ["ALTER TABLE jobs DROP COLUMN creator", "DROP TABLE old_things"], {})
    assert dropping.breaking and len(dropping.why) == 2


def _plan(steps: int, problems: list[dict]) -> Plan:
    return Plan("mlflow", "a" * 12, "3.10", "b" * 12, "3.17.2",
                [Step(f"{index:012x}", f"a migration with a long descriptive title {hashlib.sha1(str(index).encode()).hexdigest()[:10]}",
                      slow=index == 3, breaking=index == 1, tables=["metrics", "params"]) for index in range(steps)],
                problems)


@pytest.mark.parametrize("steps, problems", [
    (5, []),
    (40, []),
    (60, [{"kind": "charset", "table": f"t{n}", "what": "table is not in utf8mb4 " * 8,
           "fix": "ALTER TABLE `t` CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;\n" * 12} for n in range(3)]),
])
def test_the_plan_fits_run_commands_output_and_reads_back(steps, problems):
    plan = _plan(steps, problems)
    line = wire_format(plan)
    assert len(line) <= 1000 and "\n" not in line
    back = read_wire_format(line)
    assert [step["revision"] for step in back["steps"]] == [step.revision for step in plan.steps]
    assert [step["revision"] for step in back["steps"] if step.get("slow")] == ["000000000003"]
    assert [step["revision"] for step in back["steps"] if step.get("breaking")] == ["000000000001"]
    assert back["refused"] == bool(problems) and len(back["problems"]) == len(problems)
    assert back.get("shortened") or all(step["title"].startswith("a migration") for step in back["steps"])
    if steps == 5:
        assert json.loads(line)["steps"][0]["title"].startswith("a migration")  # small plans go whole, uncompressed


def _state(db_id: str) -> dict:
    return {"version": 4, "serial": 7, "lineage": "l-1", "resources": [
        {"mode": "managed", "type": "oci_core_instance", "name": "vm", "instances": [{"attributes": {"id": "i"}}]},
        {"mode": "managed", "type": "oci_mysql_mysql_db_system", "name": "mlflow", "instances": [{"attributes": {
            "id": db_id, "ip_address": "10.0.2.10", "source": [],
            "endpoints": [{"ip_address": "10.0.2.10", "resource_id": db_id}]}}]},
    ]}


def test_the_state_takes_the_restored_db_system_over():
    old, new = mint("mysqldbsystem", "before"), mint("mysqldbsystem", "restored")
    backup = mint("mysqlbackup")
    edited = state_takeover.take_over(_state(old), old, new, backup)
    attributes = edited["resources"][1]["instances"][0]["attributes"]
    assert attributes["id"] == new and attributes["endpoints"][0]["resource_id"] == new
    assert attributes["source"] == [{"source_type": "BACKUP", "backup_id": backup, "db_system_id": "",
                                     "recovery_point": "", "source_url": ""}]
    assert (edited["serial"], edited["lineage"]) == (8, "l-1")
    assert _state(old)["resources"][1]["instances"][0]["attributes"]["id"] == old  # the input is left alone
    with pytest.raises(state_takeover.TakeoverError, match="changed since the upgrade started"):
        state_takeover.take_over(_state(mint("mysqldbsystem", "other")), old, new, backup)


def test_the_vm_status_says_when_the_server_will_not_come_up():
    from orm_pack.deploy.upgrade import failure_on_vm

    booting = "service: mlflow-tracking activating\nrefused: none\n--- last 40 lines\ninit_db: creating MLflow tables\n"
    assert failure_on_vm(booting) is None
    broken = booting + ("2026-12-07T00:01:37Z init_db: ERROR: the migration from revision b7e2c1a4d9f3 to dc11669786a5 "
                        "stopped after revision 75868b020152: boom\n")
    assert failure_on_vm(broken).startswith("the migration from revision b7e2c1a4d9f3 to dc11669786a5 stopped after")
    refused = booting.replace("refused: none", "refused: upgrade to 3.17.2 refused: table `jobs` is not in utf8mb4")
    assert failure_on_vm(refused) == "the VM refused the upgrade at boot: upgrade to 3.17.2 refused: table `jobs` is not in utf8mb4"


def _zip(files: dict) -> bytes:
    import io
    import zipfile
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, text in files.items():
            bundle.writestr(name, text)
    return buffer.getvalue()


def test_the_image_of_a_version_follows_the_stacks_rule_digest_first():
    """stack/locals.tf's tracking_images, read from the zip before the apply that would put it in the outputs
    (tests/stack/test_mlflow_version.py checks the Terraform side of the same rule)."""
    from orm_pack.errors import UserError
    from orm_pack.stack.images import tracking_image
    registry = "phx.ocir.io/team"
    tagged = _zip({"VERSION": "1.4.0\n"})
    assert tracking_image(tagged, registry, "3.17.2", "3.17.2") == f"{registry}/oci-mlflow-tracking:1.4.0"
    assert tracking_image(tagged, registry, "3.16.1", "3.17.2") == f"{registry}/oci-mlflow-tracking:1.4.0-mlflow3.16.1"
    digests = {"tracking": "sha256:" + "a" * 64, "tracking-3.16.1": "sha256:" + "c" * 64}
    pinned = _zip({"VERSION": "1.4.0", "docker/images.json": json.dumps(digests)})
    assert tracking_image(pinned, registry, "3.17.2", "3.17.2") == f"{registry}/oci-mlflow-tracking@{digests['tracking']}"
    assert tracking_image(pinned, registry, "3.16.1", "3.17.2") == \
        f"{registry}/oci-mlflow-tracking@{digests['tracking-3.16.1']}"
    assert tracking_image(pinned, registry, "3.15.2", "3.17.2") == f"{registry}/oci-mlflow-tracking:1.4.0-mlflow3.15.2"
    with pytest.raises(UserError, match="container_registry is empty"):
        tracking_image(tagged, "", "3.17.2", "3.17.2")
    with pytest.raises(UserError, match="no VERSION"):
        tracking_image(_zip({"schema.yaml": ""}), registry, "3.17.2", "3.17.2")


def test_the_plan_job_is_the_migrate_jobs_pod_once_in_plan_mode_with_the_target_image():
    from orm_pack.oke.upgrade_runtime import PLAN_JOB, last_json_line, plan_job
    migrate = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "mlflow-migrate"},
               "spec": {"backoffLimit": 3, "template": {"spec": {
                   "initContainers": [{"name": "ca", "image": "old"}],
                   "containers": [{"name": "migrate", "image": "old", "args": ["migrate"]}]}}}}
    job = plan_job(migrate, "phx.ocir.io/team/oci-mlflow-tracking:1.4.0")
    assert job["metadata"]["name"] == PLAN_JOB and job["spec"]["backoffLimit"] == 0  # exit 3 is an answer
    pod = job["spec"]["template"]["spec"]
    assert [c["image"] for c in pod["initContainers"] + pod["containers"]] == \
        ["phx.ocir.io/team/oci-mlflow-tracking:1.4.0"] * 2
    assert pod["containers"][0]["args"] == ["plan", "--json"]
    assert migrate["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]  # the original is untouched
    assert last_json_line(["progress", '{"refused": true}', "trailing"]) == {"refused": True}
    assert last_json_line(["no plan here"]) is None
