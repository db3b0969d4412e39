"""What each way of logging in costs the tracking server, per request, on one replica (1 worker, MariaDB, moto):

  none      MLFLOW_AUTH=proxy: MLflow checks nobody (the proxy's one login guards the door)
  basic     MLFLOW_AUTH=mlflow: MLflow's own users, a password on every request, checked once per replica
            process and then trusted for MLFLOW_OCI_PASSWORD_CACHE_SECONDS (30 by default; MLflow's
            credential cache, docker/lib/mlflow_oci/auth_ini.py)
  basic0    the same with MLFLOW_OCI_PASSWORD_CACHE_SECONDS=0: MLflow's scrypt check on every request
  bearer    MLFLOW_AUTH=oidc: a token from the provider on every request, verified by
            docker/lib/mlflow_oci/oidc_auth.py against the provider's JWKS (fetched once, then cached)
  session   MLFLOW_AUTH=oidc: the signed session cookie a browser holds after signing in
  basic*    MLFLOW_AUTH=oidc: a password again, through oidc_auth.py (which keeps the answer for the request:
            MLflow asks its authorization function several times per request) and the same credential cache

Every request is GET experiments/get of an experiment the caller may only read (a non-admin, so MLflow's
permission check runs too), sent straight to the replica (no proxy, no TLS), so the differences are the
login check. Sequential requests give latency; --threads concurrent clients give throughput. The cases take
turns (--rounds), so that a busy moment on a shared machine does not land on one of them only.
The provider is oidc-provider-mock on loopback (pip install -e '.[test]').

    .venv/bin/python benchmarks/bench_auth.py [--requests 400] [--threads 8] [--seconds 20] [--rounds 5]
"""
import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from bench_runtime_common import REPO_ROOT, percentile

sys.path.insert(0, str(REPO_ROOT / "tests"))  # the data-plane tests' starters and their loopback provider
sys.path.insert(0, str(REPO_ROOT / "docker" / "lib"))  # mlflow_oci, as the image has it

from dataplane.servers import ProcessTracker, start_mariadb, start_moto  # noqa: E402
from dataplane.stacks import start_tracking_replica  # noqa: E402
from dataplane.test_sso import ADMIN, SESSION_COOKIE, Provider, sign_in_without_a_browser, sso_env  # noqa: E402
from harness.tools import find_binary  # noqa: E402

USERS_ENV = (("MLFLOW_AUTH", "mlflow"), ("MLFLOW_AUTH_ADMIN_USERNAME", ADMIN[0]), ("MLFLOW_AUTH_ADMIN_PASSWORD", ADMIN[1]),
             ("MLFLOW_AUTH_DEFAULT_PERMISSION", "READ"),
             ("MLFLOW_FLASK_SERVER_SECRET_KEY", "one-key-for-every-replica-0123456789"))
UNCACHED = ("MLFLOW_OCI_PASSWORD_CACHE_SECONDS", "0")
READER = ("reader", "Reader-login-Passw0rd-2026")
PATH = "/api/2.0/mlflow/experiments/get"


def required_binary(name: str, how: str) -> str:
    path = find_binary(name)
    if not path:
        raise SystemExit(f"{name} is not installed ({how})")
    return path


def timed_requests(url: str, count: int, login: dict, seconds: float = float("inf")) -> list[float]:
    """Up to `count` requests (fewer when `seconds` run out) on one keep-alive connection; milliseconds each.
    Any answer but 200 stops the benchmark."""
    session = requests.Session()
    session.auth = login.get("auth")
    session.headers.update(login.get("headers", {}))
    session.cookies.update(login.get("cookies", {}))
    latencies = []
    deadline = time.monotonic() + seconds
    while len(latencies) < count and time.monotonic() < deadline:
        began = time.perf_counter()
        answer = session.get(url + PATH, params={"experiment_id": "0"}, timeout=30)
        latencies.append((time.perf_counter() - began) * 1000)
        if answer.status_code != 200:
            raise SystemExit(f"{url}: {answer.status_code} {answer.text[:200]}")
    return latencies


def throughput(url: str, login: dict, threads: int, seconds: float) -> tuple[int, float]:
    """(requests answered, seconds taken) with `threads` clients sending requests for `seconds`."""
    start = threading.Barrier(threads + 1)
    done = []

    def client() -> None:
        start.wait()
        done.append(len(timed_requests(url, sys.maxsize, login, seconds)))

    workers = [threading.Thread(target=client) for _ in range(threads)]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.perf_counter()
    for worker in workers:
        worker.join()
    return sum(done), time.perf_counter() - began


def create_reader(url: str) -> None:
    answer = requests.post(url + "/api/2.0/mlflow/users/create", auth=ADMIN, timeout=30,
                           json={"username": READER[0], "password": READER[1]})
    assert answer.status_code == 200, answer.text


def logins(mode: str, url: str, provider: Provider) -> list[tuple[str, str, dict]]:
    """(label, meaning, how requests log in) for a replica in this MLFLOW_AUTH mode."""
    if mode == "proxy":
        return [("none", "MLFLOW_AUTH=proxy: no login", {})]
    if mode == "mlflow":
        create_reader(url)
        return [("basic", "MLFLOW_AUTH=mlflow: MLflow user, Authorization: Basic (checked once, then trusted 30 s)",
                 {"auth": READER})]
    if mode == "mlflow0":
        create_reader(url)
        return [("basic0", "MLFLOW_AUTH=mlflow: the same, checked on every request (MLFLOW_OCI_PASSWORD_CACHE_SECONDS=0)",
                 {"auth": READER})]
    create_reader(url)
    return [("bearer", "MLFLOW_AUTH=oidc: the provider's token, Authorization: Bearer",
             {"headers": {"Authorization": f"Bearer {provider.id_token('u-bob')}"}}),
            ("session", "MLFLOW_AUTH=oidc: a signed-in browser's session cookie",
             {"cookies": {SESSION_COOKIE: sign_in_without_a_browser(url, "u-alice")}}),
            ("basic*", "MLFLOW_AUTH=oidc: MLflow user, Authorization: Basic (checked once per request)",
             {"auth": READER})]


def in_process_microseconds(provider: Provider, repeat: int = 2000) -> tuple[float, float]:
    """The function's own checks without the server around them: (a bearer token, a session cookie), µs each."""
    from mlflow_oci import oidc_auth

    settings = oidc_auth.load_settings(dict(sso_env(provider.url)))
    runtime = oidc_auth.Runtime(settings)
    token = provider.id_token("u-bob")
    runtime.verifier.claims(token)  # discovery and the JWKS, once
    cookie = runtime.sessions.dumps({"u": "bob"})
    figures = []
    for check in (lambda: oidc_auth.identity_from_claims(runtime.verifier.claims(token), settings),
                  lambda: runtime.sessions.loads(cookie, max_age=settings.session_seconds)):
        began = time.perf_counter()
        for _ in range(repeat):
            check()
        figures.append((time.perf_counter() - began) / repeat * 1e6)
    return figures[0], figures[1]


def measure(cases: list, args) -> list[tuple[str, str, list[float], float]]:
    """Every case in turn, args.rounds times: (label, meaning, latencies, requests per second)."""
    latencies = {label: [] for label, *_ in cases}
    answered = {label: [0, 0.0] for label, *_ in cases}
    for _ in range(args.rounds):
        for label, _, url, login in cases:
            latencies[label] += timed_requests(url, args.requests // args.rounds, login, args.seconds / args.rounds)
            count, seconds = throughput(url, login, args.threads, args.seconds / args.rounds)
            answered[label][0] += count
            answered[label][1] += seconds
    return [(label, meaning, latencies[label], answered[label][0] / answered[label][1]) for label, meaning, *_ in cases]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400,
                        help="sequential requests per case, or as many as --seconds allow (default 400)")
    parser.add_argument("--threads", type=int, default=8, help="concurrent clients for throughput (default 8)")
    parser.add_argument("--seconds", type=float, default=20, help="time per measurement and case (default 20)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="the cases take turns this many times, so a busy moment on the machine hits them all")
    args = parser.parse_args()
    mariadb_binaries = {name: required_binary(name, "apt-get install mariadb-server")
                        for name in ("mariadbd", "mariadb-install-db")}
    moto_server = required_binary("moto_server", "pip install 'moto[server]'")

    tracker = ProcessTracker()
    provider = Provider()
    bearer_us, session_us = in_process_microseconds(provider)
    with tempfile.TemporaryDirectory(prefix="bench-auth-") as tmp:
        root = Path(tmp)
        try:
            mariadb = start_mariadb(tracker, mariadb_binaries, root / "mariadb", extra_args=["--innodb-force-primary-key=ON"])
            s3 = start_moto(tracker, moto_server, root / "moto")
            cases = []   # (label, meaning, replica URL, login)
            for mode, env in (("proxy", ()), ("mlflow", USERS_ENV), ("mlflow0", (*USERS_ENV, UNCACHED)),
                              ("oidc", sso_env(provider.url))):
                replica = start_tracking_replica(tracker, mariadb, s3, root, mode, database=f"bench_auth_{mode}",
                                                 s3_prefix=f"bench-auth-{mode}", extra_env=env)
                cases += [(label, meaning, replica.url, login) for label, meaning, login in logins(mode, replica.url, provider)]
            for _, _, url, login in cases:
                timed_requests(url, 20, login)  # warm-up: connections, caches, the JWKS fetch
            rows = measure(cases, args)
        finally:
            tracker.stop_all()
            provider.stop()
    print(f"tracking server login cost: one replica (1 uvicorn worker) on {os.cpu_count()} cores, direct HTTP, "
          f"GET {PATH} as a non-admin reader")
    print(f"{'case':<8} {'n':>4} {'p50 ms':>7} {'p95 ms':>7} {'mean ms':>8} {'req/s':>7}  (n sequential requests; "
          f"req/s with {args.threads} clients for {args.seconds:g} s)")
    for label, meaning, latencies, rate in rows:
        print(f"{label:<8} {len(latencies):>4} {percentile(latencies, 0.5):7.2f} {percentile(latencies, 0.95):7.2f} "
              f"{statistics.fmean(latencies):8.2f} {rate:7.1f}  {meaning}")
    rates = {label: rate for label, _, _, rate in rows}
    print(f"passwords against bearer tokens, req/s: basic {rates['basic'] / rates['bearer']:.0%}, "
          f"basic* {rates['basic*'] / rates['bearer']:.0%}, basic0 {rates['basic0'] / rates['bearer']:.0%}")
    print(f"in process, the function's own check: bearer token {bearer_us:.0f} µs (signature, issuer, audience, expiry, "
          f"groups; JWKS cached), session cookie {session_us:.0f} µs")
    leftovers = tracker.leftovers()
    if leftovers:
        print(f"warning: processes left running: {leftovers}", file=sys.stderr)


if __name__ == "__main__":
    main()
