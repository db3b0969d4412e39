"""Housekeeping of the tracking database: removes for good what users deleted, and old traces and jobs.

    python3 -m mlflow_oci.housekeeping [--dry-run] [--batch N]
        [--deleted-after-days N] [--trace-retention-days N] [--job-retention-days N]

Reads MLFLOW_BACKEND_STORE_URI (MySQL) and MLFLOW_ARTIFACTS_DESTINATION (where `mlflow-artifacts:/` URIs point);
the options default to MLFLOW_DELETED_RUNS_KEPT_DAYS (30), MLFLOW_TRACE_RETENTION_DAYS (0: keep) and
MLFLOW_JOB_RETENTION_DAYS (30). Prints its progress on stderr and one JSON line of totals on stdout.

- Runs deleted (lifecycle stage `deleted`) more than N days ago: their artifacts, then their rows. A run
  that a registered model version was created from is kept, with its artifacts: the version still loads
  from them. Deleting a run in MLflow moves it to the trash, which the UI can restore: N days is that grace.
- Experiments deleted more than N days ago, with all their runs, traces and logged models, and then their
  artifact location; an experiment a model version still needs is kept whole.
- Traces older than the trace retention, with their artifacts; finished jobs older than the job retention.

Work goes in batches of runs ordered by id, each batch's artifacts first and its rows last (mlflow_oci.purge):
killed at any moment, a rerun finds what is left and finishes it. Before each batch it reads the migration journal
(mlflow_oci.migration_journal): while a schema migration is under way, or one did not finish, it stops there and
says so (exit 0, "stopped" in the totals); the next pass goes on.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import sqlalchemy as sa

from mlflow_oci import migration_journal
from mlflow_oci.purge import Purger

DAY_MS = 24 * 3600 * 1000
FINISHED_JOBS = (2, 3, 4, 5)  # mlflow.entities._job_status: SUCCEEDED, FAILED, TIMEOUT, CANCELED
TRACE_ARTIFACTS_TAG = "mlflow.artifactLocation"
MODEL_VERSION_DELETED = "Deleted_Internal"  # model_versions.current_stage of a deleted version


class MigrationUnderWay(Exception):
    """A schema migration is running, or stopped halfway: rows must not be removed under it."""


def log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} housekeeping: {message}", file=sys.stderr, flush=True)


class Housekeeping:
    def __init__(self, engine: sa.Engine, artifacts_destination: str | None, batch: int = 500, dry_run: bool = False,
                 now_ms: int | None = None):
        self.engine = engine
        self.purger = Purger(engine)
        self.tables = self.purger.schema.tables
        self.destination = (artifacts_destination or "").rstrip("/")
        self.batch = batch
        self.dry_run = dry_run
        self.now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
        self.totals = {"runs": 0, "experiments": 0, "traces": 0, "jobs": 0, "artifact_locations": 0,
                       "runs_kept_for_model_versions": 0, "experiments_kept_for_model_versions": 0}

    def _schema_settled(self) -> None:
        """Raises MigrationUnderWay when the journal's latest migration is MIGRATING or FAILED (MySQL: the journal
        lives where init_db.py migrates)."""
        if self.engine.dialect.name != "mysql":
            return
        entry = migration_journal.blocking_entry(self.engine)
        if entry is not None:
            raise MigrationUnderWay(entry.describe())

    # ------------------------------------------------------------------------------------ runs
    def deleted_runs(self, older_than_days: int) -> None:
        runs = self.tables["runs"]
        cutoff = self.now_ms - older_than_days * DAY_MS
        deleted = sa.and_(runs.c.lifecycle_stage == "deleted",
                          sa.or_(runs.c.deleted_time.is_(None), runs.c.deleted_time <= cutoff))
        self._runs_where(deleted, "deleted runs")

    def _runs_where(self, condition, what: str) -> int:
        """Removes the runs matching `condition` batch by batch; the number kept for model versions."""
        runs = self.tables["runs"]
        used = self._used_by_model_versions()
        last, kept = "", 0
        while True:
            self._schema_settled()
            query = (sa.select(runs.c.run_uuid, runs.c.artifact_uri).where(condition, runs.c.run_uuid > last)
                     .order_by(runs.c.run_uuid).limit(self.batch))
            with self.engine.connect() as connection:
                rows = connection.execute(query).all()
            if not rows:
                return kept
            last = rows[-1].run_uuid
            ids = [row.run_uuid for row in rows]
            with self.engine.connect() as connection:
                needed = set() if used is None else set(connection.scalars(used.where(
                    self.tables["model_versions"].c.run_id.in_(ids))))
            doomed = [row for row in rows if row.run_uuid not in needed]
            kept += len(needed)
            self.totals["runs_kept_for_model_versions"] += len(needed)
            if not self.dry_run:
                for row in doomed:
                    self._delete_artifacts(row.artifact_uri)
                self._delete_inputs([row.run_uuid for row in doomed])
                self.purger.delete("runs", ("run_uuid",), [(row.run_uuid,) for row in doomed])
            self.totals["runs"] += len(doomed)
            log(f"{what}: {self.totals['runs']} {'would be ' if self.dry_run else ''}removed so far")

    def _used_by_model_versions(self):
        versions = self.tables.get("model_versions")
        if versions is None:
            return None
        return sa.select(versions.c.run_id).where(versions.c.current_stage != MODEL_VERSION_DELETED).distinct()

    def _delete_inputs(self, run_ids: list[str]) -> None:
        """A run's dataset inputs name it without a foreign key (inputs.destination_id), their tags name them."""
        inputs, tags = self.tables.get("inputs"), self.tables.get("input_tags")
        if inputs is None or not run_ids:
            return
        mine = sa.and_(inputs.c.destination_type == "RUN", inputs.c.destination_id.in_(run_ids))
        with self.engine.begin() as connection:
            if tags is not None:
                connection.execute(sa.delete(tags).where(tags.c.input_uuid.in_(sa.select(inputs.c.input_uuid)
                                                                               .where(mine).scalar_subquery())))
            connection.execute(sa.delete(inputs).where(mine))

    # ----------------------------------------------------------------------------- experiments
    def deleted_experiments(self, older_than_days: int) -> None:
        experiments, runs = self.tables["experiments"], self.tables["runs"]
        cutoff = self.now_ms - older_than_days * DAY_MS
        last = -1
        while True:
            self._schema_settled()
            query = (sa.select(experiments.c.experiment_id, experiments.c.artifact_location)
                     .where(experiments.c.lifecycle_stage == "deleted", experiments.c.last_update_time <= cutoff,
                            experiments.c.experiment_id > last)
                     .order_by(experiments.c.experiment_id).limit(self.batch))
            with self.engine.connect() as connection:
                rows = connection.execute(query).all()
            if not rows:
                return
            last = rows[-1].experiment_id
            for row in rows:
                kept = self._runs_where(runs.c.experiment_id == row.experiment_id, f"experiment {row.experiment_id}")
                if kept:
                    self.totals["experiments_kept_for_model_versions"] += 1
                    log(f"experiment {row.experiment_id} kept: {kept} of its runs have registered model versions")
                    continue
                if not self.dry_run:  # its artifact location holds its traces' and logged models' artifacts too
                    self._delete_artifacts(row.artifact_location)
                    self.purger.delete("experiments", ("experiment_id",), [(row.experiment_id,)])
                self.totals["experiments"] += 1
                self.totals["artifact_locations"] += 1

    # ---------------------------------------------------------------------------- traces, jobs
    def old_traces(self, retention_days: int) -> None:
        traces = self.tables.get("trace_info")
        if retention_days <= 0 or traces is None:
            return
        old = traces.c.timestamp_ms < self.now_ms - retention_days * DAY_MS
        self._remove_where(traces, "request_id", old, "traces",
                           before=lambda ids: self._delete_trace_artifacts(traces.c.request_id.in_(ids)))

    def _delete_trace_artifacts(self, which) -> None:
        tags, traces = self.tables.get("trace_tags"), self.tables.get("trace_info")
        if tags is None or traces is None:
            return
        query = (sa.select(tags.c.value).join(traces, traces.c.request_id == tags.c.request_id)
                 .where(which, tags.c.key == TRACE_ARTIFACTS_TAG))
        with self.engine.connect() as connection:
            for location in connection.scalars(query):
                self._delete_artifacts(location)

    def old_jobs(self, retention_days: int) -> None:
        jobs = self.tables.get("jobs")
        if retention_days <= 0 or jobs is None:
            return
        old = sa.and_(jobs.c.status.in_(FINISHED_JOBS), jobs.c.last_update_time < self.now_ms - retention_days * DAY_MS)
        self._remove_where(jobs, "id", old, "jobs")

    def _remove_where(self, table: sa.Table, key: str, condition, total: str, before=None) -> None:
        """Removes the rows of `table` matching `condition` a batch at a time (`before(ids)` first), counting them
        in totals[total]; a dry run only counts."""
        if self.dry_run:
            with self.engine.connect() as connection:
                self.totals[total] = connection.scalar(sa.select(sa.func.count()).select_from(table).where(condition))
            return
        while True:
            self._schema_settled()
            with self.engine.connect() as connection:
                ids = list(connection.scalars(sa.select(table.c[key]).where(condition)
                                              .order_by(table.c[key]).limit(self.batch)))
            if not ids:
                return
            if before is not None:
                before(ids)
            self.purger.delete(table.name, (key,), [(i,) for i in ids])
            self.totals[total] += len(ids)
            log(f"{total}: {self.totals[total]} removed so far")

    # ------------------------------------------------------------------------------- artifacts
    def _delete_artifacts(self, uri: str | None) -> None:
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        if not uri:
            return
        if uri.startswith("mlflow-artifacts:"):
            if not self.destination:
                raise SystemExit("set MLFLOW_ARTIFACTS_DESTINATION: runs keep their artifacts behind the server")
            uri = f"{self.destination}/{uri.split(':', 1)[1].lstrip('/')}"
        get_artifact_repository(uri).delete_artifacts()


def _days(name: str, default: int) -> int:
    value = os.environ.get(name, str(default))
    if not value.isdigit():
        raise SystemExit(f"{name} must be a whole number of days (got {value!r})")
    return int(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="housekeeping", description=__doc__.split("\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="count what would be removed; remove nothing")
    parser.add_argument("--batch", type=int, default=500, help="runs per batch (default 500)")
    parser.add_argument("--deleted-after-days", type=int, default=None)
    parser.add_argument("--trace-retention-days", type=int, default=None)
    parser.add_argument("--job-retention-days", type=int, default=None)
    args = parser.parse_args(argv)
    deleted_after = args.deleted_after_days
    if deleted_after is None:
        deleted_after = _days("MLFLOW_DELETED_RUNS_KEPT_DAYS", 30)
    traces = args.trace_retention_days if args.trace_retention_days is not None else _days("MLFLOW_TRACE_RETENTION_DAYS", 0)
    jobs = args.job_retention_days if args.job_retention_days is not None else _days("MLFLOW_JOB_RETENTION_DAYS", 30)
    if min(deleted_after, traces, jobs) < 0 or args.batch < 1:
        parser.error("days may not be negative and --batch must be at least 1")
    uri = os.environ.get("MLFLOW_BACKEND_STORE_URI", "")
    if not uri:
        parser.error("set MLFLOW_BACKEND_STORE_URI to the tracking database")
    engine = sa.create_engine(uri, pool_pre_ping=True)
    try:
        work = Housekeeping(engine, os.environ.get("MLFLOW_ARTIFACTS_DESTINATION"), args.batch, args.dry_run)
        log(f"runs and experiments deleted over {deleted_after} days ago; traces "
            + (f"over {traces} days old" if traces else "kept") + "; finished jobs "
            + (f"over {jobs} days old" if jobs else "kept") + (" (dry run: nothing is removed)" if args.dry_run else ""))
        stopped = None
        try:
            work.deleted_runs(deleted_after)
            work.deleted_experiments(deleted_after)
            work.old_traces(traces)
            work.old_jobs(jobs)
        except MigrationUnderWay as under_way:
            stopped = f"a schema migration is under way or did not finish ({under_way})"
            log(f"stopped: {stopped}; the next pass goes on from here")
    finally:
        engine.dispose()
    totals = dict(work.totals, dry_run=args.dry_run, rows=dict(sorted(work.purger.deleted.items())),
                  **({"stopped": stopped} if stopped else {}))
    print(json.dumps(totals, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
