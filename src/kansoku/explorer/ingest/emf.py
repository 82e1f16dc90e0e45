"""CloudWatch embedded metric format (EMF) in, metric points and a log record out.

An EMF document is one JSON object on one line: its `_aws` member says which of its
other members are metrics (`CloudWatchMetrics[].Metrics[]`: name and unit) and which
are dimensions (`Dimensions`: lists of member names); every other member is a property
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).
The CloudWatch agent takes it on port 25888, TCP (one document a line) or UDP; so does
the explorer (`KANSOKU_EXPLORER_EMF_PORT`).

Each metric of each directive becomes one point of the metric store, at `_aws.Timestamp`:

- the service is the `ServiceName` dimension (aws-embedded-metrics sets it), else the
  log group, else `unknown_service`;
- its attributes are the values of the directive's dimensions, and `cloudwatch.namespace`;
- EMF says nothing of a metric's kind (CloudWatch keeps the values and computes
  statistics): values in a unit of time become a summary (their count and sum), counts
  a delta sum (what this document counted), anything else a gauge (the last value);
- the unit is UCUM where the two agree (Seconds → s, Bytes → By, Count → {count}, …).

The document is also a log record (in CloudWatch it is one, in the log group): the
properties are its attributes, and a `traceId` property (X-Ray's form or 32 hex digits)
links it to its trace.
"""

from __future__ import annotations

import json
import math
from typing import Any

from kansoku.explorer.ingest import xray
from kansoku.explorer.ingest.documents import BadDocument, json_object
from kansoku.explorer.ingest.otlp import UNKNOWN_SERVICE
from kansoku.explorer.metrics.models import MetricKind, Temporality
from kansoku.explorer.store import LOGS, METRIC_POINTS, Rows
from kansoku.kit import semconv

#: CloudWatch's units in UCUM, as OpenTelemetry writes them.
UCUM = {"Seconds": "s", "Milliseconds": "ms", "Microseconds": "us", "Bytes": "By",
        "Kilobytes": "kBy", "Megabytes": "MBy", "Gigabytes": "GBy", "Terabytes": "TBy",
        "Bits": "bit", "Kilobits": "kbit", "Megabits": "Mbit", "Gigabits": "Gbit",
        "Terabits": "Tbit", "Percent": "%", "Count": "{count}", "Bytes/Second": "By/s",
        "Kilobytes/Second": "kBy/s", "Megabytes/Second": "MBy/s",
        "Gigabytes/Second": "GBy/s", "Terabytes/Second": "TBy/s", "Bits/Second": "bit/s",
        "Kilobits/Second": "kbit/s", "Megabits/Second": "Mbit/s",
        "Gigabits/Second": "Gbit/s", "Terabits/Second": "Tbit/s", "Count/Second": "{count}/s",
        "None": ""}
_TIME_UNITS = frozenset({"Seconds", "Milliseconds", "Microseconds"})
_SERVICE_DIMENSION = "ServiceName"
#: The property the X-Ray approach writes the request's trace id to.
TRACE_ID_PROPERTY = "traceId"
_NAMESPACE_ATTRIBUTE = "cloudwatch.namespace"
_INFO = 9  # OpenTelemetry's severity number for INFO


def _values(value: Any) -> list[float]:
    items = value if isinstance(value, list) else [value]
    numbers = [float(item) for item in items
               if isinstance(item, int | float) and not isinstance(item, bool)]
    if len(numbers) != len(items) or not numbers or not all(map(math.isfinite, numbers)):
        raise BadDocument("a metric's value is not a number or a list of numbers")
    return numbers


def _trace_id(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return xray.trace_id_of(value)
    except BadDocument:
        text = value.lower()
        return text if len(text) == 32 and all(c in "0123456789abcdef" for c in text) else None


def decode(line: bytes) -> tuple[Rows, Rows]:
    """The metric points and the log record of one EMF document."""
    document = json_object(line, "the line")
    meta = document.get("_aws")
    if not isinstance(meta, dict) or not isinstance(meta.get("CloudWatchMetrics"), list):
        raise BadDocument("no _aws.CloudWatchMetrics")
    timestamp = meta.get("Timestamp")
    if not isinstance(timestamp, int) or isinstance(timestamp, bool) or timestamp < 0:
        raise BadDocument("_aws.Timestamp is not epoch milliseconds")
    time_ns = timestamp * 1_000_000
    if time_ns >= 2**63:
        raise BadDocument("_aws.Timestamp is past the year 2262")
    service = str(document.get(_SERVICE_DIMENSION) or meta.get("LogGroupName")
                  or UNKNOWN_SERVICE)
    metrics = Rows(METRIC_POINTS)
    metric_names: set[str] = set()
    for directive in meta["CloudWatchMetrics"]:
        if not isinstance(directive, dict) or not isinstance(directive.get("Metrics"), list):
            raise BadDocument("a directive has no Metrics")
        attributes: dict[str, Any] = {}
        for dimension_set in directive.get("Dimensions") or ():
            for key in dimension_set if isinstance(dimension_set, list) else ():
                if key in document:
                    attributes[str(key)] = str(document[key])
        if namespace := directive.get("Namespace"):
            attributes[_NAMESPACE_ATTRIBUTE] = str(namespace)
        attributes_json = json.dumps(attributes, separators=(",", ":")) if attributes else None
        for metric in directive["Metrics"]:
            name = metric.get("Name") if isinstance(metric, dict) else None
            if not isinstance(name, str) or name not in document:
                raise BadDocument("a metric has no Name or no value")
            metric_names.add(name)
            values = _values(document[name])
            unit = str(metric.get("Unit") or "None")
            kind: MetricKind = MetricKind.GAUGE
            value: float | None = values[-1]
            count: int | None = None
            total: float | None = None
            if unit in _TIME_UNITS:
                kind, value, count, total = MetricKind.SUMMARY, None, len(values), sum(values)
            elif unit == "Count":
                kind, value = MetricKind.SUM, sum(values)
            metrics.add(METRIC_POINTS.row(
                time_ns=time_ns, service=service, name=name, kind=kind,
                unit=UCUM.get(unit, unit), attributes=attributes_json, value=value,
                count=count, sum=total, bucket_counts=None, bounds=None,
                temporality=Temporality.DELTA if kind != MetricKind.GAUGE
                else Temporality.UNSPECIFIED,
                monotonic=kind == MetricKind.SUM and all(v >= 0 for v in values)))
    properties = {key: value for key, value in document.items()
                  if key != "_aws" and key not in metric_names}
    properties[semconv.TELEMETRY_SOURCE] = "emf"
    logs = Rows(LOGS)
    logs.add(LOGS.row(
        time_ns=time_ns, service=service, severity_number=_INFO, severity="INFO",
        body=line.decode("utf-8", "replace").strip(),
        trace_id=_trace_id(document.get(TRACE_ID_PROPERTY)), span_id=None,
        attributes=json.dumps(properties, separators=(",", ":"), default=str),
        resource=json.dumps({semconv.SERVICE_NAME: service}, separators=(",", ":"))))
    return metrics, logs
