"""OTLP in, rows out: decoding export requests (protobuf or JSON) into the columns the
store declares (`store.SPANS`, `LOGS`, `METRIC_POINTS`).

Everything here is plain, synchronous work on one request; the receiver runs it off the
event loop. A record that cannot be stored (a trace id of the wrong length, say) is
counted as rejected, not fatal: OTLP's partial success tells the sender how many.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from typing import Any

import orjson
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from kansoku.explorer.common.spans import (
    INVALID_SPAN_ID,
    INVALID_TRACE_ID,
    SpanKind,
    SpanStatus,
)
from kansoku.explorer.metrics.models import MetricKind, Temporality
from kansoku.explorer.store import LOGS, METRIC_POINTS, SPANS, Rows, Table
from kansoku.kit import semconv
from kansoku.kit.approaches import Instrumentation

#: OTLP's enums by number, as the store keeps them: the plain strings, which Arrow
#: converts twice as fast as the StrEnum members.
SPAN_KINDS = tuple(kind.value for kind in SpanKind)
STATUS_CODES = tuple(status.value for status in SpanStatus)
_TEMPORALITIES = tuple(temporality.value for temporality in Temporality)
UNKNOWN_SERVICE = "unknown_service"
#: `telemetry.source` of the spans that arrive over OTLP (docs/approaches.md).
OTLP_SOURCE = Instrumentation.OTEL.value

#: Span attributes copied into their own columns, so the common questions (RED per
#: route, the service map, a user's traces, slow statements) need no JSON parsing.
_ROUTE_KEYS = (semconv.HTTP_ROUTE, "http.target", semconv.URL_PATH)
_STATUS_KEYS = (semconv.HTTP_RESPONSE_STATUS_CODE, "http.status_code")
_STATEMENT_KEYS = ("db.statement", "db.query.text")
_DESTINATION_KEYS = (semconv.MESSAGING_DESTINATION, "messaging.destination")

#: Times are kept as signed 64-bit nanoseconds.
_MAX_TIME_NS = 2**63


class MalformedPayload(ValueError):
    """The body is not an OTLP export request of the kind the path says."""


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


#: The standard encoder, for what orjson refuses (an integer past 64 bits).
_encode_exactly = json.JSONEncoder(separators=(",", ":"), default=str).encode


def _encode(value: Any) -> str:
    """`value` as compact JSON; anything JSON has no type for (bytes) as its str(). The
    receiver's hottest call after parsing: orjson, 18 times the standard encoder's speed
    on a span's attributes. Not-a-number floats become null (the standard encoder's
    NaN is not JSON, and DuckDB's JSON columns refuse it)."""
    try:
        return orjson.dumps(value, default=str).decode()
    except orjson.JSONEncodeError:
        return _encode_exactly(value)


def _dumps(value: Any) -> str | None:
    return _encode(value) if value else None


def _http_status(value: Any) -> int | None:
    if type(value) is int:  # not bool
        return value if value >= 0 else None
    return int(value) if isinstance(value, str) and value.isdigit() else None


# --- parsing ------------------------------------------------------------------------

def parse(body: bytes, message: Message) -> None:
    """Fill `message` from an OTLP/HTTP protobuf body (`json_rows` reads JSON)."""
    try:
        message.ParseFromString(body)
    except (DecodeError, ValueError, RecursionError) as exc:
        raise MalformedPayload(str(exc)[:300] or type(exc).__name__) from exc


# --- traces -------------------------------------------------------------------------


class _SpanColumns:
    """Appends spans to `rows`, one append per column: the receiver's hot loop, shared by
    the protobuf and the JSON decoders (each reads its own form, this does the rest)."""

    def __init__(self, rows: Rows, source: str | None = None) -> None:
        self.rows = rows
        #: The approach that made the spans (`telemetry.source`), set on each span that
        #: does not name one itself; None leaves the attributes as they came.
        self.source = source
        # By name, so the columns' order is the store's declaration alone; a column
        # added there and not here fails the first commit, not silently.
        append = rows.appenders()
        self.trace_ids, self.span_ids = append["trace_id"], append["span_id"]
        self.parent_span_ids, self.services = append["parent_span_id"], append["service"]
        self.names, self.kinds = append["name"], append["kind"]
        self.starts, self.durations = append["start_ns"], append["duration_ns"]
        self.statuses, self.status_messages = append["status"], append["status_message"]
        self.routes, self.http_statuses = append["route"], append["http_status"]
        self.user_ids, self.db_systems = append["user_id"], append["db_system"]
        self.db_statements, self.peer_services = append["db_statement"], append["peer_service"]
        self.destinations = append["messaging_destination"]
        self.attributes_json, self.resources = append["attributes"], append["resource"]
        self.events_json, self.links_json = append["events"], append["links"]

    def add(self, service: str, resource_json: str | None, trace_id: str, span_id: str,
            parent_span_id: str | None, name: str, kind: int, start: int, end: int,
            code: int, status_message: str | None, found: dict[str, Any],
            events: list[dict[str, Any]] | None, links: list[dict[str, Any]] | None) -> None:
        """One span, its ids already hex; rejected (and counted) if it cannot be stored."""
        if len(trace_id) != 32 or len(span_id) != 16:
            self.rows.rejected += 1
            self.rows.error = "spans need a 16-byte trace id and an 8-byte span id"
            return
        if trace_id == INVALID_TRACE_ID or span_id == INVALID_SPAN_ID:
            self.rows.rejected += 1
            self.rows.error = "a span's trace id and span id may not be all zeros"
            return
        if start >= _MAX_TIME_NS or end >= _MAX_TIME_NS or start < 0 or end < 0:
            # Past what a signed 64-bit column holds (year 2262): storing it would fail
            # the whole commit, other senders' rows included.
            self.rows.rejected += 1
            self.rows.error = "span times must be before the year 2262"
            return
        if self.source is not None and semconv.TELEMETRY_SOURCE not in found:
            found[semconv.TELEMETRY_SOURCE] = self.source
        get = found.get
        self.trace_ids(trace_id)
        self.span_ids(span_id)
        self.parent_span_ids(parent_span_id or None)
        self.services(service)
        self.names(name)
        self.kinds(SPAN_KINDS[kind] if 0 <= kind < len(SPAN_KINDS) else SPAN_KINDS[0])
        self.starts(start)
        self.durations(end - start if end > start else 0)
        self.statuses(STATUS_CODES[code] if 0 <= code < len(STATUS_CODES) else STATUS_CODES[0])
        self.status_messages(status_message or None)
        self.routes(_first(found, _ROUTE_KEYS) if found else None)
        self.http_statuses(_http_status(_first(found, _STATUS_KEYS)) if found else None)
        self.user_ids(get(semconv.ENDUSER_ID))
        self.db_systems(get("db.system"))
        self.db_statements(_first(found, _STATEMENT_KEYS) if found else None)
        self.peer_services(get(semconv.PEER_SERVICE))
        self.destinations(_first(found, _DESTINATION_KEYS) if found else None)
        self.attributes_json(_encode(found) if found else None)
        self.resources(resource_json)
        self.events_json(_dumps(events))
        self.links_json(_dumps(links))


def _resource(resource: Resource) -> tuple[str, dict[str, Any]]:
    """A protobuf resource's service name (UNKNOWN_SERVICE when it has none) and its
    attributes."""
    found = attributes(resource.attributes)
    return str(found.get(semconv.SERVICE_NAME) or UNKNOWN_SERVICE), found


def span_rows(request: ExportTraceServiceRequest) -> Rows:
    rows = Rows(SPANS)
    add = _SpanColumns(rows, OTLP_SOURCE).add
    for resource_spans in request.resource_spans:
        service, resource = _resource(resource_spans.resource)
        resource_json = _dumps(resource)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                status = span.status
                add(service, resource_json, span.trace_id.hex(), span.span_id.hex(),
                    span.parent_span_id.hex(), span.name, span.kind,
                    span.start_time_unix_nano, span.end_time_unix_nano, status.code,
                    status.message, attributes(span.attributes),
                    [{"time_ns": event.time_unix_nano, "name": event.name,
                      "attributes": attributes(event.attributes)}
                     for event in span.events] if span.events else None,
                    [{"trace_id": link.trace_id.hex(), "span_id": link.span_id.hex(),
                      "attributes": attributes(link.attributes)}
                     for link in span.links] if span.links else None)
    return rows


# --- logs ---------------------------------------------------------------------------


def _log_context_id(value: str) -> str | None:
    """A log record's trace or span id, or None when it has none: empty, or all zeros
    (OpenTelemetry's invalid id, which some senders write for "no context")."""
    return value if value.strip("0") else None


def _body_text(body: Any) -> str | None:
    return body if body is None or isinstance(body, str) else json.dumps(body, default=str)


def log_rows(request: ExportLogsServiceRequest) -> Rows:
    rows = Rows(LOGS)
    for resource_logs in request.resource_logs:
        service, resource = _resource(resource_logs.resource)
        resource_json = _dumps(resource)
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                rows.add(LOGS.row(
                    time_ns=record.time_unix_nano or record.observed_time_unix_nano,
                    service=service, severity_number=record.severity_number,
                    severity=record.severity_text or None,
                    body=_body_text(any_value(record.body)),
                    trace_id=_log_context_id(record.trace_id.hex()),
                    span_id=_log_context_id(record.span_id.hex()),
                    attributes=_dumps(attributes(record.attributes)), resource=resource_json,
                ))
    return rows


# --- metrics ------------------------------------------------------------------------

def _metric_row(rows: Rows, service: str, name: str, unit: str, kind: MetricKind,
                temporality: str, monotonic: bool, time_ns: int, found: dict[str, Any],
                value: float | None, count: int | None, total: float | None,
                buckets: list[int] | None, bounds: list[float] | None) -> None:
    rows.add(METRIC_POINTS.row(
        time_ns=time_ns, service=service, name=name, kind=kind, unit=unit,
        attributes=_dumps(found), value=value, count=count, sum=total, bucket_counts=buckets,
        bounds=bounds, temporality=temporality, monotonic=monotonic))


def metric_rows(request: ExportMetricsServiceRequest) -> Rows:
    rows = Rows(METRIC_POINTS)
    for resource_metrics in request.resource_metrics:
        service, _ = _resource(resource_metrics.resource)
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                field = metric.WhichOneof("data")
                if field is None:
                    continue
                # The protobuf's field names are the kinds' names.
                kind, data = MetricKind(field), getattr(metric, field)
                temporality = _TEMPORALITIES[getattr(data, "aggregation_temporality", 0) % 3]
                monotonic = bool(getattr(data, "is_monotonic", False))
                for point in data.data_points:
                    value: float | None = None
                    count = total = None
                    buckets: list[int] | None = None
                    bounds: list[float] | None = None
                    if kind in (MetricKind.SUM, MetricKind.GAUGE):
                        number = point.WhichOneof("value")
                        value = float(getattr(point, number)) if number else None
                    elif kind == MetricKind.HISTOGRAM:
                        count, total = point.count, point.sum
                        buckets, bounds = list(point.bucket_counts), list(point.explicit_bounds)
                    else:
                        count, total = point.count, point.sum
                    _metric_row(rows, service, metric.name, metric.unit, kind, temporality,
                                monotonic, point.time_unix_nano, attributes(point.attributes),
                                value, count, total, buckets, bounds)
    return rows


# --- OTLP/JSON ----------------------------------------------------------------------
#
# Decoded straight from the parsed document, not through protobuf's JSON mapping (which
# is pure Python and several times slower than decoding protobuf): kansoku's own
# services export JSON, so this is the explorer's main path. The OTLP/JSON rules: keys
# in lowerCamelCase, trace and span ids as hex, 64-bit integers as decimal strings or
# numbers, enums as integers.

_HEX = re.compile(r"[0-9a-fA-F]*")


def _hex_id(value: Any, field_name: str) -> str:
    if not isinstance(value, str) or not _HEX.fullmatch(value):
        raise MalformedPayload(f"{field_name} '{str(value)[:40]}' is not hex")
    return value.lower()


def json_value(value: dict[str, Any]) -> Any:
    """An OTLP/JSON AnyValue as plain Python."""
    for kind, item in value.items():
        if kind == "stringValue":
            return str(item)
        if kind == "intValue":
            return int(item)
        if kind == "boolValue":
            return bool(item)
        if kind == "doubleValue":
            return float(item)
        if kind == "arrayValue":
            return [json_value(element) for element in item.get("values", ())]
        if kind == "kvlistValue":
            return json_attributes(item.get("values", ()))
        if kind == "bytesValue":
            return base64.b64decode(item, validate=True).hex()
    return None


def json_attributes(pairs: Iterable[dict[str, Any]]) -> dict[str, Any]:
    found = {}
    for pair in pairs:
        value = pair.get("value") or {}
        # Strings are nearly all of them: read without the general case's calls.
        text = value.get("stringValue")
        found[pair["key"]] = text if type(text) is str else json_value(value)
    return found


def _json_resource(node: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    resource = json_attributes(node.get("resource", {}).get("attributes", ()))
    return str(resource.get(semconv.SERVICE_NAME) or UNKNOWN_SERVICE), resource


def _json_spans(document: dict[str, Any]) -> Rows:
    rows = Rows(SPANS)
    add = _SpanColumns(rows, OTLP_SOURCE).add
    for resource_spans in document.get("resourceSpans", ()):
        service, resource = _json_resource(resource_spans)
        resource_json = _dumps(resource)
        for scope_spans in resource_spans.get("scopeSpans", ()):
            for span in scope_spans.get("spans", ()):
                status = span.get("status") or {}
                events = span.get("events")
                links = span.get("links")
                add(service, resource_json, _hex_id(span.get("traceId", ""), "traceId"),
                    _hex_id(span.get("spanId", ""), "spanId"),
                    _hex_id(span.get("parentSpanId", ""), "parentSpanId"),
                    str(span.get("name", "")), int(span.get("kind", 0)),
                    int(span.get("startTimeUnixNano", 0)), int(span.get("endTimeUnixNano", 0)),
                    int(status.get("code", 0)), status.get("message"),
                    json_attributes(span.get("attributes", ())),
                    [{"time_ns": int(event.get("timeUnixNano", 0)),
                      "name": str(event.get("name", "")),
                      "attributes": json_attributes(event.get("attributes", ()))}
                     for event in events] if events else None,
                    [{"trace_id": _hex_id(link.get("traceId", ""), "traceId"),
                      "span_id": _hex_id(link.get("spanId", ""), "spanId"),
                      "attributes": json_attributes(link.get("attributes", ()))}
                     for link in links] if links else None)
    return rows


def _json_logs(document: dict[str, Any]) -> Rows:
    rows = Rows(LOGS)
    for resource_logs in document.get("resourceLogs", ()):
        service, resource = _json_resource(resource_logs)
        resource_json = _dumps(resource)
        for scope_logs in resource_logs.get("scopeLogs", ()):
            for record in scope_logs.get("logRecords", ()):
                body = record.get("body")
                rows.add(LOGS.row(
                    time_ns=int(record.get("timeUnixNano", 0))
                    or int(record.get("observedTimeUnixNano", 0)), service=service,
                    severity_number=int(record.get("severityNumber", 0)),
                    severity=record.get("severityText") or None,
                    body=_body_text(json_value(body) if body else None),
                    trace_id=_log_context_id(_hex_id(record.get("traceId", ""), "traceId")),
                    span_id=_log_context_id(_hex_id(record.get("spanId", ""), "spanId")),
                    attributes=_dumps(json_attributes(record.get("attributes", ()))),
                    resource=resource_json,
                ))
    return rows


_JSON_POINT_KINDS = {"sum": MetricKind.SUM, "gauge": MetricKind.GAUGE,
                     "histogram": MetricKind.HISTOGRAM,
                     "exponentialHistogram": MetricKind.EXPONENTIAL_HISTOGRAM,
                     "summary": MetricKind.SUMMARY}


def _json_metrics(document: dict[str, Any]) -> Rows:
    rows = Rows(METRIC_POINTS)
    for resource_metrics in document.get("resourceMetrics", ()):
        service, _ = _json_resource(resource_metrics)
        for scope_metrics in resource_metrics.get("scopeMetrics", ()):
            for metric in scope_metrics.get("metrics", ()):
                key = next((key for key in _JSON_POINT_KINDS if key in metric), None)
                if key is None:
                    continue
                kind, data = _JSON_POINT_KINDS[key], metric[key]
                temporality = _TEMPORALITIES[int(data.get("aggregationTemporality", 0)) % 3]
                monotonic = bool(data.get("isMonotonic", False))
                for point in data.get("dataPoints", ()):
                    value: float | None = None
                    count = total = None
                    buckets: list[int] | None = None
                    bounds: list[float] | None = None
                    if kind in (MetricKind.SUM, MetricKind.GAUGE):
                        number = point.get("asDouble", point.get("asInt"))
                        value = float(number) if number is not None else None
                    else:
                        count, total = int(point.get("count", 0)), float(point.get("sum", 0))
                        if kind == MetricKind.HISTOGRAM:
                            buckets = [int(n) for n in point.get("bucketCounts", ())]
                            bounds = [float(b) for b in point.get("explicitBounds", ())]
                    _metric_row(rows, service, str(metric.get("name", "")),
                                str(metric.get("unit", "")), kind, temporality, monotonic,
                                int(point.get("timeUnixNano", 0)),
                                json_attributes(point.get("attributes", ())),
                                value, count, total, buckets, bounds)
    return rows


_JSON_DECODERS = {SPANS: _json_spans, LOGS: _json_logs, METRIC_POINTS: _json_metrics}


def json_rows(table: Table, body: bytes) -> Rows:
    """Rows for `table` (SPANS, LOGS or METRIC_POINTS) from an OTLP/JSON body."""
    try:
        document = json.loads(body)
        if not isinstance(document, dict):
            raise MalformedPayload("the body is not a JSON object")
        return _JSON_DECODERS[table](document)
    except MalformedPayload:
        raise
    except (ValueError, TypeError, AttributeError, KeyError, RecursionError,
            UnicodeDecodeError) as exc:
        # A field of the wrong type or shape anywhere: the request is not OTLP/JSON.
        raise MalformedPayload(f"not OTLP/JSON ({type(exc).__name__}: "
                               f"{str(exc)[:200]})") from exc
