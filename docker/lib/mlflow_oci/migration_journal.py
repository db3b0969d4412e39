"""Schema migrations of the MLflow database run once, by one process, and leave a record.

Every tracking server (each VM replica, each OKE pod, the OKE migrate Job) prepares the database at start.
They take a MySQL named lock first (GET_LOCK: held by a connection, released by MySQL if that process dies),
then look again: the first one migrates, the others find the schema at its head and start. MySQL runs DDL
outside transactions, so a migration that stops halfway leaves a half-migrated schema; the journal table says
so, and no later start migrates over it until the database is restored from the backup taken before.

  mlflow_oci_upgrades   one row per migration: from and to revision, MLflow version, state, times, detail
      state MIGRATING   under way (or the process died: the lock is free and the row still says MIGRATING)
            DONE        reached its target revision
            FAILED      stopped; `detail` says at which revision and why
            REFUSED     the pre-checks found something that would fail it; nothing was changed
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass

JOURNAL = "mlflow_oci_upgrades"
UNFINISHED = ("MIGRATING", "FAILED")


class MigrationBlocked(Exception):
    """The database must not be migrated now: the message says why and what to do."""


@dataclass
class Entry:
    id: int
    from_revision: str | None
    to_revision: str
    mlflow_version: str
    state: str
    started_at: str
    finished_at: str | None
    detail: str

    def describe(self) -> str:
        return (f"migration {self.from_revision or '(empty database)'} -> {self.to_revision} by MLflow "
                f"{self.mlflow_version}, started {self.started_at}: {self.state}{': ' + self.detail if self.detail else ''}")


def lock_name(database: str) -> str:
    return f"mlflow_oci.migrate.{database}"[:64]  # MySQL's limit on a lock name


@contextmanager
def migration_lock(engine, wait_seconds: int, log=print):
    """Holds the database's migration lock on a connection of its own; raises MigrationBlocked after wait_seconds."""
    name = lock_name(engine.url.database)
    with engine.connect() as connection:
        started = time.monotonic()
        got = connection.exec_driver_sql("SELECT GET_LOCK(%s, %s)", (name, 0)).scalar()
        if got != 1:
            log(f"another server is preparing the database (lock {name}); waiting up to {wait_seconds}s")
            got = connection.exec_driver_sql("SELECT GET_LOCK(%s, %s)", (name, wait_seconds)).scalar()
        if got != 1:
            raise MigrationBlocked(f"the database's migration lock {name} was not free after {wait_seconds}s: "
                                   "another server is still migrating; look at its log, or raise "
                                   "MLFLOW_DB_MIGRATION_WAIT_SECONDS")
        if time.monotonic() - started > 1:
            log(f"got the migration lock after {time.monotonic() - started:.0f}s")
        try:
            yield
        finally:
            connection.exec_driver_sql("SELECT RELEASE_LOCK(%s)", (name,))


def ensure_journal(engine) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql(
            f"CREATE TABLE IF NOT EXISTS {JOURNAL} ("
            "id INTEGER NOT NULL AUTO_INCREMENT PRIMARY KEY, from_revision VARCHAR(64), "
            "to_revision VARCHAR(64) NOT NULL, mlflow_version VARCHAR(32) NOT NULL, state VARCHAR(16) NOT NULL, "
            "started_at VARCHAR(32) NOT NULL, finished_at VARCHAR(32), detail TEXT NOT NULL) "
            "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def entries(engine, limit: int = 20) -> list[Entry]:
    """The latest entries, newest first; none when the journal does not exist yet."""
    with engine.connect() as connection:
        exists = connection.exec_driver_sql(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
            (JOURNAL,)).scalar()
        if not exists:
            return []
        rows = connection.exec_driver_sql(
            f"SELECT id, from_revision, to_revision, mlflow_version, state, started_at, finished_at, detail "
            f"FROM {JOURNAL} ORDER BY id DESC LIMIT {int(limit)}").fetchall()
    return [Entry(*row) for row in rows]


def last_served_version(engine) -> str | None:
    """The MLflow version that last migrated this database to its head."""
    done = [entry for entry in entries(engine) if entry.state == "DONE"]
    return done[0].mlflow_version if done else None


def blocking_entry(engine) -> Entry | None:
    """The latest entry when a migration did not finish: nothing may migrate over its half-done schema."""
    latest = [entry for entry in entries(engine, 5) if entry.state != "REFUSED"]
    return latest[0] if latest and latest[0].state in UNFINISHED else None


def record(engine, from_revision, to_revision, mlflow_version, state, detail="") -> int:
    with engine.begin() as connection:
        result = connection.exec_driver_sql(
            f"INSERT INTO {JOURNAL} (from_revision, to_revision, mlflow_version, state, started_at, finished_at, "
            "detail) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (from_revision, to_revision, mlflow_version, state, _now(),
             None if state == "MIGRATING" else _now(), detail))
        return result.lastrowid


def finish(engine, entry_id: int, state: str, detail: str = "") -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql(f"UPDATE {JOURNAL} SET state = %s, finished_at = %s, detail = %s WHERE id = %s",
                                   (state, _now(), detail, entry_id))

