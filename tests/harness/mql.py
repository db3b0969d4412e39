"""A small subset of OCI Monitoring's query language (MQL), enough to evaluate the stack's alarm queries against the
datapoints a fake of PostMetricData accepted (tests/ocifakes):

    metric[interval]{dimension = "value", ...}.statistic() comparison number
    metric[interval]{dimension = "value", ...}.absent()
    metric[interval]{dimension = "value", ...}.groupBy(dimension).statistic()     (a query to summarize)

`interval` in minutes or hours (1m, 5m, 1h); statistics max, min, mean, sum, count; comparisons > >= < <= == !=.
The syntax is Monitoring's ("Monitoring Query Language (MQL) Reference": metric, interval in brackets, dimension
filters in braces, a statistic, an optional alarm condition; "Using groupBy(x) in a Query": the statistic over all
the streams of each value of the dimension, one line a value); anything else is refused, so a query the stack writes
outside this subset fails its test instead of passing unchecked."""
from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from datetime import datetime, timezone

QUERY = re.compile(r"^(?P<metric>[A-Za-z][A-Za-z0-9._$-]*)\[(?P<amount>\d+)(?P<unit>[mh])\]"
                   r"(?:\{(?P<filters>[^}]*)\})?(?:\.groupBy\((?P<group>[A-Za-z][A-Za-z0-9_]*)\))?\.(?P<function>max|min|mean|sum|count|absent)\(\)"
                   r"(?:\s*(?P<op>>=|<=|==|!=|>|<)\s*(?P<threshold>-?\d+(?:\.\d+)?))?$")
FILTER = re.compile(r'^\s*(?P<key>[!-~]+?)\s*=\s*"(?P<value>[^"]*)"\s*$')
COMPARE = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq,
           "!=": operator.ne}
STATISTICS = {"max": max, "min": min, "sum": sum, "count": len, "mean": lambda values: sum(values) / len(values)}


@dataclass(frozen=True)
class Query:
    metric: str
    seconds: int
    filters: dict
    function: str
    op: str | None
    threshold: float | None
    group: str | None = None

    @classmethod
    def parse(cls, text: str, alarm: bool = True) -> Query:
        """An alarm's query (a condition, or absent()); with alarm=False a query SummarizeMetricsData takes, which
        has no condition."""
        match = QUERY.match(text.strip())
        if not match:
            raise ValueError(f"not in the MQL subset: {text}")
        filters = {}
        for part in filter(None, (match["filters"] or "").split(",")):
            found = FILTER.match(part)
            if not found:
                raise ValueError(f"not a dimension filter: {part!r} in {text}")
            filters[found["key"]] = found["value"]
        if alarm and (match["function"] == "absent") != (match["op"] is None):
            raise ValueError(f"an alarm needs a condition, and absent() takes none: {text}")
        if alarm and match["group"]:
            raise ValueError(f"groupBy in an alarm is outside this subset: {text}")
        if not alarm and (match["op"] is not None or match["function"] == "absent"):
            raise ValueError(f"a query to summarize takes a statistic and no condition: {text}")
        seconds = int(match["amount"]) * (60 if match["unit"] == "m" else 3600)
        threshold = float(match["threshold"]) if match["threshold"] is not None else None
        return cls(match["metric"], seconds, filters, match["function"], match["op"], threshold, match["group"])

    def fires(self, metrics: list[dict], now: float) -> bool:
        """Whether the alarm condition holds at `now` over PostMetricData's metricData entries."""
        values = [point["value"] for metric in metrics if metric["name"] == self.metric
                  and all(metric["dimensions"].get(k) == v for k, v in self.filters.items())
                  for point in metric["datapoints"]
                  if now - self.seconds <= datetime.fromisoformat(point["timestamp"].replace("Z", "+00:00")).timestamp() <= now]
        if self.function == "absent":
            return not values
        return bool(values) and COMPARE[self.op](STATISTICS[self.function](values), self.threshold)

    def series(self, metrics: list[dict], start: float, end: float) -> list[dict]:
        """What SummarizeMetricsData answers for the query between start and end: one entry a stream (a set of
        dimensions) with its datapoints aggregated by the query's interval, each stamped with its window's start."""
        streams: dict[tuple, dict] = {}
        for metric in metrics:
            if metric["name"] != self.metric or any(metric["dimensions"].get(k) != v for k, v in self.filters.items()):
                continue
            dimensions = ({self.group: metric["dimensions"].get(self.group)} if self.group
                          else metric["dimensions"])
            stream = streams.setdefault(tuple(sorted(dimensions.items())),
                                        {"metric": metric, "dimensions": dimensions, "windows": {}})
            for point in metric["datapoints"]:
                when = datetime.fromisoformat(point["timestamp"].replace("Z", "+00:00")).timestamp()
                if start <= when < end:
                    stream["windows"].setdefault(int(when // self.seconds) * self.seconds, []).append(point["value"])
        answer = []
        for stream in streams.values():
            metric = stream["metric"]
            points = [{"timestamp": datetime.fromtimestamp(window, timezone.utc).isoformat().replace("+00:00", "Z"),
                       "value": STATISTICS[self.function](values)} for window, values in sorted(stream["windows"].items())]
            if points:
                answer.append({"namespace": metric["namespace"], "compartmentId": metric["compartmentId"],
                               "name": metric["name"], "dimensions": stream["dimensions"], "metadata": {},
                               "resolution": None, "aggregatedDatapoints": points})
        return answer
