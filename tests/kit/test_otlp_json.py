"""The kit's OTLP/JSON encoding says exactly what the SDK's protobuf encoding says: the
same spans and log records, encoded both ways and decoded by the explorer, give the same
rows — ids, times, kinds, statuses, every attribute type, events, links, bodies."""

from __future__ import annotations

import gc
import json
import logging
import weakref
from collections.abc import Sequence

from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs as pb_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as pb_spans
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import (
    LogRecordExporter,
    LogRecordExportResult,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
    set_span_in_context,
)

from kansoku.explorer.ingest import otlp
from kansoku.explorer.store import LOGS, SPANS
from kansoku.kit import otlp_json
from kansoku.kit.logging import setup_logging

RESOURCE = Resource.create({"service.name": "encoder-test", "service.version": "1.2"})


class KeptSpans(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


class KeptLogs(LogRecordExporter):
    def __init__(self) -> None:
        self.records: list[ReadableLogRecord] = []

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        self.records.extend(batch)
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 0) -> bool:
        return True


def varied_spans() -> list[ReadableSpan]:
    kept = KeptSpans()
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(kept))
    tracer = provider.get_tracer("kansoku.test", "0.1")
    other = provider.get_tracer("another.scope")
    with tracer.start_as_current_span("GET /products/{id}", kind=SpanKind.SERVER,
                                      attributes={"http.route": "/products/{id}",
                                                  "http.response.status_code": 503,
                                                  "enduser.id": "user-9"}) as root:
        root.add_event("cache.miss", {"kansoku.cache.name": "products", "attempt": 2})
        root.set_status(Status(StatusCode.ERROR, "upstream failed"))
        with tracer.start_as_current_span("SELECT", kind=SpanKind.CLIENT, attributes={
                "db.system": "postgresql", "db.statement": "SELECT 1 -- ünïcödé \"quoted\"",
                "ratio": 0.25, "flag": True, "ids": [1, 2, 3], "names": ["a", "b"],
                "weights": [0.5, 1.5], "switches": [True, False]}):
            pass
        link = Link(root.get_span_context(), {"kansoku.link": "retry"})
        with other.start_as_current_span("publish", kind=SpanKind.PRODUCER, links=[link]):
            pass
        with tracer.start_as_current_span("ok", kind=SpanKind.INTERNAL) as ok:
            ok.set_status(Status(StatusCode.OK))
    # A span whose parent came from another process, with a vendor's trace state.
    parent = NonRecordingSpan(SpanContext(root.get_span_context().trace_id, 0x1234,
                                          is_remote=True, trace_flags=TraceFlags(1),
                                          trace_state=TraceState([("vendor", "v1")])))
    with tracer.start_as_current_span("from elsewhere", context=set_span_in_context(parent),
                                      kind=SpanKind.CONSUMER):
        pass
    return kept.spans


def test_spans_decode_to_the_same_rows_both_ways() -> None:
    spans = varied_spans()
    from_protobuf = ExportTraceServiceRequest()
    otlp.parse(pb_spans(spans).SerializeToString(), from_protobuf)
    expected = otlp.span_rows(from_protobuf)
    decoded = otlp.json_rows(SPANS, otlp_json.encode_spans(spans))
    assert len(expected) == len(spans) == 5
    assert decoded.rejected == expected.rejected == 0
    for column, want, got in zip(SPANS.names, expected.values, decoded.values,
                                 strict=True):
        assert got == want, column


def test_log_records_decode_to_the_same_rows_both_ways() -> None:
    kept = KeptLogs()
    provider = LoggerProvider(resource=RESOURCE)
    provider.add_log_record_processor(SimpleLogRecordProcessor(kept))
    handler = LoggingHandler(logger_provider=provider)
    setup_logging("encoder-test", "INFO", extra_handlers=[handler])
    log = logging.getLogger("kansoku.test.encoder")
    tracer = TracerProvider(resource=RESOURCE).get_tracer("t")
    with tracer.start_as_current_span("with a trace"):
        log.warning("stock low for %s", "tea", extra={"product_id": 7, "ratio": 0.5})
    log.error("no trace here: ünïcödé")
    provider.force_flush()
    logging.getLogger().removeHandler(handler)

    from_protobuf = ExportLogsServiceRequest()
    otlp.parse(pb_logs(kept.records).SerializeToString(), from_protobuf)
    expected = otlp.log_rows(from_protobuf)
    decoded = otlp.json_rows(LOGS, otlp_json.encode_logs(kept.records))
    assert len(expected) == 2
    for column, want, got in zip(LOGS.names, expected.values, decoded.values,
                                 strict=True):
        assert got == want, column
    assert decoded.values[LOGS.names.index("trace_id")][1] is None


def test_the_json_log_handler_sends_what_the_sdk_handler_sends() -> None:
    """The same records through OpenTelemetry's LoggingHandler (SDK records, protobuf)
    and through the kit's JsonLogHandler (straight to OTLP/JSON) give the explorer the
    same rows: body, severity, attributes (context filter's included), exception, trace."""
    kept = KeptLogs()
    provider = LoggerProvider(resource=RESOURCE)
    provider.add_log_record_processor(SimpleLogRecordProcessor(kept))
    queue = otlp_json.JsonLogRecordProcessor(
        otlp_json.JsonLogExporter(endpoint="http://127.0.0.1:9/v1/logs"),
        schedule_delay_millis=60_000)
    handlers = [LoggingHandler(logger_provider=provider),
                otlp_json.JsonLogHandler(RESOURCE, queue)]
    setup_logging("encoder-test", "DEBUG", extra_handlers=handlers)
    log = logging.getLogger("kansoku.test.handler")
    tracer = TracerProvider(resource=RESOURCE).get_tracer("t")
    try:
        with tracer.start_as_current_span("with a trace"):
            log.warning("stock low for %s", "tea", extra={"product_id": 7, "ratio": 0.5,
                                                          "tags": ["a", "b"]})
            try:
                raise ValueError("bad quantity")
            except ValueError:
                log.exception("could not reserve")
        log.critical("no trace here: ünïcödé")
        log.debug("quiet detail", extra={"otel.event.name": "kansoku.detail"})
        provider.force_flush()
        queued = list(reversed(queue._batch_processor._queue))  # oldest first
    finally:
        for handler in handlers:
            logging.getLogger().removeHandler(handler)
        queue._batch_processor._queue.clear()
        queue.shutdown()  # type: ignore[no-untyped-call]

    from_protobuf = ExportLogsServiceRequest()
    otlp.parse(pb_logs(kept.records).SerializeToString(), from_protobuf)
    expected = otlp.log_rows(from_protobuf)
    decoded = otlp.json_rows(LOGS, otlp_json.encode_logs(queued))
    assert len(expected) == len(queued) == 4
    for column, want, got in zip(LOGS.names, expected.values, decoded.values,
                                 strict=True):
        assert got == want, column
    documents = [json.loads(item.json) for item in queued]
    assert [document["severityText"] for document in documents] == [
        "WARN", "ERROR", "FATAL", "DEBUG"]
    assert documents[3]["eventName"] == "kansoku.detail"
    exception = {pair["key"]: pair["value"] for pair in documents[1]["attributes"]}
    assert exception["exception.type"] == {"stringValue": "ValueError"}
    assert "bad quantity" in exception["exception.stacktrace"]["stringValue"]


def test_attribute_values_of_every_type() -> None:
    assert otlp_json.any_value("x") == {"stringValue": "x"}
    assert otlp_json.any_value(True) == {"boolValue": True}
    assert otlp_json.any_value(2**62) == {"intValue": str(2**62)}
    assert otlp_json.any_value(1.5) == {"doubleValue": 1.5}
    assert otlp_json.any_value(b"\x00\xff") == {"bytesValue": "AP8="}
    assert otlp_json.any_value({"k": [1, "a"]}) == {"kvlistValue": {"values": [
        {"key": "k", "value": {"arrayValue": {"values": [{"intValue": "1"},
                                                         {"stringValue": "a"}]}}}]}}
    for value in ("x", True, 2**62, 1.5, {"k": [1, "a"]}):
        assert otlp.json_value(otlp_json.any_value(value)) == value


def test_the_export_queues_hold_text_not_the_finished_spans_and_records() -> None:
    """What waits for export is the span's and the record's OTLP/JSON: the objects
    themselves are freed when they end, instead of aging in the garbage collector."""
    unreachable = "http://127.0.0.1:9"  # never sent to: the queues are emptied first
    span_processor = otlp_json.JsonSpanProcessor(
        otlp_json.JsonSpanExporter(endpoint=f"{unreachable}/v1/traces"),
        schedule_delay_millis=60_000)
    tracer_provider = TracerProvider(resource=Resource.create({"service.name": "queue"}))
    tracer_provider.add_span_processor(span_processor)
    log_processor = otlp_json.JsonLogRecordProcessor(
        otlp_json.JsonLogExporter(endpoint=f"{unreachable}/v1/logs"),
        schedule_delay_millis=60_000)
    logger_provider = LoggerProvider(resource=Resource.create({"service.name": "queue"}))
    logger_provider.add_log_record_processor(log_processor)
    try:
        span = tracer_provider.get_tracer("test").start_span("queued", attributes={"n": 1})
        span.end()
        ended = weakref.ref(span)
        handler = LoggingHandler(logger_provider=logger_provider)
        source = logging.getLogger("test.queue")
        source.addHandler(handler)
        try:
            source.warning("queued too")
        finally:
            source.removeHandler(handler)
        del span
        gc.collect()
        assert ended() is None, "the span outlived its end"

        spans = list(span_processor._batch_processor._queue)
        records = list(log_processor._batch_processor._queue)
        assert [json.loads(item.json)["name"] for item in spans] == ["queued"]
        assert [json.loads(item.json)["body"]["stringValue"] for item in records] \
            == ["queued too"]
        body = json.loads(otlp_json.encode_spans(spans))
        (resource_spans,) = body["resourceSpans"]
        assert {"key": "service.name", "value": {"stringValue": "queue"}} \
            in resource_spans["resource"]["attributes"]
        assert resource_spans["scopeSpans"][0]["scope"] == {"name": "test"}
        assert resource_spans["scopeSpans"][0]["spans"][0]["attributes"] == [
            {"key": "n", "value": {"intValue": "1"}}]
    finally:
        span_processor._batch_processor._queue.clear()
        log_processor._batch_processor._queue.clear()
        tracer_provider.shutdown()
        logger_provider.shutdown()
