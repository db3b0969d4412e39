"""Housekeeping's memory and speed: deleted runs with their artifacts removed from MariaDB (MySQL HeatWave's
stand-in, primary keys required) by `python -m mlflow_oci.housekeeping`, as the tracking VM's daily timer runs it.

    python benchmarks/bench_housekeeping.py [--small 1000] [--large 10000] [--metrics 100]

One database is filled with small + large runs (MLflow's schema by init_db.py, rows by tests/harness/mlflow_data.py),
each with `--metrics` metric values, 10 params, 3 tags and a 4 KiB artifact in the artifacts destination (a local
directory: the cost of Object Storage's DELETE calls is not measured here). Then, in turn:
1. `small` runs are deleted 40 days ago and housekeeping runs: its peak RSS and time;
2. `large` runs likewise, but it is killed after its first batches and run again: the second run's peak RSS and
   time, and that nothing deleted is left (rows of every run table, artifact folders).
Memory is bounded when the peak RSS of (2) stays that of (1) although it removes ten times the runs.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_runtime_common import REPO_ROOT

sys.path[:0] = [str(REPO_ROOT / "tests"), str(REPO_ROOT / "packager")]
from bench_large_data_runs import DATABASE, INIT_DB, database_env, run, say  # noqa: E402

from dataplane.servers import ProcessTracker  # noqa: E402
from harness import mlflow_data  # noqa: E402
from harness.mariadb_backend import MariaDBBackend  # noqa: E402

DAY_MS = 24 * 3600 * 1000
RUN_TABLES = ("runs", "metrics", "latest_metrics", "params", "tags")


def housekeeping(env: dict, kill_after_batches: int | None = None) -> tuple[float, float, str]:
    """Seconds, peak RSS in MiB and stderr of one run; killed after that many batches when asked."""
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "mlflow_oci.housekeeping", "--batch", "500"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines, batches = [], 0  # stdout (one JSON line) fits the pipe: read after the end
    for line in process.stderr:
        lines.append(line)
        batches += "removed so far" in line
        if kill_after_batches and batches >= kill_after_batches:
            process.send_signal(signal.SIGKILL)
            break
    process.stderr.close()
    _, status, usage = os.wait4(process.pid, 0)  # this child's own peak, not the largest of every child so far
    process.returncode = os.waitstatus_to_exitcode(status)
    if not kill_after_batches and process.returncode != 0:
        raise SystemExit(f"housekeeping failed:\n{''.join(lines)[-3000:]}")
    return time.monotonic() - started, usage.ru_maxrss / 1024, "".join(lines)


def delete_runs(backend: MariaDBBackend, run_ids: list[str], days_ago: int) -> None:
    when = int(time.time() * 1000) - days_ago * DAY_MS
    with backend.connect(DATABASE) as connection, connection.cursor() as cursor:
        for start in range(0, len(run_ids), 1000):
            chunk = run_ids[start:start + 1000]
            cursor.execute("UPDATE runs SET lifecycle_stage = 'deleted', deleted_time = %s WHERE run_uuid IN ("
                           + ",".join(["%s"] * len(chunk)) + ")", [when, *chunk])


def left(backend: MariaDBBackend, run_ids: list[str]) -> dict[str, int]:
    counts = dict.fromkeys(RUN_TABLES, 0)
    with backend.connect(DATABASE) as connection, connection.cursor() as cursor:
        for start in range(0, len(run_ids), 1000):
            chunk = run_ids[start:start + 1000]
            for table in RUN_TABLES:
                cursor.execute(f"SELECT count(*) FROM {table} WHERE run_uuid IN (" + ",".join(["%s"] * len(chunk)) + ")",
                               chunk)
                counts[table] += cursor.fetchone()[0]
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=10000)
    parser.add_argument("--metrics", type=int, default=100, help="metric values per run (10 metrics x steps)")
    args = parser.parse_args()
    total = args.small + args.large
    tracker = ProcessTracker()
    with tempfile.TemporaryDirectory(prefix="bench-housekeeping-") as scratch:
        scratch = Path(scratch)
        try:
            backend = MariaDBBackend.start(tracker, scratch / "mariadb")
            env = database_env(backend)
            run([INIT_DB], env, "init_db.py")
            shape = mlflow_data.Shape(runs=total, experiments=5, metrics_per_run=10,
                                      steps_per_metric=max(1, args.metrics // 10), params_per_run=10, tags_per_run=3,
                                      models=0, versions_per_model=0, users=0)
            say(f"filling {total} runs")
            mlflow_data.fill(env["MLFLOW_BACKEND_STORE_URI"], shape, artifact_root="mlflow-artifacts:/")
            destination = scratch / "artifacts"
            with backend.connect(DATABASE) as connection, connection.cursor() as cursor:
                cursor.execute("SELECT run_uuid, artifact_uri FROM runs ORDER BY run_uuid")
                rows = cursor.fetchall()
            payload = os.urandom(4096)
            for _, uri in rows:
                folder = destination / uri.split(":", 1)[1].lstrip("/")
                folder.mkdir(parents=True)
                (folder / "model.pkl").write_bytes(payload)
            ids = [run_id for run_id, _ in rows]
            random.Random(0).shuffle(ids)
            small, large = ids[:args.small], ids[args.small:]
            gc_env = {**env, "PYTHONPATH": str(REPO_ROOT / "docker" / "lib"), "MLFLOW_ARTIFACTS_DESTINATION": str(destination)}
            for name in ("MYSQL_ADMIN_PASSWORD", "MLFLOW_AUTH_DATABASE_URI"):
                gc_env.pop(name, None)

            delete_runs(backend, small, 40)
            say(f"housekeeping of {len(small)} deleted runs")
            small_seconds, small_rss, _ = housekeeping(gc_env)
            delete_runs(backend, large, 40)
            say(f"housekeeping of {len(large)} deleted runs, killed after 4 batches, then again")
            housekeeping(gc_env, kill_after_batches=4)
            after_kill = left(backend, large)["runs"]
            large_seconds, large_rss, _ = housekeeping(gc_env)
            remaining = left(backend, ids)
            folders = sum(1 for _ in destination.glob("*/*/artifacts"))
            print(json.dumps({
                "runs_filled": total, "metric_values_per_run": shape.metrics_per_run * shape.steps_per_metric,
                "small": {"runs": len(small), "seconds": round(small_seconds, 1), "peak_rss_mib": round(small_rss)},
                "large": {"runs": len(large), "runs_left_after_the_kill": after_kill, "seconds_to_finish": round(large_seconds, 1),
                          "runs_per_second": round(after_kill / large_seconds, 1), "peak_rss_mib": round(large_rss)},
                "rows_left": remaining, "artifact_folders_left": folders,
            }, indent=2))
            return 0 if not any(remaining.values()) and folders == 0 else 1
        finally:
            tracker.stop_all()


if __name__ == "__main__":
    sys.exit(main())
