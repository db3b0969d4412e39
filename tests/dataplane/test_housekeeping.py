"""Housekeeping (docker/lib/mlflow_oci/housekeeping.py) on MariaDB with MLflow's own schema (primary keys
required, foreign keys enforced, as on MySQL HeatWave), run as the tracking image runs it: a command with the
database URI and the artifacts destination in its environment. It is killed in the middle of its work and run
again, as a VM reboot or a stopped timer would do."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

LIB = Path(__file__).resolve().parents[2] / "docker" / "lib"
ENTRYPOINT = LIB.parent / "tracking" / "entrypoint.sh"
pytestmark = pytest.mark.dataplane
DATABASE = "housekeeping"
DAY_MS = 24 * 3600 * 1000
OLD_DELETED = 12


@pytest.fixture(scope="module")
def deployment(mariadb, tmp_path_factory):
    """MLflow's tables with what a team leaves behind: runs in the trash for 40 days and for 1, a deleted run
    a registered model was made from, a deleted experiment with runs, a trace and a logged model, old traces."""
    if str(LIB) not in sys.path:
        sys.path.insert(0, str(LIB))
    from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag, TraceInfo, TraceLocation, TraceState
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    from mlflow_oci.mysql_ddl import install_statement_rewrites

    uri = mariadb.empty_database(DATABASE)
    install_statement_rewrites()
    destination = tmp_path_factory.mktemp("artifacts-destination")
    store = SqlAlchemyStore(uri, str(destination))
    registry = RegistryStore(uri)
    now = int(time.time() * 1000)

    wine = Dataset("wine", "d1", "local", "{}")

    def run(experiment_id: str, label: str, deleted_days_ago: float | None = None, with_input=False) -> str:
        created = store.create_run(experiment_id, "someone", now, [RunTag("label", label)], label)
        run_id = created.info.run_id
        store.log_batch(run_id, [Metric("loss", 1 / (s + 1), now + s, s) for s in range(50)],
                        [Param("lr", "0.01")], [RunTag("kind", "test")])
        folder = destination / created.info.artifact_uri.split(":", 1)[1].lstrip("/")
        folder.mkdir(parents=True)
        (folder / "model.txt").write_text(label)
        if with_input:
            store.log_inputs(run_id, [DatasetInput(wine, [InputTag("mlflow.data.context", "training")])])
        if deleted_days_ago is not None:
            store.delete_run(run_id)
            with store.engine.begin() as connection:
                connection.execute(sa.text("UPDATE runs SET deleted_time = :t WHERE run_uuid = :r"),
                                   {"t": now - int(deleted_days_ago * DAY_MS), "r": run_id})
        return run_id

    def trace(experiment_id: str, days_old: float) -> str:
        trace_id = "tr-" + os.urandom(16).hex()
        store.start_trace(TraceInfo(trace_id=trace_id, trace_location=TraceLocation.from_experiment_id(experiment_id),
                                    request_time=now - int(days_old * DAY_MS), state=TraceState.OK, execution_duration=5))
        return trace_id

    team = store.create_experiment("team", artifact_location="mlflow-artifacts:/team")
    runs = {"live": run(team, "live"), "recent": run(team, "recent", deleted_days_ago=1),
            "registered": run(team, "registered", deleted_days_ago=40),
            "old": [run(team, f"old-{i}", deleted_days_ago=40, with_input=i == 0) for i in range(OLD_DELETED)]}
    registry.create_registered_model("wine-model")
    registry.create_model_version("wine-model", f"mlflow-artifacts:/team/{runs['registered']}/artifacts",
                                  run_id=runs["registered"])
    traces = {"old": trace(team, 100), "new": trace(team, 1)}

    gone = store.create_experiment("gone", artifact_location="mlflow-artifacts:/gone")
    gone_runs = [run(gone, f"gone-{i}") for i in range(3)]
    gone_trace = trace(gone, 1)
    store.create_logged_model(gone, name="gone-model")
    recently_gone = store.create_experiment("recently-gone", artifact_location="mlflow-artifacts:/recently-gone")
    run(recently_gone, "recently-gone-run")
    for experiment_id, days_ago in ((gone, 40), (recently_gone, 1)):
        store.delete_experiment(experiment_id)
        with store.engine.begin() as connection:
            connection.execute(sa.text("UPDATE experiments SET last_update_time = :t WHERE experiment_id = :e"),
                               {"t": now - days_ago * DAY_MS, "e": experiment_id})
    yield {"uri": uri, "destination": destination, "engine": store.engine, "runs": runs, "traces": traces,
           "gone": gone, "gone_runs": gone_runs, "gone_trace": gone_trace, "recently_gone": recently_gone}
    store.engine.dispose()
    registry.engine.dispose()


def housekeeping(deployment, *args) -> subprocess.Popen:
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(LIB), "HOME": str(deployment["destination"].parent),
           "MLFLOW_BACKEND_STORE_URI": deployment["uri"],
           "MLFLOW_ARTIFACTS_DESTINATION": str(deployment["destination"])}
    return subprocess.Popen([sys.executable, "-m", "mlflow_oci.housekeeping", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finished(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    return json.loads(out)


def count(engine, sql: str, **values) -> int:
    with engine.connect() as connection:
        return connection.scalar(sa.text(sql), values)


def run_rows(engine, run_id: str) -> dict:
    return {table: count(engine, f"SELECT count(*) FROM {table} WHERE run_uuid = :r", r=run_id)
            for table in ("runs", "metrics", "latest_metrics", "params", "tags")}


def artifacts(deployment, experiment: str, run_id: str) -> Path:
    return deployment["destination"] / experiment / run_id / "artifacts" / "model.txt"


def test_a_dry_run_counts_and_removes_nothing(deployment, mariadb):
    """Through the tracking image's entrypoint, as the VM's timer and the OKE CronJob run it: the MySQL login
    from MLFLOW_DB_*, the administrator's dropped, TLS to the database verified."""
    env = {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "HOME": str(deployment["destination"].parent),
           **dict(mariadb.client_env()), "MLFLOW_DB_NAME": DATABASE, "MLFLOW_DB_USER": mariadb.admin_user,
           "MLFLOW_DB_PASSWORD": mariadb.admin_password, "MYSQL_ADMIN_USER": "root", "MYSQL_ADMIN_PASSWORD": "unused",
           "MLFLOW_ARTIFACTS_DESTINATION": str(deployment["destination"]), "MLFLOW_TRACE_RETENTION_DAYS": "90"}
    done = subprocess.run(["bash", str(ENTRYPOINT), "housekeeping", "--dry-run"], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert mariadb.admin_password not in done.stdout + done.stderr
    totals = json.loads(done.stdout)
    # 12 old deleted runs, the 3 runs of the deleted experiment; the registered one is kept
    assert (totals["runs"], totals["experiments"], totals["traces"]) == (OLD_DELETED + 3, 1, 1), totals
    assert totals["runs_kept_for_model_versions"] == 1 and totals["rows"] == {}
    assert run_rows(deployment["engine"], deployment["runs"]["old"][0])["runs"] == 1
    assert artifacts(deployment, "team", deployment["runs"]["old"][0]).exists()


def test_it_removes_nothing_under_a_schema_migration_and_goes_on_once_it_is_done(deployment):
    """An upgrade migrates while the nightly pass may run (the OKE CronJob, a VM's timer catching up at boot): the
    journal (mlflow_oci.migration_journal, init_db.py's) says MIGRATING, and the pass stops before its first batch.
    Before: it deleted rows under a schema being rewritten."""
    from mlflow_oci import migration_journal

    engine = deployment["engine"]
    migration_journal.ensure_journal(engine)
    entry = migration_journal.record(engine, "a", "b", "9.9.9", "MIGRATING")
    before = run_rows(engine, deployment["runs"]["old"][0])
    try:
        process = housekeeping(deployment)
        totals = finished(process)
        assert totals["stopped"].startswith("a schema migration is under way or did not finish (migration a -> b")
        assert totals["runs"] == 0 and totals["rows"] == {}
        assert run_rows(engine, deployment["runs"]["old"][0]) == before and before["runs"] == 1
        assert artifacts(deployment, "team", deployment["runs"]["old"][0]).exists()
    finally:
        migration_journal.finish(engine, entry, "DONE")  # the next tests' pass finds a settled schema


def test_killed_midway_and_run_again_it_removes_exactly_what_is_due(deployment):
    engine, runs = deployment["engine"], deployment["runs"]
    process = housekeeping(deployment, "--batch", "3", "--trace-retention-days", "90")
    for line in process.stderr:  # the first batch is done: kill it as a reboot would
        if "removed so far" in line:
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    remaining = sum(run_rows(engine, r)["runs"] for r in runs["old"])
    assert 0 < remaining < OLD_DELETED, "the kill did not land in the middle of the work"

    totals = finished(housekeeping(deployment, "--batch", "3", "--trace-retention-days", "90"))
    assert totals["experiments"] == 1 and totals["traces"] == 1, totals
    for run_id in runs["old"]:
        assert run_rows(engine, run_id) == dict.fromkeys(("runs", "metrics", "latest_metrics", "params", "tags"), 0)
        assert not artifacts(deployment, "team", run_id).parent.exists()
    # the dataset input the run had, and its tags, which name the run without a foreign key
    assert count(engine, "SELECT count(*) FROM inputs WHERE destination_id = :r", r=runs["old"][0]) == 0
    assert count(engine, "SELECT count(*) FROM input_tags") == 0
    # what is not due stays, rows and artifacts
    for label in ("live", "recent", "registered"):
        assert run_rows(engine, runs[label]) == {"runs": 1, "metrics": 50, "latest_metrics": 1, "params": 1, "tags": 3}
        assert artifacts(deployment, "team", runs[label]).read_text() == label
    # the deleted experiment, whole, with its artifact location; the recently deleted one stays
    gone = deployment["gone"]
    assert count(engine, "SELECT count(*) FROM experiments WHERE experiment_id = :e", e=gone) == 0
    for table in ("runs", "trace_info", "logged_models"):
        assert count(engine, f"SELECT count(*) FROM {table} WHERE experiment_id = :e", e=gone) == 0
    assert not (deployment["destination"] / "gone").exists()
    assert count(engine, "SELECT count(*) FROM experiments WHERE experiment_id = :e", e=deployment["recently_gone"]) == 1
    # traces past the retention, with their tags and metadata
    old_trace, new_trace = deployment["traces"]["old"], deployment["traces"]["new"]
    for table in ("trace_info", "trace_tags", "trace_request_metadata"):
        assert count(engine, f"SELECT count(*) FROM {table} WHERE request_id = :t", t=old_trace) == 0
    assert count(engine, "SELECT count(*) FROM trace_info WHERE request_id = :t", t=new_trace) == 1

    again = finished(housekeeping(deployment, "--trace-retention-days", "90"))
    assert (again["runs"], again["experiments"], again["traces"], again["rows"]) == (0, 0, 0, {}), again


def test_bad_settings_stop_with_a_message(deployment):
    process = housekeeping(deployment, "--batch", "0")
    _, err = process.communicate(timeout=60)
    assert process.returncode == 2 and "--batch must be at least 1" in err
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(LIB), "MLFLOW_BACKEND_STORE_URI": deployment["uri"],
           "MLFLOW_TRACE_RETENTION_DAYS": "ninety"}
    done = subprocess.run([sys.executable, "-m", "mlflow_oci.housekeeping"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0 and "MLFLOW_TRACE_RETENTION_DAYS must be a whole number of days" in done.stderr


def test_the_metrics_mode_counts_what_the_database_holds(deployment, mariadb):
    """The tracking image's `metrics` mode, as the VM's timer runs it (--dry-run: collected, printed, not posted;
    tests/test_metrics_posting.py posts to a fake of OCI Monitoring)."""
    env = {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "HOME": str(deployment["destination"].parent),
           **dict(mariadb.client_env()), "MLFLOW_DB_NAME": DATABASE, "MLFLOW_DB_USER": mariadb.admin_user,
           "MLFLOW_DB_PASSWORD": mariadb.admin_password, "MLFLOW_METRICS_DEPLOYMENT": "mlflow",
           "MLFLOW_PORT": "9"}  # nothing answers there: the server is reported down
    done = subprocess.run(["bash", str(ENTRYPOINT), "metrics", "--dry-run"], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    values = json.loads(done.stdout.splitlines()[-1])
    with deployment["engine"].connect() as connection:
        runs = connection.scalar(sa.text("SELECT count(*) FROM runs WHERE lifecycle_stage = 'active'"))
    assert values["mlflow.runs"] == runs and values["mlflow.up"] == 0
    assert values["mlflow.database_bytes"] > 100_000 and values["mlflow.registered_models"] >= 1
    assert mariadb.admin_password not in done.stdout + done.stderr
