"""OTLP in, rows out: decoding export requests (protobuf or JSON) into the columns the
store keeps.

Everything here is plain, synchronous work on one request; the receiver runs it off the
event loop. A record that cannot be stored (a trace id of the wrong length, say) is
counted as rejected, not fatal: OTLP's partial success tells the sender how many.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from kansoku.kit import semconv

SPAN_KINDS = ("unspecified", "internal", "server", "client", "producer", "consumer")
STATUS_CODES = ("unset", "ok", "error")
_TEMPORALITIES = ("unspecified", "delta", "cumulative")
UNKNOWN_SERVICE = "unknown_service"

#: Span attributes copied into their own columns, so the common questions (RED per
#: route, the service map, a user's traces, slow statements) need no JSON parsing.
_ROUTE_KEYS = (semconv.HTTP_ROUTE, "http.target", semconv.URL_PATH)
_STATUS_KEYS = (semconv.HTTP_RESPONSE_STATUS_CODE, "http.status_code")
_STATEMENT_KEYS = ("db.statement", "db.query.text")
_DESTINATION_KEYS = (semconv.MESSAGING_DESTINATION, "messaging.destination")

#: Columns of each table, in order (the store creates the tables with these).
SPAN_COLUMNS = ("trace_id", "span_id", "parent_span_id", "service", "name", "kind",
                "start_ns", "duration_ns", "status", "status_message", "route",
                "http_status", "user_id", "db_system", "db_statement", "peer_service",
                "messaging_destination", "attributes", "resource", "events", "links")
LOG_COLUMNS = ("time_ns", "service", "severity_number", "severity", "body", "trace_id",
               "span_id", "attributes", "resource")
METRIC_COLUMNS = ("time_ns", "service", "name", "kind", "unit", "attributes", "value",
                  "count", "sum", "bucket_counts", "bounds", "temporality", "monotonic")


#: Times are kept as signed 64-bit nanoseconds.
_MAX_TIME_NS = 2**63

class MalformedPayload(ValueError):
    """The body is not an OTLP export request of the kind the path says."""


@dataclass
class Rows:
    """Decoded records, column by column, ready for one columnar insert."""

    table: str
    columns: tuple[str, ...]
    values: list[list[Any]] = field(default_factory=list)
    rejected: int = 0
    error: str = ""

    def __post_init__(self) -> None:
        self.values = [[] for _ in self.columns]

    def add(self, row: Iterable[Any]) -> None:
        for column, value in zip(self.values, row, strict=True):
            column.append(value)

    def __len__(self) -> int:
        return len(self.values[0]) if self.values else 0


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
    # The hot loop of decoding (a span has ten or so): strings and ints, nearly all of
    # them, are read without the general case's extra calls.
    found = {}
    for pair in pairs:
        value = pair.value
        kind = value.WhichOneof("value")
        if kind == "string_value":
            found[pair.key] = value.string_value
        elif kind == "int_value":
            found[pair.key] = value.int_value
        else:
            found[pair.key] = any_value(value)
    return found


def _first(found: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in found:
            return found[key]
    return None


#: json.dumps with these arguments builds a new encoder on every call; one is enough.
_encode = json.JSONEncoder(separators=(",", ":"), default=str).encode


def _dumps(value: Any) -> str | None:
    return _encode(value) if value else None


def _http_status(value: Any) -> int | None:
    if type(value) is int:  # not bool
        return value if value >= 0 else None
    return int(value) if isinstance(value, str) and value.isdigit() else None


# --- parsing ------------------------------------------------------------------------

_HEX_ID_FIELDS = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id",
                            "parent_span_id"})


def _hex_ids_to_base64(node: Any) -> Any:
    """OTLP/JSON writes trace and span ids as hex, where protobuf's JSON mapping expects
    base64: convert them before parsing."""
    if isinstance(node, dict):
        converted = {}
        for key, value in node.items():
            if key in _HEX_ID_FIELDS and isinstance(value, str):
                try:
                    value = base64.b64encode(bytes.fromhex(value)).decode()
                except ValueError as exc:
                    raise MalformedPayload(f"{key} '{value[:40]}' is not hex") from exc
            else:
                value = _hex_ids_to_base64(value)
            converted[key] = value
        return converted
    if isinstance(node, list):
        return [_hex_ids_to_base64(item) for item in node]
    return node


def parse(body: bytes, message: Message, *, json_body: bool) -> None:
    """Fill `message` from an OTLP/HTTP body, protobuf or JSON."""
    try:
        if json_body:
            document = json.loads(body)
            json_format.ParseDict(_hex_ids_to_base64(document), message,
                                  ignore_unknown_fields=True)
        else:
            message.ParseFromString(body)
    except (DecodeError, json_format.ParseError, ValueError, RecursionError,
            UnicodeDecodeError) as exc:
        raise MalformedPayload(str(exc)[:300] or type(exc).__name__) from exc


# --- traces -------------------------------------------------------------------------


def span_rows(request: ExportTraceServiceRequest) -> Rows:
    rows = Rows("spans", SPAN_COLUMNS)
    # One append per column per span, bound once: this loop is the receiver's cost.
    (trace_ids, span_ids, parent_span_ids, services, names, kinds, starts, durations,
     statuses, status_messages, routes, http_statuses, user_ids, db_systems, db_statements,
     peer_services, destinations, attributes_json, resources, events_json, links_json,
     ) = (column.append for column in rows.values)
    kind_names, code_names = SPAN_KINDS, STATUS_CODES
    kind_count, code_count = len(SPAN_KINDS), len(STATUS_CODES)
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        service = str(resource.get(semconv.SERVICE_NAME) or UNKNOWN_SERVICE)
        resource_json = _dumps(resource)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                trace_id, span_id = span.trace_id, span.span_id
                if len(trace_id) != 16 or len(span_id) != 8:
                    rows.rejected += 1
                    rows.error = "spans need a 16-byte trace id and an 8-byte span id"
                    continue
                start, end = span.start_time_unix_nano, span.end_time_unix_nano
                if start >= _MAX_TIME_NS or end >= _MAX_TIME_NS:
                    # Past what a signed 64-bit column holds (year 2262): storing it
                    # would fail the whole commit, other senders' rows included.
                    rows.rejected += 1
                    rows.error = "span times must be before the year 2262"
                    continue
                found = attributes(span.attributes)
                get = found.get
                kind, status = span.kind, span.status
                code = status.code
                trace_ids(trace_id.hex())
                span_ids(span_id.hex())
                parent_span_ids(span.parent_span_id.hex() or None)
                services(service)
                names(span.name)
                kinds(kind_names[kind] if 0 <= kind < kind_count else kind_names[0])
                starts(start)
                durations(end - start if end > start else 0)
                statuses(code_names[code] if 0 <= code < code_count else code_names[0])
                status_messages(status.message or None)
                routes(_first(found, _ROUTE_KEYS) if found else None)
                http_statuses(_http_status(_first(found, _STATUS_KEYS)) if found else None)
                user_ids(get(semconv.ENDUSER_ID))
                db_systems(get("db.system"))
                db_statements(_first(found, _STATEMENT_KEYS) if found else None)
                peer_services(get(semconv.PEER_SERVICE))
                destinations(_first(found, _DESTINATION_KEYS) if found else None)
                attributes_json(_encode(found) if found else None)
                resources(resource_json)
                events_json(_dumps([
                    {"time_ns": event.time_unix_nano, "name": event.name,
                     "attributes": attributes(event.attributes)}
                    for event in span.events]) if span.events else None)
                links_json(_dumps([
                    {"trace_id": link.trace_id.hex(), "span_id": link.span_id.hex(),
                     "attributes": attributes(link.attributes)}
                    for link in span.links]) if span.links else None)
    return rows


# --- logs ---------------------------------------------------------------------------


def log_rows(request: ExportLogsServiceRequest) -> Rows:
    rows = Rows("logs", LOG_COLUMNS)
    for resource_logs in request.resource_logs:
        resource = attributes(resource_logs.resource.attributes)
        service = str(resource.get(semconv.SERVICE_NAME) or UNKNOWN_SERVICE)
        resource_json = _dumps(resource)
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                body = any_value(record.body)
                rows.add((
                    record.time_unix_nano or record.observed_time_unix_nano, service,
                    record.severity_number, record.severity_text or None,
                    body if isinstance(body, str) else json.dumps(body, default=str),
                    record.trace_id.hex() or None, record.span_id.hex() or None,
                    _dumps(attributes(record.attributes)), resource_json,
                ))
    return rows


# --- metrics ------------------------------------------------------------------------


def metric_rows(request: ExportMetricsServiceRequest) -> Rows:
    rows = Rows("metric_points", METRIC_COLUMNS)
    for resource_metrics in request.resource_metrics:
        resource = attributes(resource_metrics.resource.attributes)
        service = str(resource.get(semconv.SERVICE_NAME) or UNKNOWN_SERVICE)
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                if kind is None:
                    continue
                data = getattr(metric, kind)
                temporality = _TEMPORALITIES[getattr(data, "aggregation_temporality", 0) % 3]
                monotonic = bool(getattr(data, "is_monotonic", False))
                for point in data.data_points:
                    value: float | None = None
                    count = total = None
                    buckets: list[int] | None = None
                    bounds: list[float] | None = None
                    if kind in ("sum", "gauge"):
                        number = point.WhichOneof("value")
                        value = float(getattr(point, number)) if number else None
                    elif kind == "histogram":
                        count, total = point.count, point.sum
                        buckets, bounds = list(point.bucket_counts), list(point.explicit_bounds)
                    elif kind in ("exponential_histogram", "summary"):
                        count, total = point.count, point.sum
                    rows.add((point.time_unix_nano, service, metric.name, kind, metric.unit,
                              _dumps(attributes(point.attributes)), value, count, total,
                              buckets, bounds, temporality, monotonic))
    return rows
