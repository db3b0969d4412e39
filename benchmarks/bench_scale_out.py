"""Tracking throughput with 1, 2 and 4 replicas behind one nginx upstream, all on one MariaDB database
and one S3 emulator (moto). Each replica is docker/tracking/entrypoint.sh with MLFLOW_WORKERS=1, so the
replica count is the number of server processes: the comparison is scaling out, not adding workers.
For each count, --threads client threads drive the same mixed load through the proxy (TLS + basic
auth): log_batch (20 metrics), search_runs (20 of 50 runs), get_run, in turn; it prints requests/s,
p50/p95 latency and how the proxy spread the requests over the replicas.

A figure, not pass/fail, and bounded by this machine's cores: the clients, nginx, MariaDB, moto and
every replica share them, so once the replicas keep the cores busy more replicas add no throughput.
On OKE each replica has CPU of its own; there the figure grows with the nodes, here with the cores.

    .venv/bin/python benchmarks/bench_scale_out.py [--threads 8] [--iterations 40]
"""
import argparse
import os
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from bench_runtime_common import CLIENT_ENV, REPO_ROOT, percentile
from urllib3.exceptions import InsecureRequestWarning

sys.path.insert(0, str(REPO_ROOT / "tests"))  # the data-plane tests' starters for MariaDB, moto, replicas, proxy

from dataplane.servers import ProcessTracker, start_mariadb, start_moto  # noqa: E402
from dataplane.stacks import TrackingReplica, start_proxy, start_tracking_replica  # noqa: E402
from harness.tools import find_binary  # noqa: E402
from orm_pack.local import credentials  # noqa: E402

REPLICA_COUNTS = (1, 2, 4)
DATABASE = "mlflow_bench"
SEEDED_RUNS = 50          # what search_runs pages through
METRICS_PER_BATCH = 20
WARMUP_ITERATIONS = 2     # per thread, unmeasured: TLS sessions, keep-alive, each replica's first queries


@dataclass
class Figures:
    replicas: int
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    share: list[int]          # requests each replica's access log gained during the measured load
    proxy_errors: int         # nginx [error] lines: a refused or dropped upstream connection


def required_binary(name: str, how: str) -> str:
    path = find_binary(name)
    if not path:
        raise SystemExit(f"{name} is not installed ({how})")
    return path


def seed_experiment(client, label: str) -> str:
    """An experiment of its own per replica count, with SEEDED_RUNS runs for search_runs to page through."""
    from mlflow.entities import Metric, Param

    experiment_id = client.create_experiment(f"bench-scale-out-{label}-{time.time_ns()}")
    for index in range(SEEDED_RUNS):
        run_id = client.create_run(experiment_id).info.run_id
        client.log_batch(run_id, metrics=[Metric(f"m{k}", float(k), 0, 0) for k in range(METRICS_PER_BATCH)],
                         params=[Param("index", str(index))])
    return experiment_id


def drive(url: str, experiment_id: str, iterations: int, start: threading.Barrier,
          latencies_ms: list[float], errors: list[str]) -> None:
    """One client thread: a run of its own, then `iterations` rounds of log_batch, search_runs, get_run."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient(url)

    def log_batch(step: int) -> None:
        now = int(time.time() * 1000)
        client.log_batch(run_id, metrics=[Metric(f"m{k}", float(step), now, step) for k in range(METRICS_PER_BATCH)])

    operations = (log_batch, lambda step: client.search_runs([experiment_id], max_results=20),
                  lambda step: client.get_run(run_id))
    try:
        run_id = client.create_run(experiment_id).info.run_id
        for step in range(WARMUP_ITERATIONS):
            for operation in operations:
                operation(step)
    except Exception:
        start.abort()  # the main thread stops waiting and the benchmark ends with this error
        raise
    start.wait()
    for step in range(WARMUP_ITERATIONS, WARMUP_ITERATIONS + iterations):
        for operation in operations:
            began = time.perf_counter()
            try:
                operation(step)
            except Exception as error:  # counted and shown: a failed request is part of the figure
                errors.append(f"{type(error).__name__}: {str(error)[:200]}")
                continue
            latencies_ms.append((time.perf_counter() - began) * 1000)


def requests_logged(replica: TrackingReplica) -> int:
    """API requests in the replica's access log (uvicorn logs one line per request)."""
    log = replica.service.log.read_text(errors="replace")
    return log.count('"GET /api/') + log.count('"POST /api/')


def proxy_error_lines(error_log: Path) -> list[str]:
    lines = error_log.read_text(errors="replace").splitlines() if error_log.exists() else []
    return [line for line in lines if "[error]" in line]


def measure(url: str, error_log: Path, replicas: list[TrackingReplica], threads: int, iterations: int) -> Figures:
    from mlflow import MlflowClient

    experiment_id = seed_experiment(MlflowClient(url), f"{len(replicas)}x")
    latencies_ms: list[float] = []
    errors: list[str] = []
    start = threading.Barrier(threads + 1, timeout=600)
    workers = [threading.Thread(target=drive, args=(url, experiment_id, iterations, start, latencies_ms, errors))
               for _ in range(threads)]
    for worker in workers:
        worker.start()
    start.wait()  # every thread has warmed up
    logged_before = [requests_logged(replica) for replica in replicas]
    began = time.perf_counter()
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - began
    share = [requests_logged(replica) - before for replica, before in zip(replicas, logged_before, strict=True)]
    for error in sorted(set(errors))[:5]:
        print(f"  client error ({errors.count(error)}x): {error}", file=sys.stderr)
    proxy_errors = proxy_error_lines(error_log)
    for line in proxy_errors[:5]:
        print(f"  proxy: {line}", file=sys.stderr)
    return Figures(len(replicas), len(latencies_ms) + len(errors), len(errors), seconds, latencies_ms, share,
                   len(proxy_errors))


def print_table(figures: list[Figures], threads: int) -> None:
    cores = os.cpu_count()
    print(f"tracking scale-out: replicas (1 worker each) behind one nginx upstream, one MariaDB database, moto S3;"
          f" {threads} client threads through the proxy")
    print(f"machine: {cores} cores shared by clients, nginx, MariaDB, moto and the replicas (the figure is bounded"
          f" by them)")
    print(f"{'replicas':>8} {'requests':>9} {'errors':>6} {'proxy errors':>12} {'req/s':>8} {'p50 ms':>8} "
          f"{'p95 ms':>8}  requests per replica")
    for row in figures:
        print(f"{row.replicas:>8} {row.requests:>9} {row.errors:>6} {row.proxy_errors:>12} "
              f"{row.requests / row.seconds:8.1f} "
              f"{percentile(row.latencies_ms, 0.5):8.1f} {percentile(row.latencies_ms, 0.95):8.1f}  "
              f"{' / '.join(str(count) for count in row.share)}")
    print(f"(mixed load: log_batch of {METRICS_PER_BATCH} metrics, search_runs of 20 among {SEEDED_RUNS + threads} "
          "runs, get_run, in turn per thread)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=8, help="concurrent client threads (default 8)")
    parser.add_argument("--iterations", type=int, default=40,
                        help="rounds of the three calls per thread and replica count (default 40)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=InsecureRequestWarning)  # the proxy's self-signed certificate

    mariadb_binaries = {name: required_binary(name, "apt-get install mariadb-server")
                        for name in ("mariadbd", "mariadb-install-db")}
    moto_server = required_binary("moto_server", "pip install 'moto[server]'")
    login = credentials.generate("mlflow-user")
    os.environ.update(CLIENT_ENV, MLFLOW_TRACKING_USERNAME=login.username, MLFLOW_TRACKING_PASSWORD=login.password)

    tracker = ProcessTracker()
    with tempfile.TemporaryDirectory(prefix="bench-scale-out-") as tmp:
        root = Path(tmp)
        try:
            mariadb = start_mariadb(tracker, mariadb_binaries, root / "mariadb",
                                    extra_args=["--innodb-force-primary-key=ON"])
            s3 = start_moto(tracker, moto_server, root / "moto")
            replicas: list[TrackingReplica] = []
            figures = []
            for count in REPLICA_COUNTS:
                while len(replicas) < count:  # one at a time: the first migrates the schema
                    replicas.append(start_tracking_replica(tracker, mariadb, s3, root, f"r{len(replicas) + 1}",
                                                           database=DATABASE, s3_prefix="bench"))
                proxy_dir = root / f"proxy-{count}"
                proxy, url = start_proxy(tracker, proxy_dir, [r.port for r in replicas], login)
                figures.append(measure(url, proxy_dir / "error.log", replicas, args.threads, args.iterations))
                tracker.stop(proxy)
        finally:
            tracker.stop_all()
    print_table(figures, args.threads)
    leftovers = tracker.leftovers()
    if leftovers:
        print(f"warning: processes left running: {leftovers}", file=sys.stderr)


if __name__ == "__main__":
    main()
