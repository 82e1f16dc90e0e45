"""Recent telemetry, in memory: spans grouped by trace, and counts of everything else."""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from kansoku.kit import semconv

_SPAN_KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer",
               5: "consumer"}
_STATUS_CODES = {0: "unset", 1: "ok", 2: "error"}


def any_value(value: AnyValue) -> Any:
    """An OTLP attribute value as plain Python."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind)


def attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: any_value(pair.value) for pair in pairs if isinstance(pair, KeyValue)}


@dataclass
class TelemetryStore:
    max_spans: int
    traces: OrderedDict[str, list[dict[str, Any]]] = field(default_factory=OrderedDict)
    span_count: int = 0
    received: Counter[str] = field(default_factory=Counter)
    services: set[str] = field(default_factory=set)

    def add_traces(self, request: ExportTraceServiceRequest) -> int:
        added = 0
        for resource_spans in request.resource_spans:
            resource = attributes(resource_spans.resource.attributes)
            service = str(resource.get(semconv.SERVICE_NAME, "unknown_service"))
            self.services.add(service)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    trace_id = span.trace_id.hex()
                    self.traces.setdefault(trace_id, []).append({
                        "trace_id": trace_id,
                        "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex() or None,
                        "name": span.name,
                        "kind": _SPAN_KINDS.get(span.kind, "unspecified"),
                        "service": service,
                        "start_unix_nano": span.start_time_unix_nano,
                        "duration_ms": (span.end_time_unix_nano - span.start_time_unix_nano)
                        / 1e6,
                        "status": _STATUS_CODES.get(span.status.code, "unset"),
                        "attributes": attributes(span.attributes),
                    })
                    self.traces.move_to_end(trace_id)
                    added += 1
        self.span_count += added
        self.received["spans"] += added
        while self.span_count > self.max_spans and self.traces:
            _, dropped = self.traces.popitem(last=False)
            self.span_count -= len(dropped)
        return added

    def add_metrics(self, request: ExportMetricsServiceRequest) -> int:
        points = 0
        for resource_metrics in request.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    data = getattr(metric, metric.WhichOneof("data") or "gauge")
                    points += len(data.data_points)
        self.received["metric_points"] += points
        return points

    def add_logs(self, request: ExportLogsServiceRequest) -> int:
        records = sum(len(scope.log_records) for resource in request.resource_logs
                      for scope in resource.scope_logs)
        self.received["log_records"] += records
        return records

    def trace(self, trace_id: str) -> list[dict[str, Any]]:
        return sorted(self.traces.get(trace_id.lower(), []),
                      key=lambda span: span["start_unix_nano"])
