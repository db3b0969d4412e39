"""How a VM of the deployment is, posted to OCI Monitoring (PostMetricData, with the instance principal) in the
custom namespace `mlflow`, one pass a call:

    python3 -m mlflow_oci.metrics [--role tracking|serving] [--requests FILE|-] [--dry-run]
    python3 -m mlflow_oci.metrics --every SECONDS [--prometheus-port PORT]     (OKE: one pod, a pass a minute)
    python3 -m mlflow_oci.metrics --every SECONDS --requests-syslog PORT [--prometheus-port PORT]
                                  (OKE's proxy pods: only the request metrics, from nginx's syslog datagrams)

With --every it makes a pass every SECONDS until stopped, served to Prometheus with --prometheus-port
(mlflow_oci.metrics_loop).

Every metric carries the dimensions `deployment` and `role`; some one more, named after the metric.
    mlflow.up                     1 when the role's server answers /health (tracking: and its database), else 0
    mlflow.disk_used_percent      of the file system that holds MLFLOW_METRICS_DISK_PATH (/; empty: none)
  tracking:
    mlflow.runs, mlflow.experiments, mlflow.registered_models, mlflow.model_versions   counts (active ones)
    mlflow.database_bytes         the MLflow database's data and indexes (information_schema)
  serving (with SERVING_MODEL_NAME and SERVING_MODEL_ALIAS, or a fixed SERVING_MODEL_URI):
    mlflow.served_model_version   the version the endpoint answers with (its X-MLflow-Model-URI)
    mlflow.serving_follows_alias  1 when that is the version the alias names in the registry, else 0 (none while
                                  the registry names none)
  from the proxy's request log (--requests: the lines nginx wrote since the last pass), per `route`
  (api, ui, artifacts, serving, health):
    mlflow.requests               requests answered, per `route` and `status` class (2xx ... 5xx)
    mlflow.latency_p50_ms, mlflow.latency_p95_ms, mlflow.latency_p99_ms   per route
    mlflow.server_error_percent   5xx of the route's requests, once it had MIN_REQUESTS_FOR_PERCENT of them
    mlflow.login_failures         401s to requests that carried a login (all routes)
    mlflow.login_throttled        429s: the failed-login limit refusing a client
  per `process` (mlflow-tracking or mlflow-serving, nginx), from systemd (MLFLOW_METRICS_UNITS: `systemctl show
  -p Id -p MemoryCurrent -p NRestarts UNIT...`) and podman (MLFLOW_METRICS_CONTAINER_MEMORY, the container's):
    mlflow.memory_bytes, mlflow.restarts (since the VM booted)

Settings: MLFLOW_METRICS_COMPARTMENT_OCID, MLFLOW_METRICS_DEPLOYMENT (the stack's name prefix),
MLFLOW_METRICS_HEALTH_URL (tracking: http://127.0.0.1:5000/health; serving: http://127.0.0.1:8080/health);
tracking: MLFLOW_BACKEND_STORE_URI; serving: the registry login the endpoint has (MLFLOW_TRACKING_URI, ...,
MLFLOW_TRACKING_PASSWORD_SECRET_OCID read from Vault). Prints the values as one JSON line.
Exit codes: 0 posted, 2 bad settings, 3 OCI Monitoring refused some (their messages on stderr) or could not be
reached. A database or registry that does not answer is posted as what it means (down, not following), not as
an error.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import sys
import time
import urllib.error
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field

NAMESPACE = "mlflow"
ROLES = ("tracking", "serving")
HEALTH_URLS = {"tracking": "http://127.0.0.1:5000/health", "serving": "http://127.0.0.1:8080/health"}
MODEL_HEADER = "X-MLflow-Model-URI"  # docker/serving/legacy_adapter.py
MAX_STREAMS_A_CALL = 50  # PostMetricData's limit
MIN_REQUESTS_FOR_PERCENT = 10  # a share of 2 requests says nothing
PERCENTILES = (50, 95, 99)
REGISTRY_TIMEOUT_SECONDS = 10
COUNTS = {
    "mlflow.runs": "SELECT count(*) FROM runs WHERE lifecycle_stage = 'active'",
    "mlflow.experiments": "SELECT count(*) FROM experiments WHERE lifecycle_stage = 'active'",
    "mlflow.registered_models": "SELECT count(*) FROM registered_models",
    "mlflow.model_versions": "SELECT count(*) FROM model_versions WHERE current_stage != 'Deleted_Internal'",
}
# podman's MemUsage: SI units (kB, MB, GB) or binary ones (KiB, MiB, GiB).
CONTAINER_MEMORY = re.compile(r"^(\d+(?:\.\d+)?)\s*([kMGT]i?B|B)\b", re.IGNORECASE)
BYTE_UNITS = {"b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "kib": 2**10, "mib": 2**20, "gib": 2**30,
              "tib": 2**40}
DATABASE_BYTES = ("SELECT COALESCE(SUM(data_length + index_length), 0) FROM information_schema.tables "
                  "WHERE table_schema = DATABASE()")


@dataclass(frozen=True)
class Sample:
    name: str
    value: float
    dimensions: dict = field(default_factory=dict)  # beyond deployment and role

    @property
    def key(self) -> str:
        extra = ",".join(f"{k}={v}" for k, v in sorted(self.dimensions.items()))
        return f"{self.name}{{{extra}}}" if extra else self.name


# ---------------------------------------------------------------------------------------------- what is measured
def _answer(url: str) -> tuple[int, dict]:
    """(status, headers) of a GET to a loopback URL; status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - the VM's own loopback URLs
            return answer.status, dict(answer.headers)
    except urllib.error.HTTPError as refused:
        return refused.code, dict(refused.headers)
    except OSError:
        return 0, {}


def disk(path: str) -> list[Sample]:
    if not path:
        return []  # a pod's file system is the node's concern, not the deployment's
    usage = shutil.disk_usage(path)
    return [Sample("mlflow.disk_used_percent", round(100 * usage.used / usage.total, 2))]


def tracking(store_uri: str, health_url: str) -> list[Sample]:
    import sqlalchemy as sa

    up = int(_answer(health_url)[0] == 200)
    samples = []
    engine = sa.create_engine(store_uri, pool_pre_ping=True)
    try:
        with engine.connect() as connection:
            samples = [Sample(name, connection.scalar(sa.text(query))) for name, query in COUNTS.items()]
            if engine.dialect.name == "mysql":
                samples.append(Sample("mlflow.database_bytes", int(connection.scalar(sa.text(DATABASE_BYTES)))))
    except sa.exc.SQLAlchemyError:
        up = 0  # the server cannot work without its database, whatever /health says
    finally:
        engine.dispose()
    return [Sample("mlflow.up", up), *samples]


def _version(model_uri: str | None) -> int | None:
    """N of models:/<name>/N."""
    tail = (model_uri or "").rsplit("/", 1)[-1]
    return int(tail) if model_uri and model_uri.startswith("models:/") and tail.isdigit() else None


def alias_version(env) -> int | None:
    """The version SERVING_MODEL_ALIAS names in the registry, with the endpoint's own login; None if unknown."""
    # A registry that does not answer must not hold the pass past its timer's limit (the other figures would be
    # lost too): one try of at most REGISTRY_TIMEOUT_SECONDS; the next pass asks again.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(REGISTRY_TIMEOUT_SECONDS))
    from mlflow import MlflowClient

    try:
        found = MlflowClient().get_model_version_by_alias(env["SERVING_MODEL_NAME"],
                                                          env.get("SERVING_MODEL_ALIAS") or "champion")
    except Exception as exc:  # the registry refused or is away: the endpoint does not follow what it cannot see
        from mlflow_oci.auth import first_line

        print(f"metrics: the registry did not say which version the alias names: {first_line(exc)}",
              file=sys.stderr)
        return None
    return int(found.version)


def serving(env, health_url: str) -> list[Sample]:
    status, _ = _answer(health_url)
    base = health_url.rsplit("/", 1)[0]
    _, headers = _answer(f"{base}/ping")  # forwarded to the model server: the answer names the version
    served = _version(headers.get(MODEL_HEADER))
    samples = [Sample("mlflow.up", int(status == 200))]
    if served is not None:
        samples.append(Sample("mlflow.served_model_version", served))
    if env.get("SERVING_MODEL_NAME") and not env.get("SERVING_MODEL_URI"):
        wanted = alias_version(env)
        if wanted is not None:  # no alias yet (a new deployment) is nothing to follow
            samples.append(Sample("mlflow.serving_follows_alias", int(served == wanted)))
    return samples


def _percentile(ordered: list[float], percent: int) -> float:
    """Nearest rank."""
    return ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)]


def requests(lines) -> list[Sample]:
    """From the proxy's request log (JSON lines; others, such as a line cut by a rotation, are skipped)."""
    seconds, classes = defaultdict(list), defaultdict(int)
    failures = throttled = 0
    for line in lines:
        try:
            record = json.loads(line)
            route, status, took = str(record["route"]), int(record["status"]), float(record["seconds"])
        except (ValueError, KeyError, TypeError):
            continue
        seconds[route].append(took)
        classes[route, f"{status // 100}xx"] += 1
        failures += status == 401 and bool(record.get("login"))
        throttled += status == 429
    samples = [Sample("mlflow.requests", count, {"route": route, "status": status})
               for (route, status), count in sorted(classes.items())]
    for route, took in sorted(seconds.items()):
        ordered = sorted(took)
        samples += [Sample(f"mlflow.latency_p{p}_ms", round(1000 * _percentile(ordered, p), 1), {"route": route})
                    for p in PERCENTILES]
        if len(ordered) >= MIN_REQUESTS_FOR_PERCENT:
            errors = classes[route, "5xx"]
            samples.append(Sample("mlflow.server_error_percent", round(100 * errors / len(ordered), 2),
                                  {"route": route}))
    return samples + [Sample("mlflow.login_failures", failures), Sample("mlflow.login_throttled", throttled)]


def units(text: str, role: str, container_memory: str = "") -> list[Sample]:
    """From `systemctl show -p Id -p MemoryCurrent -p NRestarts UNIT...` (blank lines between units) and the
    role's container's `podman stats --format {{.MemUsage}}` ("245.3MB / 1.02GB"). The container unit's own
    MemoryCurrent is podman's client only (the container has a cgroup of its own): not a figure of the server.
    A unit without memory accounting says [not set] or 2^64-1: no memory sample for it."""
    container = f"mlflow-{role}"
    samples = []
    used = CONTAINER_MEMORY.match(container_memory.strip())
    if used:
        number, unit = used.groups()
        samples.append(Sample("mlflow.memory_bytes", round(float(number) * BYTE_UNITS[unit.lower()]),
                              {"process": container}))
    for block in text.strip().split("\n\n"):
        values = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        process = values.get("Id", "").removesuffix(".service")
        if not process:
            continue
        memory = values.get("MemoryCurrent", "")
        if process != container and memory.isdigit() and int(memory) < 2**64 - 1:
            samples.append(Sample("mlflow.memory_bytes", int(memory), {"process": process}))
        if values.get("NRestarts", "").isdigit():
            samples.append(Sample("mlflow.restarts", int(values["NRestarts"]), {"process": process}))
    return samples


# ----------------------------------------------------------------------------------------------------- posting
def metric_data(samples: list[Sample], compartment: str, deployment: str, role: str, when: float) -> list:
    from oci.monitoring.models import Datapoint, MetricDataDetails

    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(when)) + f".{int(when % 1 * 1000):03d}Z"
    return [MetricDataDetails(namespace=NAMESPACE, compartment_id=compartment, name=sample.name,
                              dimensions={"deployment": deployment, "role": role, **sample.dimensions},
                              datapoints=[Datapoint(timestamp=stamp, value=float(sample.value))])
            for sample in samples]


def post(data: list) -> int:
    from oci.monitoring.models import PostMetricDataDetails

    from mlflow_oci import auth

    client, code = auth.monitoring_client(), 0
    for start in range(0, len(data), MAX_STREAMS_A_CALL):
        try:
            answer = client.post_metric_data(PostMetricDataDetails(metric_data=data[start:start + MAX_STREAMS_A_CALL]))
        except Exception as exc:  # the SDK's service and connection errors
            print(f"metrics: OCI Monitoring refused or could not be reached: {auth.first_line(exc)}", file=sys.stderr)
            return 3
        for failed in answer.data.failed_metrics or []:
            print(f"metrics: {failed.metric_data.name}: {failed.message}", file=sys.stderr)
        code = 3 if answer.data.failed_metrics_count else code
    return code


def _settings_missing(env, reads_database: bool, dry_run: bool) -> list[str]:
    needed = ["MLFLOW_METRICS_DEPLOYMENT"] + ([] if dry_run else ["MLFLOW_METRICS_COMPARTMENT_OCID"])
    needed += ["MLFLOW_BACKEND_STORE_URI"] if reads_database else []
    return [name for name in needed if not env.get(name)]


def collect(env, role: str, requests_file: str | None) -> list[Sample]:
    health_url = env.get("MLFLOW_METRICS_HEALTH_URL") or HEALTH_URLS[role]
    samples = tracking(env["MLFLOW_BACKEND_STORE_URI"], health_url) if role == "tracking" else serving(env, health_url)
    samples += disk(env.get("MLFLOW_METRICS_DISK_PATH", "/")) + units(
        env.get("MLFLOW_METRICS_UNITS", ""), role, env.get("MLFLOW_METRICS_CONTAINER_MEMORY", ""))
    if requests_file == "-":
        samples += requests(sys.stdin)
    elif requests_file:
        with open(requests_file, encoding="utf-8", errors="replace") as lines:
            samples += requests(lines)
    return samples


# ------------------------------------------------------------------------------------------------------- main
def one_pass(env, args, request_lines: list[str] | None = None, show=None) -> int:
    """Collects (only `request_lines`' request metrics when given), prints, hands the samples to `show`, posts."""
    samples = requests(request_lines) if request_lines is not None else collect(env, args.role, args.requests)
    print(json.dumps({sample.key: sample.value for sample in samples}, sort_keys=True), flush=True)
    if show:
        show(samples)
    if args.dry_run:
        return 0
    return post(metric_data(samples, env["MLFLOW_METRICS_COMPARTMENT_OCID"], env["MLFLOW_METRICS_DEPLOYMENT"],
                            args.role, time.time()))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="metrics", description=__doc__.split("\n")[0])
    parser.add_argument("--role", choices=ROLES, default="tracking")
    parser.add_argument("--requests", metavar="FILE", help="the proxy's request log lines since the last pass "
                        "(- for standard input)")
    parser.add_argument("--dry-run", action="store_true", help="collect and print; post nothing")
    parser.add_argument("--every", type=int, metavar="SECONDS", help="a pass every SECONDS (at least 10) until "
                        "stopped")
    parser.add_argument("--prometheus-port", type=int, metavar="PORT", help="with --every: serve the last pass "
                        "on GET /metrics")
    parser.add_argument("--requests-syslog", type=int, metavar="PORT", help="with --every: post only the request "
                        "metrics, from nginx's syslog datagrams to 127.0.0.1:PORT")
    args = parser.parse_args(argv)
    if args.every is not None and args.every < 10:
        parser.error("--every must be at least 10 seconds (OCI Monitoring keeps one value a minute)")
    if args.prometheus_port is not None and args.every is None:
        parser.error("--prometheus-port needs --every: one pass would be gone before anything scrapes it")
    if args.every is not None and args.requests:
        parser.error("--requests reads one pass's lines: it does not go with --every")
    if args.requests_syslog is not None and args.every is None:
        parser.error("--requests-syslog needs --every: the datagrams arrive between passes")
    env = os.environ
    requests_only = args.requests_syslog is not None  # the proxy pods' sidecar: no database, no registry
    missing = _settings_missing(env, args.role == "tracking" and not requests_only, args.dry_run)
    if missing:
        print(f"metrics: set {', '.join(missing)}", file=sys.stderr)
        return 2
    if args.role == "serving" and not requests_only:
        from mlflow_oci import secrets

        try:
            resolved = secrets.resolve(dict(env))  # the registry login, into this process only
        except secrets.SecretError as exc:
            print(f"metrics: {exc}", file=sys.stderr)
            return 2
        os.environ.clear()
        os.environ.update(resolved)
    if args.every is None:
        return one_pass(env, args)
    from mlflow_oci import metrics_loop  # the tracking image's (OKE); the serving image runs single passes

    return metrics_loop.run(env, args, one_pass)


if __name__ == "__main__":
    sys.exit(main())
