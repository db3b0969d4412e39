"""Upgrade journeys: a deployment of MLflow 3.15 or 3.16 on MariaDB, with real data (10,000 runs with their
metrics, params and tags, registered models with versions and aliases, a user per person with their grants),
starts this release's tracking server with MLflow's own users. Its start migrates both databases once, under
the lock, and journals it; afterwards every run, metric, model version, alias and user is there as it was,
MLflow's API finds them, each person signs in with their old password and reads what they may, and
`orm-pack doctor` passes through the auth proxy.

Each version has a database pair of its own on the session's MariaDB, prepared as that release's first boot
prepared it (docker/tracking/init_db.py run with that MLflow) and filled by that MLflow
(tests/harness/mlflow_data.py as a script); both are dropped at the end."""
import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from dataplane.stacks import DB_PASSWORD, RUNTIME, start_proxy, start_tracking_replica
from dataplane.test_auth_upgrade import ADMIN, AUTH_ENV
from dataplane.trust import CA_FILE
from harness import mlflow_data
from harness.tools import OLDER_MLFLOWS, older_mlflow
from orm_pack.local import credentials
from orm_pack.local.services import python_env
from orm_pack.mlflow_api.doctor import LOOPBACK_BROWSER_HOST

pytestmark = [pytest.mark.journey, pytest.mark.dataplane]

INIT_DB = RUNTIME.root / "docker" / "tracking" / "init_db.py"
SCRIPT = Path(mlflow_data.__file__)
SHAPE = mlflow_data.Shape(runs=10_000, experiments=10, metrics_per_run=5, steps_per_metric=1, params_per_run=5,
                          tags_per_run=3, models=4, versions_per_model=3, users=6, seed=11)
API = "/api/2.0/mlflow"


def uri(mariadb, user: str, database: str) -> str:
    """A database as the MLflow user reaches it: over TLS, the server's certificate verified."""
    return (f"mysql+pymysql://{user}:{quote(DB_PASSWORD, safe='')}@{mariadb.host}:"
            f"{mariadb.port}/{database}?charset=utf8mb4&ssl_ca={quote(mariadb.ca_file, safe='')}&ssl_check_hostname=true")


def query(mariadb, database: str, sql: str, params=None) -> list[tuple]:
    with mariadb.admin(database) as connection, connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [tuple(row) for row in cursor.fetchall()]


def drop(mariadb, database: str) -> None:
    with mariadb.admin() as connection, connection.cursor() as cursor:
        for name in (database, f"{database}_rehearsal", f"{database}_auth"):
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cursor.execute(f"DROP USER IF EXISTS '{database}'@'%'")


def older(mlflow_dir: Path, *argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """A script run by the older MLflow, as its deployment ran it."""
    done = subprocess.run([sys.executable, *argv], env={**python_env(), **(env or {}), "PYTHONPATH": str(mlflow_dir)},
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def users_but(mariadb, database: str, admin: str) -> list[tuple]:
    return query(mariadb, f"{database}_auth", "SELECT username, password_hash, is_admin FROM users WHERE username <> %s "
                 "ORDER BY username", (admin,))


def get(url: str, path: str, login: tuple[str, str], **params) -> requests.Response:
    return requests.get(f"{url}{API}/{path}", params=params, auth=login, timeout=60)


@pytest.mark.parametrize("version", OLDER_MLFLOWS)
def test_a_deployment_with_real_data_upgrades_to_this_release_with_everything_in_it(version, tracker, tmp_path,
                                                                                    mariadb, s3):
    import mlflow
    from alembic.script import ScriptDirectory
    from mlflow.server.auth.db.utils import _get_alembic_config
    from mlflow.store.db import utils as db_utils

    mlflow_dir = older_mlflow(version)
    database = f"journey_{version.replace('.', '')}"
    tracking_uri, auth_uri = uri(mariadb, database, database), uri(mariadb, database, f"{database}_auth")
    drop(mariadb, database)
    try:
        # The older release's first boot, then its users' work: MLflow `version` writes every row.
        older(mlflow_dir, str(INIT_DB), env={
            "MYSQL_ADMIN_USER": mariadb.admin_user, "MYSQL_ADMIN_PASSWORD": mariadb.admin_password,
            **dict(mariadb.client_env()), "MLFLOW_DB_NAME": database, "MLFLOW_DB_USER": database,
            "MLFLOW_DB_PASSWORD": DB_PASSWORD, "MLFLOW_AUTH_DB_NAME": f"{database}_auth",
            "MLFLOW_BACKEND_STORE_URI": tracking_uri, "MLFLOW_AUTH_DATABASE_URI": auth_uri})
        filled = json.loads(older(mlflow_dir, str(SCRIPT), "fill", "--tracking-uri", tracking_uri, "--auth-uri", auth_uri,
                                  *(f"--{name.replace('_', '-')}={value}" for name, value in asdict(SHAPE).items())).stdout)
        assert (filled["mlflow_version"], filled["rows"]) == (version, SHAPE.rows())
        old_head = query(mariadb, database, "SELECT version_num FROM alembic_version")[0][0]
        before = mlflow_data.fingerprint(tracking_uri, auth_uri)
        assert {name: before.tables[name].rows for name in SHAPE.rows()} == SHAPE.rows()
        people_before = users_but(mariadb, database, ADMIN[0])
        first_experiment = filled["experiment_ids"][0]
        sample_run = query(mariadb, database, "SELECT run_uuid FROM runs WHERE experiment_id = %s AND run_uuid NOT IN "
                           "(SELECT run_uuid FROM latest_metrics WHERE is_nan) ORDER BY run_uuid LIMIT 1",
                           (first_experiment,))[0][0]
        sample_metrics = dict(query(mariadb, database, "SELECT `key`, value FROM latest_metrics WHERE run_uuid = %s",
                                    (sample_run,)))
        aliases = {(name, alias): str(number) for name, alias, number in query(
            mariadb, database, "SELECT name, alias, version FROM registered_model_aliases")}

        replica = start_tracking_replica(tracker, mariadb, s3, tmp_path, "pinned", database=database,
                                         s3_prefix=f"journey-{version}",
                                         # the name browsers reach it by, which the doctor's UI write uses
                                         extra_env=(*AUTH_ENV, ("MLFLOW_ALLOWED_HOSTS", f"{LOOPBACK_BROWSER_HOST}:*")))
        try:
            head = db_utils._get_latest_schema_revision()
            auth_head = ScriptDirectory.from_config(_get_alembic_config("sqlite://")).get_current_head()
            assert f"upgrading MLflow tables from revision {old_head} to {head}" in (tmp_path / "pinned.log").read_text()
            journal = query(mariadb, database, "SELECT from_revision, to_revision, mlflow_version, state "
                                               "FROM mlflow_oci_upgrades ORDER BY id")
            assert journal == [(None, old_head, version, "DONE"), (old_head, head, mlflow.__version__, "DONE")]
            assert query(mariadb, database, "SELECT version_num FROM alembic_version") == [(head,)]
            assert query(mariadb, f"{database}_auth", "SELECT version_num FROM alembic_version_auth") == [(auth_head,)]

            after = mlflow_data.fingerprint(tracking_uri, auth_uri)
            # The server's own start adds one row: its admin (MLFLOW_AUTH_ADMIN_USERNAME) in users, which the
            # older deployment did not have (its people were made by the fill). Only that row is left out: every
            # other table must digest the same, and every person's row (name, password hash, admin flag) too.
            assert users_but(mariadb, database, ADMIN[0]) == people_before
            assert query(mariadb, f"{database}_auth", "SELECT is_admin FROM users WHERE username = %s",
                         (ADMIN[0],)) == [(1,)]
            assert after.tables["users"].rows == before.tables["users"].rows + 1
            changed = [line for line in before.differences(after) if not line.startswith("users:")]
            assert changed == [], "\n".join(changed)

            # MLflow's API through the upgraded server finds the old data as it was.
            run = get(replica.url, "runs/get", ADMIN, run_id=sample_run)
            assert run.status_code == 200, run.text
            metrics = {metric["key"]: metric["value"] for metric in run.json()["run"]["data"]["metrics"]}
            assert metrics == pytest.approx(sample_metrics)
            found = requests.post(f"{replica.url}{API}/runs/search", json={"experiment_ids": [first_experiment],
                                  "max_results": 1000}, auth=ADMIN, timeout=120)
            assert len(found.json()["runs"]) == SHAPE.runs // SHAPE.experiments
            for (name, alias), number in aliases.items():
                resolved = get(replica.url, "registered-models/alias", ADMIN, name=name, alias=alias)
                assert (name, alias, resolved.json()["model_version"]["version"]) == (name, alias, number)
            assert {aliases[(name, "champion")] for name in filled["models"]} == {str(SHAPE.versions_per_model)}

            # Each person signs in with the password the older release gave them and reads their experiment; the
            # first reads its run and model but nothing beyond its grants (the default is NO_PERMISSIONS).
            for index, (username, password) in enumerate(sorted(filled["users"].items())):
                experiment = filled["experiment_ids"][index % len(filled["experiment_ids"])]
                seen = get(replica.url, "experiments/get", (username, password), experiment_id=experiment)
                assert (username, seen.status_code) == (username, 200), seen.text
            person = (mlflow_data.person(0), filled["users"][mlflow_data.person(0)])
            assert get(replica.url, "runs/get", person, run_id=sample_run).status_code == 200
            assert get(replica.url, "registered-models/alias", person, name=filled["models"][0],
                       alias="champion").status_code == 200
            assert get(replica.url, "experiments/get", person, experiment_id=filled["experiment_ids"][1]).status_code == 403
            assert get(replica.url, "registered-models/get", person, name=filled["models"][1]).status_code == 403
            assert get(replica.url, "runs/get", (person[0], "not-the-password"), run_id=sample_run).status_code == 401

            # And the doctor, through the auth proxy that passes logins on to MLflow's users, as the admin.
            proxy, url = start_proxy(tracker, tmp_path / "proxy", replica.port, credentials.generate("unused"),
                                     auth="upstream")
            try:
                doctor = subprocess.run(
                    [sys.executable, "-m", "orm_pack.cli", "doctor", url, "--ca-file", CA_FILE, "--model-name",
                     filled["models"][0], "--alias", "champion", "--artifact-mb", "1"],
                    env={**python_env(), "MLFLOW_TRACKING_USERNAME": ADMIN[0], "MLFLOW_TRACKING_PASSWORD": ADMIN[1]},
                    capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
            finally:
                tracker.stop(proxy)
            verdicts = [line.split()[0] for line in doctor.stdout.splitlines() if line.startswith(("PASS", "FAIL"))]
            assert (doctor.returncode, verdicts) == (0, ["PASS"] * 7), doctor.stdout + doctor.stderr
        finally:
            tracker.stop(replica.service)
    finally:
        drop(mariadb, database)
