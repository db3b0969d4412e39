"""The MLflow UI's calls on a database of 100,000 runs: p50/p95/p99 per call class, with what the project adds to
MLflow (its indexes, docker/lib/mlflow_oci/indexes.py, and its lean run search, docker/lib/mlflow_oci/run_search.py)
and without them, on the same data in one run.

The data (tests/harness/mlflow_data.py, through the pinned MLflow's stores): 100,000 runs in 10 experiments, each
with 20 metrics of 5 steps (10,000,000 metric rows, 2,000,000 latest_metrics), 10 params and 8 tags; 100 registered
models of 10 versions (1,000 model versions). The first run fills a throwaway MariaDB (init_db.py, then the fill)
and keeps a mariadb-dump of it (`--cache`, default .tools/bench-data/); later runs load that dump.

Two real tracking servers (docker/tracking/entrypoint.sh, moto S3 for artifacts) start on it, one as deployed and
one as MLflow alone would answer: MLFLOW_OCI_LEAN_RUN_SEARCH=false (MLflow's own search) and MLFLOW_OCI_COMPACT_JSON=
false (MLflow's indented JSON, docker/lib/mlflow_oci/compact_json.py); the first one's init_db.py adds the indexes.
After one untimed pass over every call class (a dump just loaded leaves the buffer pool cold), the phases:
1. "project": indexes, lean search, compact JSON;   2. "MLflow search": indexes, MLflow's search and JSON;
3. the indexes dropped: "no indexes" (lean search, compact JSON), then "MLflow alone" (stock MLflow 3.17);
then init_db.py puts the indexes back as an upgrade would (its time is printed). Three of the classes are
runs/search's ranking statement sent straight to MariaDB: the database's share of the call.

    .venv/bin/python benchmarks/bench_large_data_runs.py [--runs 100000] [--samples 30] [--cache PATH]

Figures, not pass/fail. The machine's cores and disk bound them; other work on it makes them noisy.
"""
import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from importlib.metadata import version
from pathlib import Path
from urllib.parse import quote

from bench_runtime_common import REPO_ROOT, percentile

sys.path.insert(0, str(REPO_ROOT / "tests"))
sys.path.insert(0, str(REPO_ROOT / "docker" / "lib"))

import requests  # noqa: E402
from mlflow_oci import indexes  # noqa: E402

from dataplane.servers import ProcessTracker, start_moto  # noqa: E402
from dataplane.stacks import DB_PASSWORD, start_tracking_replica  # noqa: E402
from harness import mlflow_data  # noqa: E402
from harness.mariadb_backend import MariaDBBackend  # noqa: E402
from harness.tools import find_binary  # noqa: E402
from orm_pack.local.services import python_env  # noqa: E402

DATABASE = "mlflow"
INIT_DB = REPO_ROOT / "docker" / "tracking" / "init_db.py"
SCRIPT = Path(mlflow_data.__file__)
MARIADB_ARGS = ("--innodb-buffer-pool-size=2G", "--innodb-force-primary-key=ON", "--innodb-log-file-size=512M")
TARGET_P95_MS = 300


def shape(runs: int) -> mlflow_data.Shape:
    return mlflow_data.Shape(runs=runs, experiments=10, metrics_per_run=20, steps_per_metric=5, params_per_run=10,
                             tags_per_run=8, models=100, versions_per_model=10, users=5, seed=0)


def uri(backend: MariaDBBackend, database: str) -> str:
    server = backend.server
    return (f"mysql+pymysql://{DATABASE}:{quote(DB_PASSWORD, safe='')}@{server.host}:{server.port}/{database}"
            f"?charset=utf8mb4&ssl_ca={quote(server.ca_file, safe='')}&ssl_check_hostname=true")


def database_env(backend: MariaDBBackend) -> dict:
    server = backend.server
    return {**python_env(), "MYSQL_ADMIN_USER": server.admin_user, "MYSQL_ADMIN_PASSWORD": server.admin_password,
            **dict(server.client_env()), "MLFLOW_DB_NAME": DATABASE, "MLFLOW_DB_USER": DATABASE,
            "MLFLOW_DB_PASSWORD": DB_PASSWORD, "MLFLOW_AUTH_DB_NAME": f"{DATABASE}_auth",
            "MLFLOW_BACKEND_STORE_URI": uri(backend, DATABASE), "MLFLOW_AUTH_DATABASE_URI": uri(backend, f"{DATABASE}_auth")}


def run(argv: list, env: dict, what: str, progress: bool = False) -> subprocess.CompletedProcess:
    """A Python script; with progress, its stderr goes to ours as it comes."""
    done = subprocess.run([sys.executable, *map(str, argv)], env=env, stdout=subprocess.PIPE,
                          stderr=None if progress else subprocess.PIPE, text=True, timeout=14400)
    if done.returncode != 0:
        raise SystemExit(f"{what} exited with status {done.returncode}:\n{done.stdout[-2000:]}{done.stderr[-3000:] if done.stderr else ''}")
    return done


def say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def cache_path(args, data: mlflow_data.Shape) -> Path:
    if args.cache:
        return Path(args.cache)
    key = hashlib.sha256(json.dumps([asdict(data), version("mlflow")]).encode()).hexdigest()[:10]
    return REPO_ROOT / ".tools" / "bench-data" / f"mlflow-{data.runs}-runs-{key}.sql"


def database_ready(backend: MariaDBBackend, data: mlflow_data.Shape, cache: Path) -> dict:
    """Loads the cached dump, or fills the database and keeps its dump; returns seconds per step."""
    seconds = {}
    if cache.exists():
        say(f"loading {cache} ({cache.stat().st_size / 1e9:.2f} GB)")
        started = time.monotonic()
        backend.load(cache, timeout=14400)
        seconds["load"] = time.monotonic() - started
        return seconds
    env = database_env(backend)
    started = time.monotonic()
    run([INIT_DB], env, "init_db.py")
    say(f"filling {data.runs} runs (no dump at {cache} yet)")
    run([SCRIPT, "fill", "--tracking-uri", env["MLFLOW_BACKEND_STORE_URI"], "--auth-uri", env["MLFLOW_AUTH_DATABASE_URI"],
         *(f"--{name.replace('_', '-')}={value}" for name, value in asdict(data).items())], python_env(), "the fill", progress=True)
    seconds["fill"] = time.monotonic() - started
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_suffix(".partial")
    started = time.monotonic()
    backend.snapshot(partial, timeout=14400)
    partial.rename(cache)
    seconds["dump"] = time.monotonic() - started
    say(f"kept {cache} ({cache.stat().st_size / 1e9:.2f} GB)")
    return seconds


class Calls:
    """The requests the UI sends, with ids drawn from the database."""

    def __init__(self, base: str, backend: MariaDBBackend, rng: random.Random):
        self.base, self.http, self.rng = base, requests.Session(), rng
        with backend.connect(DATABASE) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT experiment_id FROM experiments WHERE name LIKE 'journey-%' ORDER BY experiment_id")
            self.experiments = [str(row[0]) for row in cursor.fetchall()]
            cursor.execute("SELECT run_uuid FROM runs ORDER BY RAND(1) LIMIT 500")
            self.runs = [row[0] for row in cursor.fetchall()]
            cursor.execute("SELECT DISTINCT name FROM registered_models ORDER BY name")
            self.models = [row[0] for row in cursor.fetchall()]

    def _call(self, method: str, path: str, **kwargs) -> dict:
        answer = self.http.request(method, f"{self.base}/ajax-api/2.0/mlflow/{path}", timeout=600, **kwargs)
        if answer.status_code != 200:
            raise SystemExit(f"{method} {path} answered {answer.status_code}: {answer.text[:500]}")
        return answer.json()

    def pick(self, items):
        return self.rng.choice(items)

    def classes(self) -> dict:
        metric = lambda: f"metric_{self.rng.randrange(20)}"  # noqa: E731
        return {
            "search_experiments": lambda: self._call("POST", "experiments/search", json={
                "max_results": 25, "order_by": ["last_update_time DESC"], "view_type": "ACTIVE_ONLY"}),
            "search_runs (start_time)": lambda: self._call("POST", "runs/search", json={
                "experiment_ids": [self.pick(self.experiments)], "max_results": 100, "run_view_type": "ACTIVE_ONLY",
                "order_by": ["attributes.start_time DESC"]}),
            "search_runs (by metric)": lambda: self._call("POST", "runs/search", json={
                "experiment_ids": [self.pick(self.experiments)], "max_results": 100, "run_view_type": "ACTIVE_ONLY",
                "order_by": [f"metrics.`{metric()}` DESC"]}),
            "search_runs (filter+metric)": lambda: self._call("POST", "runs/search", json={
                "experiment_ids": [self.pick(self.experiments)], "max_results": 100, "run_view_type": "ACTIVE_ONLY",
                "filter": f"metrics.`{metric()}` > 0.5 and params.param_0 = '0.1'",
                "order_by": [f"metrics.`{metric()}` ASC"]}),
            "get_run": lambda: self._call("GET", "runs/get", params={"run_id": self.pick(self.runs)}),
            "metric history": lambda: self._call("GET", "metrics/get-history", params={
                "run_id": self.pick(self.runs), "metric_key": metric()}),
            "history bulk-interval": lambda: self._call("GET", "metrics/get-history-bulk-interval", params={
                "run_ids": self.rng.sample(self.runs, 10), "metric_key": metric(), "max_results": 320}),
            "list artifacts": lambda: self._call("GET", "artifacts/list", params={"run_id": self.pick(self.runs)}),
            "search_registered_models": lambda: self._call("GET", "registered-models/search", params={
                "max_results": 25, "order_by": "name ASC"}),
            "search_model_versions": lambda: self._call("GET", "model-versions/search", params={
                "filter": f"name='{self.pick(self.models)}'", "max_results": 25}),
            "model versions of a run": lambda: self._call("GET", "model-versions/search", params={
                "filter": f"run_id='{self.pick(self.runs)}'"}),
        }


# The first statement of runs/search as MLflow 3.17 sends it (SqlAlchemyStore._search_runs, logged with
# sqlalchemy.engine at INFO), by start time and by a metric: timed on their own, they show the database's share.
RUN_COLUMNS = ("runs.run_uuid, runs.name, runs.source_type, runs.source_name, runs.entry_point_name, runs.user_id, "
               "runs.status, runs.start_time, runs.end_time, runs.deleted_time, runs.source_version, "
               "runs.lifecycle_stage, runs.artifact_uri, runs.experiment_id")
SQL_BY_START = (f"SELECT DISTINCT {RUN_COLUMNS}, CASE WHEN (runs.start_time IS NULL) THEN 1 ELSE 0 END AS clause_1, "
                "runs.start_time AS start_time__1 FROM runs WHERE runs.experiment_id IN (%s) AND runs.lifecycle_stage "
                "IN ('active') ORDER BY clause_1, runs.start_time DESC, runs.run_uuid LIMIT 0, 101")
SQL_BY_METRIC = (f"SELECT DISTINCT {RUN_COLUMNS}, CASE WHEN (anon_1.is_nan = true) THEN 1 WHEN (anon_1.value IS NULL) "
                 "THEN 2 ELSE 0 END AS clause_1, anon_1.value FROM runs LEFT OUTER JOIN (SELECT latest_metrics.`key` AS "
                 "`key`, latest_metrics.value AS value, latest_metrics.is_nan AS is_nan, latest_metrics.run_uuid AS "
                 "run_uuid FROM latest_metrics WHERE latest_metrics.`key` = %s) AS anon_1 ON runs.run_uuid = "
                 "anon_1.run_uuid WHERE runs.experiment_id IN (%s) AND runs.lifecycle_stage IN ('active') "
                 "ORDER BY clause_1, anon_1.value DESC, runs.start_time DESC, runs.run_uuid LIMIT 0, 101")
# The lean search's ranking statement for the same page: the run id and the ORDER BY values only.
SQL_BY_METRIC_LEAN = SQL_BY_METRIC.replace(f"SELECT DISTINCT {RUN_COLUMNS},", "SELECT DISTINCT runs.run_uuid, runs.start_time,")


def sql_classes(calls: Calls, backend: MariaDBBackend):
    """The statements above, sent straight to MariaDB (no tracking server)."""
    connection = backend.connect(DATABASE)

    def query(sql, params):
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    return connection, {
        "SQL only: runs by start_time": lambda: query(SQL_BY_START, (int(calls.pick(calls.experiments)),)),
        "SQL only: runs by metric": lambda: query(SQL_BY_METRIC, (f"metric_{calls.rng.randrange(20)}",
                                                                  int(calls.pick(calls.experiments)))),
        "SQL only: by metric, lean": lambda: query(SQL_BY_METRIC_LEAN, (f"metric_{calls.rng.randrange(20)}",
                                                                        int(calls.pick(calls.experiments)))),
    }


def measure(calls: Calls, backend: MariaDBBackend, samples: int, budget_s: float,
            loads: list[float]) -> dict[str, list[float]]:
    """Each class's samples (ms); `loads` gets the machine's 1-minute load average after each class."""
    timings = {}
    connection, direct = sql_classes(calls, backend)
    for name, call in {**calls.classes(), **direct}.items():
        call()  # warm-up
        spent, taken = time.monotonic(), []
        for _ in range(samples):
            started = time.perf_counter()
            call()
            taken.append((time.perf_counter() - started) * 1000)
            if time.monotonic() - spent > budget_s:
                break
        timings[name] = taken
        loads.append(os.getloadavg()[0])
        say(f"  {name}: p95 {percentile(taken, 0.95):.0f} ms (n={len(taken)})")
    connection.close()
    return timings


def drop_indexes(backend: MariaDBBackend) -> float:
    """The database as MLflow's own migrations leave it (mlflow_oci.indexes.drop puts back what an index took over)."""
    import sqlalchemy

    started = time.monotonic()
    engine = sqlalchemy.create_engine(uri(backend, DATABASE), poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as connection:
            for index in indexes.INDEXES:
                indexes.drop(connection, DATABASE, index)
    finally:
        engine.dispose()
    return time.monotonic() - started


def print_table(runs: int, timings: dict[str, dict[str, list[float]]], notes: list[str]) -> None:
    print(f"\nMLflow {version('mlflow')} UI calls on {runs:,} runs (MariaDB {' '.join(MARIADB_ARGS)}; "
          f"{os.cpu_count()} cores; tracking servers: docker/tracking/entrypoint.sh, 1 worker, direct, no proxy)")
    phases = list(timings)
    header = f"{'call':<28}" + "".join(f"{f'{phase} p50/p95/p99 ms':>30}" for phase in phases)
    print(header)
    for name in timings[phases[0]]:
        cells = []
        for phase in phases:
            taken = timings[phase][name]
            cells.append(f"{percentile(taken, 0.5):>8.0f} {percentile(taken, 0.95):>8.0f} {percentile(taken, 0.99):>8.0f}"
                         f"{'*' if percentile(taken, 0.95) > TARGET_P95_MS else ' '}")
        print(f"{name:<28}" + "".join(f"{cell:>30}" for cell in cells))
    print(f"(* p95 above {TARGET_P95_MS} ms)")
    for note in notes:
        print(note)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000, help="runs in the database (default 100000)")
    parser.add_argument("--samples", type=int, default=30, help="timed calls per call class and phase (default 30)")
    parser.add_argument("--budget", type=float, default=60, help="seconds at most per call class and phase (default 60)")
    parser.add_argument("--cache", help="the dump to load, or to write after a fill (default under .tools/bench-data/)")
    args = parser.parse_args()
    data = shape(args.runs)
    moto_server = find_binary("moto_server")
    if not moto_server:
        raise SystemExit("moto_server is not installed (pip install 'moto[server]')")
    tracker = ProcessTracker()
    timings, notes = {}, []
    with tempfile.TemporaryDirectory(prefix="bench-large-runs-") as tmp:
        root = Path(tmp)
        try:
            s3 = start_moto(tracker, moto_server, root / "moto")
            (root / "mariadb-tmp").mkdir()
            backend = MariaDBBackend.start(tracker, root / "mariadb",
                                           extra_args=(*MARIADB_ARGS, f"--tmpdir={root / 'mariadb-tmp'}"))
            seconds = database_ready(backend, data, cache_path(args, data))
            notes += [f"{step}: {value:.0f} s" for step, value in seconds.items()]
            say("starting the tracking servers (the first one's init_db.py adds the project's indexes)")
            started = time.monotonic()
            project = start_tracking_replica(tracker, backend.server, s3, root, "tracking", database=DATABASE,
                                             s3_prefix="bench")
            notes.append(f"tracking server start (init_db.py, indexes made if missing): {time.monotonic() - started:.0f} s")
            mlflow_own = start_tracking_replica(tracker, backend.server, s3, root, "mlflow-search", database=DATABASE,
                                                s3_prefix="bench", extra_env=(("MLFLOW_OCI_LEAN_RUN_SEARCH", "false"),
                                                                                 ("MLFLOW_OCI_COMPACT_JSON", "false")))
            servers = {"project": Calls(project.url, backend, random.Random(1)),
                       "MLflow search": Calls(mlflow_own.url, backend, random.Random(1))}
            say("warming the buffer pool: every class, untimed (the first phase measured must not pay for it)")
            for calls in servers.values():
                measure(calls, backend, 5, args.budget, [])

            def phase(name: str, calls: Calls) -> None:
                say(name)
                loads = []
                timings[name] = measure(calls, backend, args.samples, args.budget, loads)
                notes.append(f"load average during {name!r}: {min(loads):.1f} to {max(loads):.1f}")

            phase("project", servers["project"])
            phase("MLflow search", servers["MLflow search"])
            notes.append(f"dropping the project's indexes: {drop_indexes(backend):.0f} s")
            phase("no indexes", servers["project"])
            phase("MLflow alone", servers["MLflow search"])
            notes.append(f"({os.cpu_count()} cores; a load average above that means other work competed)")
            started = time.monotonic()
            run([INIT_DB], database_env(backend), "init_db.py")
            notes.append(f"init_db.py adding the indexes back (an upgrade's cost): {time.monotonic() - started:.0f} s")
            for replica in (project, mlflow_own):
                tracker.stop(replica.service)
        finally:
            tracker.stop_all()
    print_table(args.runs, timings, notes)


if __name__ == "__main__":
    main()
