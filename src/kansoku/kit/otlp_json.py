"""OTLP/JSON exporters for spans and log records: the OpenTelemetry SDK's OTLP/HTTP
exporters with the encoding step replaced.

Why: the SDK's encoder builds a protobuf object for every span, attribute and value
before serialising, and hashes each span's resource with `json.dumps` to group them. In
the services that is the largest part of exporting (the telemetry-tax benchmark's
profiles); building plain dicts and letting the standard library's C encoder write them
costs about half as much per span. OTLP/JSON is part of the OTLP/HTTP specification:
the explorer, the OpenTelemetry Collector and the common backends accept it.

Everything else — endpoint, headers, timeout, compression, retries with backoff, the
size limit, shutdown — is the SDK exporter's own. `OTEL_EXPORTER_OTLP_PROTOCOL`
(or `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` / `…_LOGS_PROTOCOL`) set to `http/protobuf`
selects the SDK's protobuf exporters instead (`kit/telemetry.py`).

The encoding follows the OTLP/JSON rules: lowerCamelCase keys, trace and span ids as
hex, 64-bit integers as decimal strings, enums as integers, empty fields left out.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.log_utils import std_to_otel
from opentelemetry.sdk._logs import ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, StatusCode

logger = logging.getLogger(__name__)

JSON_CONTENT_TYPE = "application/json"

#: Bits of a span's `flags` (OTLP 1.x): whether the parent's remoteness is known, and
#: whether the parent is remote.
_HAS_IS_REMOTE = 0x100
_IS_REMOTE = 0x200

_encode_document = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False,
                                    check_circular=False, default=str).encode
#: A str as a JSON string, quotes included (the standard library's C function, the one
#: `_encode_document` uses for every string).
_quote: Callable[[str], str] = json.encoder.encode_basestring


def any_value(value: Any) -> dict[str, Any]:
    """An attribute value as an OTLP/JSON AnyValue."""
    kind = type(value)
    if kind is str:
        return {"stringValue": value}
    if kind is bool:
        return {"boolValue": value}
    if kind is int:
        return {"intValue": str(value)}
    if kind is float:
        return {"doubleValue": value}
    if value is None:
        return {}
    if isinstance(value, bytes):
        return {"bytesValue": base64.b64encode(value).decode()}
    if isinstance(value, Mapping):
        return {"kvlistValue": {"values": key_values(value)}}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return {"arrayValue": {"values": [any_value(item) for item in value]}}
    return {"stringValue": str(value)}


def key_values(attributes: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    if not attributes:
        return []
    # The hot loop: most values are strings, read without the general case's calls.
    return [{"key": key, "value": {"stringValue": value} if type(value) is str
             else any_value(value)} for key, value in attributes.items()]


def attributes_json(attributes: Mapping[str, Any]) -> str:
    """`key_values(attributes)` written as JSON, the same text `_encode_document` would
    make of it, about twice as fast: strings and integers (nearly every attribute) are
    written straight from the C string quoting, without a dict per key and value."""
    return "[" + ",".join(
        f'{{"key":{_quote(key)},"value":{{"stringValue":{_quote(value)}}}}}'
        if type(value) is str else
        f'{{"key":{_quote(key)},"value":{{"intValue":"{value}"}}}}'
        if type(value) is int else
        f'{{"key":{_quote(key)},"value":{_encode_document(any_value(value))}}}'
        for key, value in attributes.items()) + "]"


def _flags(parent: SpanContext | None) -> int:
    return _HAS_IS_REMOTE | _IS_REMOTE if parent is not None and parent.is_remote \
        else _HAS_IS_REMOTE


def span_json(span: ReadableSpan) -> str:
    """One span as an OTLP/JSON Span. The fields every span has are written as text
    directly (the span's attributes with `attributes_json`); the rarer ones (events,
    links, status, dropped counts) as dicts through the encoder."""
    context = span.get_span_context()
    if context is None:  # never for the SDK's spans; the batch is dropped if it happens
        raise ValueError(f"span '{span.name}' has no span context")
    parent = span.parent
    # The API counts kinds from INTERNAL = 0, OTLP from 1.
    text = (f'{{"traceId":"{context.trace_id:032x}","spanId":"{context.span_id:016x}",'
            f'"name":{_quote(span.name)},"kind":{span.kind.value + 1},'
            f'"startTimeUnixNano":"{span.start_time or 0}",'
            f'"endTimeUnixNano":"{span.end_time or 0}","flags":{_flags(parent)}')
    if parent is not None:
        text += f',"parentSpanId":"{parent.span_id:016x}"'
    if context.trace_state:
        text += ',"traceState":' + _quote(",".join(
            f"{key}={value}" for key, value in context.trace_state.items()))
    if span.attributes:
        text += ',"attributes":' + attributes_json(span.attributes)
    rest = _span_rest(span)
    return text + ("," + _encode_document(rest)[1:] if rest else "}")


def _span_rest(span: ReadableSpan) -> dict[str, Any]:
    """What `span_json` leaves to the encoder: the fields most spans do not have."""
    encoded: dict[str, Any] = {}
    if span.dropped_attributes:
        encoded["droppedAttributesCount"] = span.dropped_attributes
    if span.events:
        encoded["events"] = [{
            "timeUnixNano": str(event.timestamp), "name": event.name,
            "attributes": key_values(event.attributes),
            **({"droppedAttributesCount": event.dropped_attributes}
               if event.dropped_attributes else {}),
        } for event in span.events]
    if span.dropped_events:
        encoded["droppedEventsCount"] = span.dropped_events
    if span.links:
        encoded["links"] = [{
            "traceId": format(link.context.trace_id, "032x"),
            "spanId": format(link.context.span_id, "016x"),
            "attributes": key_values(link.attributes),
            "flags": _flags(link.context),
            **({"droppedAttributesCount": link.dropped_attributes}
               if link.dropped_attributes else {}),
        } for link in span.links]
    if span.dropped_links:
        encoded["droppedLinksCount"] = span.dropped_links
    status = span.status
    if status.status_code is not StatusCode.UNSET:
        encoded["status"] = {"code": status.status_code.value,
                             **({"message": status.description} if status.description
                                else {})}
    return encoded


def _log_record(readable: ReadableLogRecord | ReadWriteLogRecord) -> dict[str, Any]:
    record = readable.log_record
    encoded: dict[str, Any] = {
        "timeUnixNano": str(record.timestamp or 0),
        "observedTimeUnixNano": str(record.observed_timestamp or 0),
        "flags": int(record.trace_flags or 0),
    }
    if record.severity_number is not None:
        encoded["severityNumber"] = record.severity_number.value
    if record.severity_text:
        encoded["severityText"] = record.severity_text
    if record.body is not None:
        encoded["body"] = any_value(record.body)
    if record.attributes:
        encoded["attributes"] = key_values(record.attributes)
    if readable.dropped_attributes:
        encoded["droppedAttributesCount"] = readable.dropped_attributes
    if record.trace_id:
        encoded["traceId"] = format(record.trace_id, "032x")
    if record.span_id:
        encoded["spanId"] = format(record.span_id, "016x")
    if record.event_name:
        encoded["eventName"] = record.event_name
    return encoded


def _scope(scope: InstrumentationScope | None) -> dict[str, Any]:
    if scope is None:
        return {}
    encoded: dict[str, Any] = {"name": scope.name}
    if scope.version:
        encoded["version"] = scope.version
    if scope.attributes:
        encoded["attributes"] = key_values(scope.attributes)
    return encoded


class Encoded(NamedTuple):
    """One span or log record already written as OTLP/JSON, with the resource and scope
    it is grouped under when the request is put together."""

    resource: Resource
    scope: InstrumentationScope | None
    json: str


def encoded_span(span: ReadableSpan) -> Encoded:
    return Encoded(span.resource, span.instrumentation_scope, span_json(span))


def encoded_log_record(record: ReadableLogRecord | ReadWriteLogRecord) -> Encoded:
    assert record.resource is not None  # the SDK's Logger always sets it
    return Encoded(record.resource, record.instrumentation_scope,
                   _encode_document(_log_record(record)))


def _document(items: Sequence[Encoded], resources_key: str, scoped_key: str,
              items_key: str) -> bytes:
    """An export request from encoded items, grouped by resource, then by instrumentation
    scope, as OTLP nests them: the items' own JSON is copied in, not encoded again.

    Grouped by identity: a process has one resource object and a handful of scopes, and
    hashing a resource serialises it (the SDK's encoder pays that once per span)."""
    resources: dict[int, tuple[Resource, dict[int, tuple[InstrumentationScope | None,
                                                         list[str]]]]] = {}
    for item in items:
        entry = resources.get(id(item.resource))
        if entry is None:
            entry = resources[id(item.resource)] = (item.resource, {})
        group = entry[1].get(id(item.scope))
        if group is None:
            group = entry[1][id(item.scope)] = (item.scope, [])
        group[1].append(item.json)
    parts: list[str] = []
    for resource, scopes in resources.values():
        scoped = ",".join(
            _encode_document({"scope": _scope(scope), **(
                {"schemaUrl": scope.schema_url} if scope and scope.schema_url else {})}
                             )[:-1] + f',"{items_key}":[' + ",".join(encoded) + "]}"
            for scope, encoded in scopes.values())
        head = _encode_document({"resource": {"attributes": key_values(resource.attributes)},
                                 **({"schemaUrl": resource.schema_url}
                                    if resource.schema_url else {})})
        parts.append(head[:-1] + f',"{scoped_key}":[{scoped}]}}')
    return f'{{"{resources_key}":[{",".join(parts)}]}}'.encode()


def encode_spans(spans: Sequence[ReadableSpan | Encoded]) -> bytes:
    """An OTLP/JSON ExportTraceServiceRequest body."""
    return _document([span if isinstance(span, Encoded) else encoded_span(span)
                      for span in spans], "resourceSpans", "scopeSpans", "spans")


def encode_logs(records: Sequence[ReadableLogRecord | Encoded]) -> bytes:
    """An OTLP/JSON ExportLogsServiceRequest body."""
    return _document([record if isinstance(record, Encoded) else encoded_log_record(record)
                      for record in records], "resourceLogs", "scopeLogs", "logRecords")


class _JsonPost:
    """What both exporters share: the SDK exporter's client, size limit and self-metrics
    around a body encoded here. Relies on attributes of the pinned SDK's exporters
    (`_client`, `_metrics`, `_max_request_size`, `_shutdown`)."""

    _client: Any
    _metrics: Any
    _max_request_size: int
    _shutdown: bool

    def _post(self, count: int, encode: Callable[[], bytes], what: str) -> bool:
        if self._shutdown:
            logger.warning("%s exporter already shut down; batch dropped", what)
            return False
        with self._metrics.export_operation(count) as result:
            try:
                body = encode()
            except Exception as error:  # a value the encoder cannot write: drop the batch
                logger.error("could not encode a batch of %s: %s", what, error)
                result.error = error
                return False
            if len(body) > self._max_request_size:
                logger.warning("%s batch of %d bytes is over the %d-byte limit; dropped",
                               what, len(body), self._max_request_size)
                result.error = ValueError("request too large")
                return False
            sent = self._client.export(body)
            if not sent.success:
                result.error = sent.error
                return False
        return True


class JsonSpanExporter(_JsonPost, OTLPSpanExporter):
    """`OTLPSpanExporter` (same settings and environment variables) sending OTLP/JSON."""

    def __init__(self, **kwargs: Any) -> None:
        headers = {**(kwargs.pop("headers", None) or {}), "Content-Type": JSON_CONTENT_TYPE}
        super().__init__(headers=headers, **kwargs)

    def export(self, spans: Sequence[ReadableSpan | Encoded]
               ) -> SpanExportResult:
        sent = self._post(len(spans), lambda: encode_spans(spans), "span")
        return SpanExportResult.SUCCESS if sent else SpanExportResult.FAILURE


class JsonLogExporter(_JsonPost, OTLPLogExporter):
    """`OTLPLogExporter` (same settings and environment variables) sending OTLP/JSON."""

    def __init__(self, **kwargs: Any) -> None:
        headers = {**(kwargs.pop("headers", None) or {}), "Content-Type": JSON_CONTENT_TYPE}
        super().__init__(headers=headers, **kwargs)

    def export(self, batch: Sequence[ReadableLogRecord | Encoded]
               ) -> LogRecordExportResult:
        sent = self._post(len(batch), lambda: encode_logs(batch), "log record")
        return LogRecordExportResult.SUCCESS if sent else LogRecordExportResult.FAILURE


class JsonSpanProcessor(BatchSpanProcessor):
    """The SDK's batch span processor, except that a span is written as OTLP/JSON the
    moment it ends and only that text waits in the queue for the exporter.

    Why: a finished span is a few dozen objects (attributes, context, events). Queued
    for up to five seconds, they outlive several young-generation garbage collections,
    are promoted, and make every later collection of the older generations longer: in
    the telemetry-tax benchmark that cost the services more than encoding them did. A
    string is not scanned by the collector at all. The encoding work is the same, done
    on the thread that ended the span instead of the export thread.
    Use with `JsonSpanExporter`; relies on the pinned SDK's `_batch_processor`.
    """

    def on_end(self, span: ReadableSpan) -> None:
        if not (span.context and span.context.trace_flags.sampled):
            return
        try:
            encoded = encoded_span(span)
        except Exception as error:  # a span must never fail the request that ended it
            logger.warning("span '%s' could not be encoded and is dropped: %s",
                           span.name, error)
            return
        self._batch_processor.emit(encoded)  # type: ignore[arg-type]


class JsonLogRecordProcessor(BatchLogRecordProcessor):
    """The SDK's batch log record processor, except that a record is written as
    OTLP/JSON when it is emitted and only that text waits for the exporter (see
    `JsonSpanProcessor` for why). It also saves the copy of every record the SDK's
    processor makes to drop the record's reference to its context.
    Use with `JsonLogExporter`; relies on the pinned SDK's `_batch_processor`.
    """

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        try:
            encoded = encoded_log_record(log_record)
        except Exception as error:  # logging must never fail the code that logs
            logger.warning("a log record could not be encoded and is dropped: %s", error)
            return
        self.emit_encoded(encoded)

    def emit_encoded(self, encoded: Encoded) -> None:
        """Queue a record already written as OTLP/JSON (`JsonLogHandler`)."""
        self._batch_processor.emit(encoded)  # type: ignore[arg-type]


#: What every stdlib LogRecord has (and what formatters add to it): not attributes of the
#: record's own, the same fields OpenTelemetry's `LoggingHandler` leaves out.
_STDLIB_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName"}
#: OpenTelemetry's severity texts where they differ from Python's level names.
_SEVERITY_TEXT = {"WARNING": "WARN", "CRITICAL": "FATAL"}
_EVENT_NAME_KEYS = ("otel.event.name", "event.name")


def stdlib_log_record(record: logging.LogRecord) -> str:
    """A standard-library log record as an OTLP/JSON LogRecord, mapped as OpenTelemetry's
    `LoggingHandler` maps it (body, severity, the record's own attributes, the exception,
    the event name, and the trace and span of the current span)."""
    attributes = {key: value for key, value in vars(record).items()
                  if key not in _STDLIB_RECORD_FIELDS}
    event_name = None
    for key in _EVENT_NAME_KEYS:
        found = attributes.pop(key, None)
        event_name = event_name or found
    if record.exc_info and record.exc_info[0] is not None:
        kind, error, stack = record.exc_info
        attributes["exception.type"] = kind.__name__
        if error is not None and error.args:
            attributes["exception.message"] = str(error.args[0])
        if stack is not None:
            attributes["exception.stacktrace"] = "".join(
                traceback.format_exception(*record.exc_info))
    encoded: dict[str, Any] = {
        "timeUnixNano": str(int(record.created * 1e9)),
        "observedTimeUnixNano": str(time.time_ns()),
        "severityNumber": std_to_otel(record.levelno).value,
        "severityText": _SEVERITY_TEXT.get(record.levelname, record.levelname),
        "body": {"stringValue": record.getMessage()},
    }
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        encoded["traceId"] = format(context.trace_id, "032x")
        encoded["spanId"] = format(context.span_id, "016x")
        encoded["flags"] = int(context.trace_flags)
    else:
        encoded["flags"] = 0
    if event_name:
        encoded["eventName"] = str(event_name)
    text = _encode_document(encoded)
    return text[:-1] + ',"attributes":' + attributes_json(attributes) + "}" if attributes \
        else text


class JsonLogHandler(logging.Handler):
    """Sends standard-library log records over OTLP/JSON: each record is written as
    OTLP/JSON here and queued in `processor`, with `resource` and the logger's name as
    its scope, as OpenTelemetry's `LoggingHandler` would send it.

    Why: the `LoggingHandler` path makes three objects per record (the API record, the
    SDK's read-write record with validated attributes, a read-only copy) only for them
    to be written out as JSON; here the record goes to JSON at once. The mapping is the
    same, which a test checks against the `LoggingHandler` + protobuf path.
    """

    def __init__(self, resource: Resource, processor: JsonLogRecordProcessor,
                 level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self._resource = resource
        self._processor = processor
        self._scopes: dict[str, InstrumentationScope] = {}

    def _scope(self, name: str) -> InstrumentationScope:
        scope = self._scopes.get(name)
        if scope is None:
            scope = InstrumentationScope(name)
            if len(self._scopes) < 1024:  # logger names are few; a bound all the same
                self._scopes[name] = scope
        return scope

    def emit(self, record: logging.LogRecord) -> None:
        try:
            encoded = Encoded(self._resource, self._scope(record.name),
                              stdlib_log_record(record))
        except Exception:  # logging must never fail the code that logs
            self.handleError(record)
            return
        self._processor.emit_encoded(encoded)
