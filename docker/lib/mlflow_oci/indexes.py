"""Indexes the project adds to MLflow's tables for the UI's queries at 100,000 runs and more.

MLflow's own schema (3.17) already indexes what the run page's metric history and the compare view read
(metrics (run_uuid, key, step), MLflow's revision a5b4c3d2e1f0). What it leaves to full scans or to sorting whole
experiments is listed here, each with the call it serves; benchmarks/bench_large_data_runs.py measures the calls
with and without them.

docker/tracking/init_db.py adds the missing ones after MLflow's migrations, under the migration lock, on a fresh
install and on every upgrade (also when MLflow's schema is already at its head): each one `ALTER TABLE ... ADD INDEX
..., ALGORITHM=INPLACE, LOCK=NONE`, so the table stays readable and writable while InnoDB builds it (MySQL 8 /
HeatWave and MariaDB). The names start with `mlflow_oci_`, which no MLflow migration uses.
"""
from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Index:
    table: str
    name: str
    columns: tuple[str, ...]
    serves: str
    # MLflow's index that InnoDB drops when this one is added, as this one then serves its foreign key (the
    # index InnoDB made for the key itself; one a dump re-created stays): dropping this one puts it back if gone.
    takes_over: str | None = None

    def ddl(self) -> str:
        columns = ", ".join(f"`{column}`" for column in self.columns)
        return f"ALTER TABLE `{self.table}` ADD INDEX `{self.name}` ({columns}), ALGORITHM=INPLACE, LOCK=NONE"


INDEXES = (
    Index("runs", "mlflow_oci_runs_experiment_stage_start", ("experiment_id", "lifecycle_stage", "start_time"),
          "the run table: runs/search of one experiment's active runs, sorted by start time",
          takes_over="experiment_id"),
    Index("model_versions", "mlflow_oci_model_versions_run_id", ("run_id",),
          "the run page: model-versions/search?filter=run_id='...' (the versions registered from a run)"),
)


def present(execute, database: str) -> set[tuple[str, str]]:
    """(table, index name) of the project's indexes the database has; `execute(sql, params)` returns rows."""
    names = tuple(index.name for index in INDEXES)
    rows = execute("SELECT DISTINCT TABLE_NAME, INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s "
                   f"AND INDEX_NAME IN ({', '.join(['%s'] * len(names))})", (database, *names))
    return {(row[0], row[1]) for row in rows}


def columns_of(execute, database: str) -> dict[str, set[str]]:
    rows = execute("SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s", (database,))
    found: dict[str, set[str]] = {}
    for table, column in rows:
        found.setdefault(table, set()).add(column)
    return found


def missing(execute, database: str) -> list[Index]:
    """The project's indexes this database lacks, on the tables and columns it has."""
    have = present(execute, database)
    columns = columns_of(execute, database)
    return [index for index in INDEXES if (index.table, index.name) not in have
            and set(index.columns) <= columns.get(index.table, set())]


def ensure(connection, database: str, log=print) -> str:
    """Adds what is missing on `connection` (a SQLAlchemy connection, autocommitting DDL); returns what was done,
    in words for the migration journal's detail ("" when nothing was missing)."""
    def execute(sql, params=None):
        return connection.exec_driver_sql(sql, params).fetchall()

    done = []
    for index in missing(execute, database):
        started = time.monotonic()
        log(f"adding index {index.name} on {index.table} ({', '.join(index.columns)}): {index.serves}")
        connection.exec_driver_sql(index.ddl())
        done.append(f"{index.table}.{index.name} ({time.monotonic() - started:.1f} s)")
    return f"indexes added: {', '.join(done)}" if done else ""


def drop(connection, database: str, index: Index) -> bool:
    """Removes one of the project's indexes if it is there (benchmarks, tests, a rollback by hand), putting back
    the foreign key's own index it took over, in the same statement; returns whether it was there."""
    def there(name: str) -> bool:
        return bool(connection.exec_driver_sql(
            "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s "
            "AND INDEX_NAME = %s", (database, index.table, name)).scalar())

    if not there(index.name):
        return False
    restore = (f"ADD INDEX `{index.takes_over}` (`{index.columns[0]}`), "
               if index.takes_over and not there(index.takes_over) else "")
    connection.exec_driver_sql(f"ALTER TABLE `{index.table}` {restore}DROP INDEX `{index.name}`")
    return True
