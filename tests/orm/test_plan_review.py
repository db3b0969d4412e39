"""Before a user confirms, the plan tells the truth: every resource with its action, a replacement
called a replacement with the attributes that force it, a warning for each resource holding data that
would be lost, and an estimated monthly cost from the committed price table."""
import json
import os
import pty
import subprocess
import sys

import pytest

from orm_pack.deploy.cost import price_table
from ormfake.testing import COMPARTMENT, TESTS_DIR, cli_env

pytestmark = pytest.mark.terraform

DATA_SOURCE = TESTS_DIR / "orm" / "fixtures" / "stack-data"
STACK = "mlflow-data"
COMMON = ("--compartment", COMPARTMENT, "--stack-name", STACK, "--source", str(DATA_SOURCE))
PASSWORD = "Sup3r-Secret-pw"


def _mysql2_month() -> float:
    prices = price_table()
    mysql = prices["mysql"]
    return round(mysql["ecpus"]["MySQL.2"] * mysql["ecpu_hour"] * prices["hours_per_month"]
                 + 50 * mysql["storage_gb_month"], 2)


@pytest.fixture
def applied(orm_pack, fake):
    """The data stack applied once, its password given through the environment, never on the command line."""
    env = {"ORM_PACK_VAR_mysql_admin_password": PASSWORD}
    first = orm_pack("apply", *COMMON, "--auto-approve", env=env)
    assert first.code == 0, first
    assert PASSWORD not in first.stdout + first.stderr
    (stack,) = fake.stacks.values()
    assert stack["variables"]["mysql_admin_password"] == PASSWORD
    return env


def test_moving_the_database_shows_a_replacement_and_the_data_it_loses(orm_pack, fake, applied):
    result = orm_pack("plan", *COMMON, "--var", "availability_domain_index=1", env=applied)
    assert result.code == 0, result
    rows = [" ".join(line.replace("│", " ").split()) for line in result.stdout.splitlines()]
    assert "REPLACE oci_mysql_mysql_db_system.mlflow forced by availability_domain" in rows, result.stdout
    assert "Plan: 1 to add, 0 to change, 1 to destroy." in result.stdout
    warning = ("WARNING: oci_mysql_mysql_db_system.mlflow will be replaced: the MLflow database: experiments, "
               "runs, metrics and the model registry would be lost")
    assert warning in " ".join(result.stdout.split())

    as_json = orm_pack("plan", *COMMON, "--var", "availability_domain_index=1", "--json", env=applied)
    document = json.loads(as_json.stdout)["plan"]
    assert document["changes"] == [{"address": "oci_mysql_mysql_db_system.mlflow", "type": "oci_mysql_mysql_db_system",
                                    "action": "replace", "forced_by": ["availability_domain"]}]
    assert [risk["address"] for risk in document["data_at_risk"]] == ["oci_mysql_mysql_db_system.mlflow"]


def test_the_prompt_comes_after_the_warning_and_no_declines(tmp_path, oci_config, fake, applied):
    """At a terminal, answering no at the prompt leaves everything as it was (exit 8)."""
    controller, terminal = pty.openpty()
    os.write(controller, b"n\n")
    command = [sys.executable, "-m", "orm_pack.cli", "apply", *COMMON, "--var", "availability_domain_index=2",
               "--config-file", str(oci_config), "--endpoint", fake.url, "--poll-interval", "0.2",
               "--max-attempts", "1"]
    home = tmp_path / "home"  # made by the orm_pack fixture that `applied` uses
    result = subprocess.run(command, stdin=terminal, capture_output=True, text=True, timeout=300,
                            env=cli_env(home, applied), cwd=tmp_path)
    os.close(terminal)
    os.close(controller)
    assert result.returncode == 8, (result.stdout, result.stderr)
    flat = " ".join(result.stdout.split())
    assert flat.index("WARNING: oci_mysql_mysql_db_system.mlflow will be replaced") < \
        flat.index("Apply these changes, losing the data above?")
    assert result.stderr.strip().splitlines()[-1] == "orm-pack: error: cancelled: nothing was applied"
    assert [j["operation"] for j in fake.jobs.values()].count("APPLY") == 1  # the first apply only


def test_the_plan_shows_an_estimated_monthly_cost(orm_pack, fake):
    env = {"ORM_PACK_VAR_mysql_admin_password": PASSWORD}
    result = orm_pack("plan", *COMMON, "--json", env=env)
    assert result.code == 0, result
    cost = json.loads(result.stdout)["plan"]["cost"]
    expected = _mysql2_month()
    assert cost["monthly_total"] == expected
    assert cost["prices_checked"] == price_table()["checked"]
    assert [line["address"] for line in cost["lines"]] == ["oci_mysql_mysql_db_system.mlflow"]
    assert cost["usage_based"] == ["oci_objectstorage_bucket.artifacts"]
    assert f"Estimated cost: {expected:.2f} USD a month" in " ".join(result.stderr.split())

    free = orm_pack("plan", *COMMON, "--var", "mysql_shape=MySQL.Free", "--json", env=env)
    free_cost = json.loads(free.stdout)["plan"]["cost"]
    assert free_cost["monthly_total"] == 0 and free_cost["beyond_free_tier"] == []


def test_destroy_names_what_holds_data(orm_pack, fake, applied):
    result = orm_pack("destroy", *COMMON[:4], "--auto-approve", env=applied)
    assert result.code == 0, result
    flat = " ".join(result.stdout.split())
    assert "WARNING: destroying oci_mysql_mysql_db_system.mlflow loses the MLflow database" in flat
    assert "WARNING: destroying oci_objectstorage_bucket.artifacts loses the MLflow artifacts" in flat
