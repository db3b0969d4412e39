"""Peak memory of the tracking server: our entrypoint's defaults (2 workers, job runner off) vs
`mlflow server` with MLflow's own defaults, under the same light load. Target: <= 1 GiB on a
1-OCPU / 6 GB shape. Measured 2026-11-30 on 2 cores: ours ~0.65 GiB PSS, MLflow's defaults ~2.3 GiB.

    .venv/bin/python benchmarks/bench_runtime_memory.py [--seconds 40]
"""
import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench_runtime_common import CLIENT_ENV, REPO_ROOT, free_port, processes, tree_memory_kib

from orm_pack.local.runtime_files import RuntimeFiles
from orm_pack.local.services import TrackingConfig, python_env, tracking_argv, tracking_env


def drive_load(url: str, stop: threading.Event) -> None:
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient(url)
    experiment = client.create_experiment(f"bench-memory-{time.time_ns()}")
    step = 0
    while not stop.is_set():
        run = client.create_run(experiment).info.run_id
        client.log_batch(run, metrics=[Metric(f"m{k}", float(k), 0, step) for k in range(200)])
        client.search_runs([experiment], max_results=100)
        step += 1


def measure(name: str, argv: list[str], env: dict, port: int, seconds: float, workdir: Path) -> None:
    service = processes.start(name, argv, env, workdir / f"{name}.log")
    try:
        processes.wait_ready(service, f"http://127.0.0.1:{port}/health", 300)
        stop = threading.Event()
        load = threading.Thread(target=drive_load, args=(f"http://127.0.0.1:{port}", stop))
        load.start()
        peak_rss = peak_pss = 0
        members = 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            rss, pss = tree_memory_kib(service.pid)
            peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
            members = max(members, 1 + len(processes.descendants(service.pid)))
            time.sleep(0.5)
        stop.set()
        load.join()
        print(f"{name:<16} processes {members:>2}   peak RSS sum {peak_rss / 1024:7.0f} MiB   "
              f"peak PSS sum {peak_pss / 1024:7.0f} MiB")
    finally:
        processes.stop(service.pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=40, help="load duration per configuration (default 40)")
    args = parser.parse_args()
    os.environ.update(CLIENT_ENV)
    runtime = RuntimeFiles(REPO_ROOT)
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        workdir = Path(tmp)
        port = free_port()
        ours = tracking_env(TrackingConfig(port=port, backend_store_uri=f"sqlite:///{workdir}/ours.db",
                                           artifacts_destination=str(workdir / "ours-artifacts")))
        measure("ours (defaults)", tracking_argv(runtime), ours, port, args.seconds, workdir)

        port = free_port()
        plain = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                 "--backend-store-uri", f"sqlite:///{workdir}/plain.db",
                 "--artifacts-destination", str(workdir / "plain-artifacts")]
        env = python_env()
        env.pop("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", None)
        measure("mlflow defaults", plain, env, port, args.seconds, workdir)
    print("RSS sum counts pages shared between workers once per process; PSS splits them (closer to real use).")


if __name__ == "__main__":
    main()
