"""The deployment's health as OCI Monitoring has it: the metrics its VMs post every minute (namespace `mlflow`,
docker/lib/mlflow_oci/metrics.py), read with the user's own key (SummarizeMetricsData), the same figures the
stack's alarms watch (stack/alarms.tf). What `orm-pack status --health` shows."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from orm_pack.cloud import ociconfig
from orm_pack.errors import ExitCode, UserError

NAMESPACE = "mlflow"
DEFAULT_NAME_PREFIX = "mlflow"  # stack/variables.tf's default for name_prefix
# metric -> the statistic of a minute that says the most about it
STATISTICS = {
    "mlflow.up": "min",
    "mlflow.runs": "max",
    "mlflow.experiments": "max",
    "mlflow.registered_models": "max",
    "mlflow.model_versions": "max",
    "mlflow.database_bytes": "max",
    "mlflow.disk_used_percent": "max",
    "mlflow.requests": "sum",
    "mlflow.latency_p95_ms": "max",
    "mlflow.server_error_percent": "max",
    "mlflow.login_failures": "sum",
    "mlflow.login_throttled": "sum",
    "mlflow.memory_bytes": "max",
    "mlflow.restarts": "max",
    "mlflow.served_model_version": "max",
    "mlflow.serving_follows_alias": "min",
}
# the alarms' thresholds (stack/alarms.tf)
ERROR_PERCENT_LIMIT = 5
DISK_PERCENT_LIMIT = 80


@dataclass(frozen=True)
class Reading:
    metric: str
    role: str
    detail: str          # the dimensions beyond deployment and role, e.g. "route=api status=5xx"
    value: float
    at: datetime         # the start of the minute it sums up


@dataclass
class Health:
    deployment: str
    minutes: int
    readings: list[Reading] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems


def _latest(series) -> tuple[float, datetime] | None:
    points = sorted(series.aggregated_datapoints or [], key=lambda point: point.timestamp)
    return (points[-1].value, points[-1].timestamp) if points else None


def read(context: ociconfig.OciContext, compartment: str, deployment: str, minutes: int = 10,
         endpoint: str | None = None, now: datetime | None = None) -> Health:
    """The latest minute of each metric stream of `deployment` posted in the last `minutes`."""
    import oci
    from oci.monitoring.models import SummarizeMetricsDataDetails

    client = ociconfig.client("monitoring", context, ociconfig.retry_strategy(3), endpoint)
    end = now or datetime.now(timezone.utc)
    start = end - timedelta(minutes=minutes)
    health = Health(deployment, minutes)
    for metric, statistic in STATISTICS.items():
        details = SummarizeMetricsDataDetails(namespace=NAMESPACE, start_time=start, end_time=end,
                                              query=f'{metric}[1m]{{deployment = "{deployment}"}}.{statistic}()')
        try:
            answer = client.summarize_metrics_data(compartment, details).data
        except oci.exceptions.ServiceError as exc:
            hint = (" (ask an administrator for 'read metrics' in the compartment)" if exc.status in (401, 403, 404)
                    else "")
            raise UserError(f"OCI Monitoring refused to read {metric}: {exc.status} {exc.code}: {exc.message}{hint}",
                            ExitCode.SERVICE if exc.status >= 500 or exc.status == 429 else ExitCode.CONFIG) from None
        for series in answer:
            latest = _latest(series)
            if latest is None:
                continue
            dimensions = dict(series.dimensions or {})
            role = dimensions.pop("role", "")
            dimensions.pop("deployment", None)
            detail = " ".join(f"{k}={v}" for k, v in sorted(dimensions.items()))
            health.readings.append(Reading(metric, role, detail, latest[0], latest[1]))
    health.problems = problems(health)
    return health


def problems(health: Health) -> list[str]:
    """What the alarms would say, in the terms of this reading."""
    found = []
    by_metric: dict[str, list[Reading]] = {}
    for reading in health.readings:
        by_metric.setdefault(reading.metric, []).append(reading)
    tracking_up = [r for r in by_metric.get("mlflow.up", []) if r.role == "tracking"]
    if not tracking_up:
        found.append(f"the tracking VM posted no metrics in the last {health.minutes} minutes: it is stopped, "
                     "unreachable or its mlflow-metrics timer fails")
    elif tracking_up[0].value < 1:
        found.append("the tracking server does not answer or cannot reach its database (orm-pack doctor tells which)")
    found += [f"{r.value:g} % of the {r.detail or 'requests'} answered 5xx ({r.role} VM)"
              for r in by_metric.get("mlflow.server_error_percent", []) if r.value > ERROR_PERCENT_LIMIT]
    found += [f"the {r.role} VM's disk is {r.value:g} % full"
              for r in by_metric.get("mlflow.disk_used_percent", []) if r.value > DISK_PERCENT_LIMIT]
    found += ["the model endpoint does not serve the version its alias names (journalctl -u mlflow-serving)"
              for r in by_metric.get("mlflow.serving_follows_alias", []) if r.value < 1]
    return found


def document(health: Health) -> dict:
    return {"deployment": health.deployment, "minutes": health.minutes, "healthy": health.healthy,
            "problems": health.problems,
            "readings": [{"metric": r.metric, "role": r.role, "detail": r.detail, "value": r.value,
                          "at": r.at.isoformat()} for r in health.readings]}
