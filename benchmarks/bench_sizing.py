"""How many people one deployment serves: a team's load, open loop, against the real runtime.

The runtime is the default VM's: docker/tracking/entrypoint.sh with 2 workers (stack/locals.tf gives a 1-OCPU,
8 GB tracking VM min(4, 8 / 2, 1 * 2) = 2) behind the auth proxy (nginx, TLS, the one login), on MariaDB standing
for MySQL HeatWave and moto standing for Object Storage. Each simulated user, with arrivals at random (Poisson)
times on a schedule made before the load starts:
  - trains: a log_batch of 10 metrics every 5 s on a run of its own;
  - looks at the UI: a page every 30 s, one of the experiment list, the run table (100 runs ordered by a metric),
    a run page, the compare view and the model registry, each as the calls the MLflow UI makes for it (sent
    together, as a browser does);
  - downloads an artifact (256 KB) every 5 minutes.
Open loop: a call is sent at its scheduled time whether or not the earlier ones have answered, and its latency
runs from that time, so a server that falls behind shows it (no coordinated omission). For each team size it
prints p50/p95/p99 per call class, the errors, and the tracking server's CPU (cores busy) and memory (RSS of its
process tree); then the largest team that holds p95 <= 300 ms for UI calls and <= 100 ms for log_batch, and
what that means for each profile's shape.

Caveat, printed with the figures: this machine's cores are shared by the load client, nginx, MariaDB, moto and
MLflow; on OCI MySQL runs on its own DB system and the clients elsewhere. From the largest team that held, two
figures per profile shape: at least (that team per vCPU of this whole machine, times the shape's vCPUs), and at
most (that team per vCPU the tracking server and nginx were busy, measured from /proc, times the shape's
vCPUs: it assumes the server could use its cores to the full).

    .venv/bin/python benchmarks/bench_sizing.py [--users 25,50,100,200] [--seconds 60] [--seed-runs 2000]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import requests
from bench_runtime_common import REPO_ROOT, percentile, tree_memory_kib

sys.path.insert(0, str(REPO_ROOT / "tests"))  # the data-plane tests' starters for MariaDB, moto, MLflow, nginx

from dataplane.servers import ProcessTracker, start_mariadb, start_moto  # noqa: E402
from dataplane.stacks import start_proxy, start_tracking_replica  # noqa: E402
from dataplane.trust import CA_FILE  # noqa: E402
from harness.tools import find_binary  # noqa: E402
from orm_pack.local import credentials, processes  # noqa: E402

API = "/ajax-api/2.0/mlflow"      # the UI's prefix
LOG_EVERY_S, PAGE_EVERY_S, DOWNLOAD_EVERY_S = 5.0, 30.0, 300.0
METRICS_PER_BATCH = 10
UI_P95_MS, LOG_P95_MS = 300.0, 100.0
WORKERS = 2
SEED_METRICS, SEED_STEPS, SEED_PARAMS = 10, 5, 5
MODEL_VERSIONS = 20
ARTIFACT_BYTES = 256 * 1024
# The tracking server's vCPUs in each profile: x86 OCPUs are 2 vCPUs, Arm A1 OCPUs 1; OKE's pods have a CPU
# limit of 2 each (oke/base/tracking.yaml), 2 to 6 of them (oke/base/autoscaler.yaml).
PROFILES = (("default: VM.Standard.E5.Flex, 1 OCPU, 8 GB", 2),
            ("always-free: VM.Standard.A1.Flex, 1 OCPU, 6 GB", 1),
            ("oke: 2 tracking pods (autoscaled to 6), 2 CPUs each", 4))


@dataclass
class Seeded:
    experiment_id: str
    run_ids: list[str]
    artifact_runs: list[str]
    model: str


@dataclass
class Level:
    users: int
    seconds: float
    latencies: dict = field(default_factory=lambda: defaultdict(list))   # class -> ms
    errors: dict = field(default_factory=lambda: defaultdict(int))      # class -> count
    server_cores: float = 0.0
    server_rss_mb: float = 0.0
    proxy_cores: float = 0.0

    def p(self, name: str, fraction: float) -> float:
        samples = self.latencies.get(name) or [float("nan")]
        return percentile(samples, fraction)

    def holds(self) -> bool:
        return (not any(self.errors.values()) and self.p("ui", 0.95) <= UI_P95_MS
                and self.p("log_batch", 0.95) <= LOG_P95_MS)


class Api:
    """The REST calls, through the proxy, one session per thread (keep-alive, as browsers and clients do)."""

    def __init__(self, url: str, login: credentials.Credentials):
        self.url, self.auth, self._local = url, (login.username, login.password), threading.local()

    def _session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            session = requests.Session()
            session.auth = self.auth
            self._local.session = session
        return self._local.session

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        # verify per request: a session's own is overridden by REQUESTS_CA_BUNDLE in the environment
        answer = self._session().request(method, self.url + path, timeout=30, verify=CA_FILE, **kwargs)
        answer.raise_for_status()
        return answer


def seed(api: Api, runs: int) -> Seeded:
    """An experiment with `runs` runs (metrics over steps, params, tags), a registered model with versions, and
    artifacts on a few runs: what the UI pages show."""
    experiment_id = api.call("POST", "/api/2.0/mlflow/experiments/create",
                             json={"name": f"sizing-{time.time_ns()}"}).json()["experiment_id"]
    run_ids = []
    for index in range(runs):
        run_id = api.call("POST", "/api/2.0/mlflow/runs/create",
                          json={"experiment_id": experiment_id, "start_time": 0}).json()["run"]["info"]["run_id"]
        metrics = [{"key": f"m{k}", "value": random.random(), "timestamp": step, "step": step}
                   for k in range(SEED_METRICS) for step in range(SEED_STEPS)]
        api.call("POST", "/api/2.0/mlflow/runs/log-batch", json={
            "run_id": run_id, "metrics": metrics,
            "params": [{"key": f"p{k}", "value": str(index % (k + 3))} for k in range(SEED_PARAMS)],
            "tags": [{"key": "team", "value": f"t{index % 7}"}]})
        run_ids.append(run_id)
    artifact_runs = run_ids[:20]
    payload = os.urandom(ARTIFACT_BYTES)
    for run_id in artifact_runs:
        api.call("PUT", f"/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts/model.bin",
                 data=payload)
    model = f"sizing-model-{time.time_ns()}"
    api.call("POST", "/api/2.0/mlflow/registered-models/create", json={"name": model})
    for version in range(MODEL_VERSIONS):
        api.call("POST", "/api/2.0/mlflow/model-versions/create",
                 json={"name": model, "source": f"runs:/{run_ids[version]}/model", "run_id": run_ids[version]})
    return Seeded(experiment_id, run_ids, artifact_runs, model)


def ui_pages(seeded: Seeded, rng: random.Random) -> list[list[tuple[str, str, dict]]]:
    """The calls the MLflow UI makes for each page (its ajax-api requests, as the browser's network log lists
    them), for a page of one of the seeded runs."""
    run = rng.choice(seeded.run_ids)
    others = rng.sample(seeded.run_ids, 5)
    return [
        [("POST", f"{API}/experiments/search", {"json": {"max_results": 25, "order_by": ["last_update_time DESC"]}})],
        [("POST", f"{API}/runs/search", {"json": {"experiment_ids": [seeded.experiment_id], "max_results": 100,
                                                 "order_by": ["metrics.`m0` DESC"], "run_view_type": "ACTIVE_ONLY"}}),
         ("GET", f"{API}/experiments/get", {"params": {"experiment_id": seeded.experiment_id}})],
        [("GET", f"{API}/runs/get", {"params": {"run_id": run}}),
         ("GET", f"{API}/metrics/get-history", {"params": {"run_id": run, "metric_key": "m0"}}),
         ("GET", f"{API}/artifacts/list", {"params": {"run_id": run}})],
        [("GET", f"{API}/metrics/get-history-bulk-interval", {"params": {"run_ids": others, "metric_key": "m0",
                                                                         "max_results": 320}})],
        [("GET", f"{API}/registered-models/search", {"params": {"max_results": 25}}),
         ("GET", f"{API}/model-versions/search", {"params": {"filter": f"name='{seeded.model}'"}})],
    ]


def schedule(users: int, seconds: float, seeded: Seeded, rng: random.Random) -> list[tuple[float, str, object]]:
    """(time, class, call) for the whole level, in time order: each user's arrivals, Poisson at its rates."""
    events = []
    for user in range(users):
        run_id = seeded.run_ids[user % len(seeded.run_ids)]
        for every, name in ((LOG_EVERY_S, "log_batch"), (PAGE_EVERY_S, "ui"), (DOWNLOAD_EVERY_S, "artifact")):
            at = rng.uniform(0, every)
            while at < seconds:
                if name == "log_batch":
                    call = [("POST", "/api/2.0/mlflow/runs/log-batch", {"json": {"run_id": run_id, "metrics": [
                        {"key": f"train{k}", "value": rng.random(), "timestamp": int(at * 1000), "step": int(at)}
                        for k in range(METRICS_PER_BATCH)]}})]
                    events.append((at, name, call))
                elif name == "ui":
                    for request in rng.choice(ui_pages(seeded, rng)):
                        events.append((at, name, [request]))
                else:
                    artifact_run = rng.choice(seeded.artifact_runs)
                    events.append((at, name, [("GET", "/get-artifact", {"params": {
                        "path": "model.bin", "run_uuid": artifact_run}})]))
                at += rng.expovariate(1 / every)
    return sorted(events, key=lambda event: event[0])


class ServerMeter:
    """CPU (cores busy) and the largest RSS of a process tree, sampled from /proc every second."""

    def __init__(self, pid: int):
        self.pid, self.peak_rss_kib, self._stop = pid, 0, threading.Event()

    def _cpu_seconds(self) -> float:
        ticks = 0
        for member in {self.pid} | processes.descendants(self.pid):
            try:
                fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])  # utime, stime
            except (OSError, IndexError, ValueError):
                continue
        return ticks / os.sysconf("SC_CLK_TCK")

    def __enter__(self):
        self._began, self._cpu = time.monotonic(), self._cpu_seconds()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(1.0):
            self.peak_rss_kib = max(self.peak_rss_kib, tree_memory_kib(self.pid)[0])

    def __exit__(self, *_):
        self._stop.set()
        self._thread.join()
        self.cores = (self._cpu_seconds() - self._cpu) / (time.monotonic() - self._began)


def run_level(api: Api, users: int, seconds: float, seeded: Seeded, server_pid: int, proxy_pid: int) -> Level:
    rng = random.Random(users)
    events = schedule(users, seconds, seeded, rng)
    level = Level(users, seconds)
    lock = threading.Lock()

    def send(due: float, name: str, calls) -> None:
        for method, path, kwargs in calls:
            try:
                api.call(method, path, **kwargs)
                took = (time.monotonic() - due) * 1000
                with lock:
                    level.latencies[name].append(took)
            except Exception:  # a failed call is part of the figure
                with lock:
                    level.errors[name] += 1

    with ServerMeter(server_pid) as server, ServerMeter(proxy_pid) as proxy, \
            ThreadPoolExecutor(max_workers=128) as pool:
        start = time.monotonic()
        for at, name, calls in events:
            due = start + at
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(send, due, name, calls)
    level.server_cores, level.proxy_cores = server.cores, proxy.cores
    level.server_rss_mb = server.peak_rss_kib / 1024
    return level


def print_levels(levels: list[Level]) -> None:
    print(f"{'users':>5} {'class':>9} {'calls':>6} {'errors':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
          f"   server: cores busy, peak RSS MB; nginx cores")
    for level in levels:
        for index, name in enumerate(("log_batch", "ui", "artifact")):
            samples = level.latencies.get(name, [])
            tail = (f"   {level.server_cores:.2f}, {level.server_rss_mb:.0f}; {level.proxy_cores:.2f}"
                    f"{'   holds' if level.holds() else '   does not hold'}") if index == 0 else ""
            print(f"{level.users:>5} {name:>9} {len(samples):>6} {level.errors.get(name, 0):>6} "
                  f"{level.p(name, 0.5):8.1f} {level.p(name, 0.95):8.1f} {level.p(name, 0.99):8.1f}{tail}")


def print_sizing(levels: list[Level]) -> None:
    """Two ways from the largest team that held to a profile's shape. At least: the users per vCPU of this whole
    machine, which also ran MariaDB, moto and the load client (on OCI those are elsewhere). At most: the users
    per vCPU the tracking server and nginx were busy, which assumes the server could run its cores full."""
    held = [level for level in levels if level.holds()]
    if not held:
        print(f"\nno team size held p95 <= {UI_P95_MS:.0f} ms (UI) and <= {LOG_P95_MS:.0f} ms (log_batch)")
        return
    best = max(held, key=lambda level: level.users)
    used = best.server_cores + best.proxy_cores
    at_least = best.users / (os.cpu_count() or 1)
    at_most = best.users / used if used else float("nan")
    print(f"\nlargest team that holds p95 <= {UI_P95_MS:.0f} ms (UI calls) and <= {LOG_P95_MS:.0f} ms (log_batch): "
          f"{best.users} users on {os.cpu_count()} vCPUs running everything ({at_least:.0f} users per vCPU); the "
          f"tracking server and nginx were busy {used:.2f} vCPUs ({at_most:.0f} users per busy vCPU)")
    for profile, vcpus in PROFILES:
        print(f"  {profile:<55} {vcpus} vCPU -> at least {int(at_least * vcpus)} users, at most about "
              f"{int(at_most * vcpus)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", default="25,50,100,200", help="team sizes, comma-separated (default 25,50,100,200)")
    parser.add_argument("--seconds", type=float, default=60, help="load per team size (default 60)")
    parser.add_argument("--seed-runs", type=int, default=2000, help="runs in the experiment the UI shows (default 2000)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE")
    args = parser.parse_args()
    sizes = [int(size) for size in args.users.split(",")]
    binaries = {name: find_binary(name) for name in ("mariadbd", "mariadb-install-db", "moto_server")}
    missing = [name for name, path in binaries.items() if not path]
    if missing:
        raise SystemExit(f"not installed: {', '.join(missing)} (apt-get install mariadb-server; pip install "
                         "'moto[server]')")
    login = credentials.generate("mlflow")
    tracker = ProcessTracker()
    levels = []
    with tempfile.TemporaryDirectory(prefix="bench-sizing-") as tmp:
        root = Path(tmp)
        try:
            mariadb = start_mariadb(tracker, {k: binaries[k] for k in ("mariadbd", "mariadb-install-db")},
                                    root / "mariadb", extra_args=["--innodb-force-primary-key=ON"])
            s3 = start_moto(tracker, binaries["moto_server"], root / "moto")
            replica = start_tracking_replica(tracker, mariadb, s3, root, "tracking", database="mlflow_sizing",
                                             s3_prefix="sizing", workers=WORKERS)
            proxy, url = start_proxy(tracker, root / "proxy", replica.port, login)
            api = Api(url, login)
            began = time.monotonic()
            seeded = seed(api, args.seed_runs)
            print(f"seeded {args.seed_runs} runs, {MODEL_VERSIONS} model versions, {len(seeded.artifact_runs)} "
                  f"artifacts in {time.monotonic() - began:.0f} s", file=sys.stderr)
            for users in sizes:
                levels.append(run_level(api, users, args.seconds, seeded, replica.service.pid, proxy.pid))
                print(f"{users} users done", file=sys.stderr)
        finally:
            tracker.stop_all()
    print(f"bench_sizing: {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores shared by the load client, nginx, "
          f"MariaDB, moto and MLflow ({WORKERS} workers); {args.seconds:.0f} s per team size, open loop; per user: "
          f"log_batch every {LOG_EVERY_S:.0f} s, a UI page every {PAGE_EVERY_S:.0f} s, an artifact every "
          f"{DOWNLOAD_EVERY_S:.0f} s; {args.seed_runs} runs in the experiment")
    print_levels(levels)
    print_sizing(levels)
    if args.json:
        Path(args.json).write_text(json.dumps([{
            "users": level.users, "holds": level.holds(), "server_cores": level.server_cores,
            "proxy_cores": level.proxy_cores, "server_rss_mb": level.server_rss_mb,
            **{f"{name}_p{int(q * 100)}": level.p(name, q) for name in ("log_batch", "ui", "artifact")
               for q in (0.5, 0.95, 0.99)},
            "errors": dict(level.errors)} for level in levels], indent=2))


if __name__ == "__main__":
    main()
