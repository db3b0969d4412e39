"""Monitoring's read call, SummarizeMetricsData (`POST /20180401/metrics/actions/summarizeMetricsData`), beside the
Resource Manager fake, on the same loopback server and signature check: what `orm-pack status --health` reads with
the user's own key. The metrics are what the VMs posted (PostMetricData's metricData entries; tests/ocifakes takes
those posts), given to the fake by the test.

Rules of the real API it keeps (Monitoring API reference, SummarizeMetricsData, SummarizeMetricsDataDetails):
- compartmentId is a query parameter and required (400 InvalidParameter without it); namespace, query, startTime
  and endTime come in the body, startTime before endTime;
- the query is MQL, evaluated here in the subset of harness/mql.py (anything else: 400 InvalidParameter);
- the answer is a list of MetricData, one per stream (metric name and dimensions) that has datapoints in the range,
  each with aggregatedDatapoints {timestamp, value} by the query's interval; none found is an empty list.
"""
from __future__ import annotations

from datetime import datetime

from harness.mql import Query

PATH = "/20180401/metrics/actions/summarizeMetricsData"


class MonitoringError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def is_monitoring(path: str) -> bool:
    return path.startswith("/20180401/metrics")


def _time(text, name: str) -> float:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise MonitoringError(400, "InvalidParameter", f"{name} is not an RFC 3339 date and time: {text}") from None


def handle(metrics: list[dict], method: str, path: str, query: dict, body: dict) -> list[dict]:
    if method != "POST" or path != PATH:
        raise MonitoringError(404, "NotAuthorizedOrNotFound", f"no such Monitoring call: {method} {path}")
    compartment = query.get("compartmentId")
    if not compartment:
        raise MonitoringError(400, "InvalidParameter", "compartmentId is required")
    missing = [name for name in ("namespace", "query", "startTime", "endTime") if not body.get(name)]
    if missing:
        raise MonitoringError(400, "InvalidParameter", f"{', '.join(missing)} required")
    start, end = _time(body["startTime"], "startTime"), _time(body["endTime"], "endTime")
    if start >= end:
        raise MonitoringError(400, "InvalidParameter", "startTime must be before endTime")
    try:
        parsed = Query.parse(body["query"], alarm=False)
    except ValueError as exc:
        raise MonitoringError(400, "InvalidParameter", f"Invalid query: {exc}") from None
    scoped = [m for m in metrics if m["compartmentId"] == compartment and m["namespace"] == body["namespace"]]
    return parsed.series(scoped, start, end)
