"""Tracking API throughput through the auth proxy (TLS + bcrypt basic auth) vs directly to mlflow
server, same server, interleaved blocks. Target: proxy overhead <= 10 %.

    .venv/bin/python benchmarks/bench_runtime_tracking.py [--calls 200]
"""
import argparse
import time

from bench_runtime_common import local_runtime


def timed_calls(function, calls: int) -> float:
    """Calls per second over `calls` calls."""
    start = time.perf_counter()
    for index in range(calls):
        function(index)
    return calls / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="calls per endpoint and operation (default 200)")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved blocks per endpoint (default 4)")
    args = parser.parse_args()

    from mlflow import MlflowClient
    from mlflow.entities import Metric

    with local_runtime(serving=False) as (endpoints, direct_url):
        clients = {"direct": MlflowClient(direct_url), "proxy": MlflowClient(endpoints.tracking_url)}
        experiment = clients["direct"].create_experiment("bench-tracking")
        runs = [clients["direct"].create_run(experiment).info.run_id for _ in range(50)]
        target = runs[0]
        block = max(1, args.calls // args.rounds)
        results = {(name, op): [] for name in clients for op in ("log_batch", "search_runs")}
        step = 0
        for client in clients.values():  # warm connections (TLS handshake, keep-alive) first
            client.search_runs([experiment], max_results=10)
        for _ in range(args.rounds):
            for name, client in clients.items():
                def log_batch(index, client=client, first_step=step):
                    now = int(time.time() * 1000)
                    client.log_batch(target, metrics=[Metric(f"m{k}", float(k), now, first_step + index)
                                                      for k in range(100)])
                results[(name, "log_batch")].append(timed_calls(log_batch, block))
                step += block
                results[(name, "search_runs")].append(timed_calls(
                    lambda index, client=client: client.search_runs([experiment], max_results=50), block))

        print(f"tracking throughput, {block * args.rounds} calls per cell, SQLite backend, 1 worker")
        print(f"{'operation':<12} {'direct/s':>9} {'proxy/s':>9} {'overhead':>9}")
        for op in ("log_batch", "search_runs"):
            direct = sum(results[("direct", op)]) / args.rounds
            proxy = sum(results[("proxy", op)]) / args.rounds
            print(f"{op:<12} {direct:9.1f} {proxy:9.1f} {100 * (direct / proxy - 1):8.1f}%")
        print("(log_batch: 100 metrics per call; search_runs: 50 runs per page; overhead = extra time per call)")


if __name__ == "__main__":
    main()
