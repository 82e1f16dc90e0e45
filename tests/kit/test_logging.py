"""Log records are one JSON object a line with the trace, request and user."""

from __future__ import annotations

import io
import json
import logging

import pytest
from opentelemetry import baggage, context
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider

from kansoku.kit import semconv
from kansoku.kit.context import set_request_id
from kansoku.kit.logging import ContextFilter, JsonFormatter
from tests.support import json_lines, service_logging


def test_record_carries_trace_request_and_user() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("catalog"))
    handler.addFilter(ContextFilter())
    logger = logging.getLogger("test.json")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False

    tracer = TracerProvider().get_tracer("test")
    token = context.attach(baggage.set_baggage(semconv.BAGGAGE_USER_ID, "user-9"))
    try:
        set_request_id("req-1")
        with tracer.start_as_current_span("work") as span:
            logger.info("listed %d products", 3, extra={"category": "telescopes"})
            span_context = span.get_span_context()
    finally:
        context.detach(token)
        logger.removeHandler(handler)

    line = stream.getvalue().strip()
    assert "\n" not in line
    record = json.loads(line)
    assert record["message"] == "listed 3 products"
    assert record["level"] == "INFO"
    assert record["service"] == "catalog"
    assert record["trace_id"] == format(span_context.trace_id, "032x")
    assert record["span_id"] == format(span_context.span_id, "016x")
    assert record["request_id"] == "req-1"
    assert record["user_id"] == "user-9"
    assert record["category"] == "telescopes"
    assert record["time"].endswith("+00:00")


def test_an_anonymous_requests_otlp_record_has_no_empty_user_attribute() -> None:
    exporter = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    handler = LoggingHandler(logger_provider=provider)
    handler.addFilter(ContextFilter())
    logger = logging.getLogger("test.otlp")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        set_request_id("req-2")
        logger.info("GET /products 200")
    finally:
        logger.removeHandler(handler)

    (exported,) = exporter.get_finished_logs()
    attributes = dict(exported.log_record.attributes or {})
    assert attributes["request_id"] == "req-2"
    assert "user_id" not in attributes


def test_libraries_chatter_is_debug_and_their_warnings_stay(capsys: pytest.CaptureFixture[str]
                                                             ) -> None:
    """At INFO every line is kansoku's; a library's INFO (aiosmtpd's SMTP dialogue,
    uvicorn's start) is a DEBUG record, written only at DEBUG."""
    def speak() -> None:
        logging.getLogger("mail.log").info("('127.0.0.1', 51926) >> b'QUIT'")
        logging.getLogger("uvicorn.error").info("Application startup complete.")
        logging.getLogger("nats.aio.client").info("connected")
        logging.getLogger("mail.log").warning("SMTP session exception")
        logging.getLogger("kansoku.worker.functions").info("order-confirmation ok")

    with service_logging("worker", "INFO"):
        speak()
    at_info = [(line["level"], line["message"]) for line in json_lines(capsys.readouterr().out)]
    assert at_info == [("WARNING", "SMTP session exception"), ("INFO", "order-confirmation ok")]

    with service_logging("worker", "DEBUG"):
        speak()
    at_debug = [(line["level"], line["logger"]) for line in json_lines(capsys.readouterr().out)]
    assert at_debug == [("DEBUG", "mail.log"), ("DEBUG", "uvicorn.error"),
                        ("DEBUG", "nats.aio.client"), ("WARNING", "mail.log"),
                        ("INFO", "kansoku.worker.functions")]
