"""`orm-pack upgrade` refuses what it cannot do safely, with one line and before it changes anything: a version
this release does not run, no password for its health gate, and an Always Free DB system, which HeatWave
does not let take a manual backup ("Creating a Manual Backup": "You cannot create a manual backup on an Always
Free DB system"), so a failed migration could not be rolled back."""
import pytest

from ormfake.testing import COMPARTMENT, TESTS_DIR

SOURCE = TESTS_DIR / "orm" / "fixtures" / "stack-upgrade"
STACK = "mlflow-upgrade"
PASSWORDS = {"ORM_PACK_VAR_mysql_admin_password": "Upgrade-Admin-Passw0rd#1", "MLFLOW_TRACKING_PASSWORD": "pw"}


class NoData:
    """A DB system's data the test never reads."""

    def snapshot(self, path):
        path.write_text("")

    def restore(self, path):
        return self


def upgrade(orm_pack, fake, *extra, env=PASSWORDS):
    return orm_pack("upgrade", "--compartment", COMPARTMENT, "--stack-name", STACK, "--source", str(SOURCE),
                    "--auto-approve", "--mysql-endpoint", fake.url, "--compute-agent-endpoint", fake.url, *extra,
                    env=env)


def test_a_version_this_release_does_not_run_is_refused_before_any_request(orm_pack, fake):
    result = upgrade(orm_pack, fake, "--to", "3.18.0")
    assert result.code == 2, result
    assert "--to 3.18.0: this release runs MLflow 3.17.2, 3.16.1, 3.15.2" in result.stderr
    assert fake.jobs == {} and fake.stacks == {}


def test_without_the_password_the_health_gate_needs_nothing_starts(orm_pack, fake):
    result = upgrade(orm_pack, fake, env={"ORM_PACK_VAR_mysql_admin_password": PASSWORDS["ORM_PACK_VAR_mysql_admin_password"]})
    assert result.code == 2, result
    assert "set MLFLOW_TRACKING_PASSWORD first" in result.stderr
    assert fake.jobs == {}


@pytest.mark.terraform
def test_an_always_free_db_system_is_refused_and_the_stack_left_alone(orm_pack, fake):
    applied = orm_pack("apply", "--compartment", COMPARTMENT, "--stack-name", STACK, "--source", str(SOURCE),
                  "--auto-approve", "--var", "mlflow_version=3.16.1", env=PASSWORDS)
    assert applied.code == 0, applied
    (apply_job,) = [job for job in fake.jobs.values() if job["operation"] == "APPLY"]
    outputs = {o["outputName"]: o["outputValue"] for o in fake.job_outputs[apply_job["id"]]}
    fake.add_db_system(COMPARTMENT, "upgrade-mysql", "10.0.2.10", NoData(), db_system_id=outputs["mysql_db_system_id"],
                       shape_name="MySQL.Free")
    (stack,) = fake.stacks.values()
    before = (dict(stack["variables"]), len(fake.jobs))

    result = upgrade(orm_pack, fake, "--to", "3.17.2")
    assert result.code == 2, result
    assert "the DB system is Always Free (MySQL.Free), which cannot take a manual backup" in result.stderr
    (stack,) = fake.stacks.values()
    assert (stack["variables"], len(fake.jobs)) == before
    assert fake.mysql.backups == {}
