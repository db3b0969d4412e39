"""What the tracking VM holds and how it is, posted to OCI Monitoring (PostMetricData, with the instance principal)
in the custom namespace `mlflow`, one pass a call:

    python3 -m mlflow_oci.metrics [--dry-run]

Metrics (each with the dimensions `deployment` and `role`):
    mlflow.up                     1 when the tracking server answers /health, else 0
    mlflow.runs, mlflow.experiments, mlflow.registered_models, mlflow.model_versions   counts (active ones)
    mlflow.database_bytes         the MLflow database's data and indexes (information_schema)
    mlflow.disk_used_percent      of the file system that holds MLFLOW_METRICS_DISK_PATH (/)

Settings: MLFLOW_BACKEND_STORE_URI, MLFLOW_METRICS_COMPARTMENT_OCID, MLFLOW_METRICS_DEPLOYMENT (the stack's
name prefix), MLFLOW_METRICS_HEALTH_URL (http://127.0.0.1:5000/health). Prints the values as one JSON line.
Exit codes: 0 posted, 2 bad settings, 3 OCI Monitoring refused some (their messages on stderr) or could not be
reached. A database that does not answer is posted as mlflow.up 0 and no counts, not as an error.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import urllib.request

NAMESPACE = "mlflow"
COUNTS = {
    "mlflow.runs": "SELECT count(*) FROM runs WHERE lifecycle_stage = 'active'",
    "mlflow.experiments": "SELECT count(*) FROM experiments WHERE lifecycle_stage = 'active'",
    "mlflow.registered_models": "SELECT count(*) FROM registered_models",
    "mlflow.model_versions": "SELECT count(*) FROM model_versions WHERE current_stage != 'Deleted_Internal'",
}
DATABASE_BYTES = ("SELECT COALESCE(SUM(data_length + index_length), 0) FROM information_schema.tables "
                  "WHERE table_schema = DATABASE()")


def _up(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - the server's own loopback URL
            return int(answer.status == 200)
    except OSError:
        return 0


def collect(store_uri: str, health_url: str, disk_path: str) -> dict[str, float]:
    import sqlalchemy as sa

    values: dict[str, float] = {"mlflow.up": _up(health_url)}
    usage = shutil.disk_usage(disk_path)
    values["mlflow.disk_used_percent"] = round(100 * usage.used / usage.total, 2)
    engine = sa.create_engine(store_uri, pool_pre_ping=True)
    try:
        with engine.connect() as connection:
            for name, query in COUNTS.items():
                values[name] = connection.scalar(sa.text(query))
            if engine.dialect.name == "mysql":
                values["mlflow.database_bytes"] = int(connection.scalar(sa.text(DATABASE_BYTES)))
    except sa.exc.SQLAlchemyError:
        values["mlflow.up"] = 0  # the server cannot work without its database, whatever /health says
    finally:
        engine.dispose()
    return values


def metric_data(values: dict[str, float], compartment: str, deployment: str, role: str, when: float) -> list:
    from oci.monitoring.models import Datapoint, MetricDataDetails

    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(when)) + f".{int(when % 1 * 1000):03d}Z"
    return [MetricDataDetails(namespace=NAMESPACE, compartment_id=compartment, name=name,
                              dimensions={"deployment": deployment, "role": role},
                              datapoints=[Datapoint(timestamp=stamp, value=float(value))])
            for name, value in sorted(values.items())]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="metrics", description=__doc__.split("\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="collect and print; post nothing")
    args = parser.parse_args(argv)
    env = os.environ
    missing = [name for name in ("MLFLOW_BACKEND_STORE_URI", "MLFLOW_METRICS_COMPARTMENT_OCID",
                                 "MLFLOW_METRICS_DEPLOYMENT") if not env.get(name)]
    if missing and not (args.dry_run and missing == ["MLFLOW_METRICS_COMPARTMENT_OCID"]):
        print(f"metrics: set {', '.join(missing)}", file=sys.stderr)
        return 2
    values = collect(env["MLFLOW_BACKEND_STORE_URI"], env.get("MLFLOW_METRICS_HEALTH_URL", "http://127.0.0.1:5000/health"),
                     env.get("MLFLOW_METRICS_DISK_PATH", "/"))
    print(json.dumps(values, sort_keys=True))
    if args.dry_run:
        return 0
    from oci.monitoring.models import PostMetricDataDetails

    from mlflow_oci import auth

    data = metric_data(values, env["MLFLOW_METRICS_COMPARTMENT_OCID"], env["MLFLOW_METRICS_DEPLOYMENT"], "tracking",
                       time.time())
    try:
        answer = auth.monitoring_client().post_metric_data(PostMetricDataDetails(metric_data=data)).data
    except Exception as exc:  # the SDK's service and connection errors
        print(f"metrics: OCI Monitoring refused or could not be reached: {auth.first_line(exc)}", file=sys.stderr)
        return 3
    for failed in answer.failed_metrics or []:
        print(f"metrics: {failed.metric_data.name}: {failed.message}", file=sys.stderr)
    return 3 if answer.failed_metrics_count else 0


if __name__ == "__main__":
    sys.exit(main())
