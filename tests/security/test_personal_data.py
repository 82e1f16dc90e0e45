"""Customers' e-mail addresses stay out of logs and spans; the user id names them.

They used to reach the worker's log (and so the explorer) in the embedded SMTP
server's "recip: alice@example.com" for every order. The kit masks addresses in every
log record and every exported span (`kit.pii`); the worker keeps the SMTP server's
envelope chatter below its log level.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage

import aiosmtplib
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from kansoku.kit.db import Database
from kansoku.kit.logging import setup_logging
from kansoku.kit.pii import PersonalDataSpanProcessor, mask_emails
from kansoku.services.worker.mailbox import start_mailbox
from tests.support import free_ports, migrate

ADDRESS = "alice.customer@example.com"


@pytest.fixture
def service_logging() -> Iterator[io.StringIO]:
    """The kit's logging as a served process has it, its JSON lines written to the
    buffer yielded instead of stdout; put back as it was afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    setup_logging("worker", "DEBUG")
    (stdout,) = root.handlers
    assert isinstance(stdout, logging.StreamHandler)
    written = io.StringIO()
    stdout.setStream(written)
    try:
        yield written
    finally:
        root.handlers, root.level = handlers, level


def logged(written: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in written.getvalue().splitlines() if line]


def test_addresses_are_masked_in_messages_extras_and_exceptions(
        service_logging: io.StringIO) -> None:
    log = logging.getLogger("test.pii")
    log.info("welcome mail to %s", ADDRESS, extra={"to": [ADDRESS], "order": "KS-1"})
    try:
        raise ValueError(f"refused: <{ADDRESS}>")
    except ValueError:
        log.exception("sending failed")
    records = logged(service_logging)
    assert ADDRESS not in json.dumps(records)
    assert records[0]["message"] == "welcome mail to a***@example.com"
    assert records[0]["to"] == ["a***@example.com"] and records[0]["order"] == "KS-1"
    assert "refused: <a***@example.com>" in str(records[1]["message"])


def test_text_without_an_address_is_left_alone() -> None:
    assert mask_emails("GET /products?q=@home 200") == "GET /products?q=@home 200"
    assert mask_emails("to bob@mail.example.org, cc x@y.io") == (
        "to b***@mail.example.org, cc x***@y.io")


@pytest.fixture
async def mailbox(postgres_url: str) -> AsyncIterator[int]:
    await migrate(postgres_url, "worker")
    database = Database(postgres_url, schema="worker", application_name="pii-tests")
    (port,) = free_ports(1)
    server = await start_mailbox(database, "127.0.0.1", port)
    try:
        yield port
    finally:
        server.close()
        await server.wait_closed()
        await database.dispose()


async def test_the_worker_mailbox_logs_no_recipient(
        mailbox: int, service_logging: io.StringIO) -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = (
        "shop@kansoku.example", ADDRESS, "Order KS-PII-1 confirmed")
    message.set_content("Thank you.")
    await aiosmtplib.send(message, hostname="127.0.0.1", port=mailbox, timeout=10)
    records = logged(service_logging)
    assert any("KS-PII-1" in str(record["message"]) for record in records)
    assert ADDRESS not in json.dumps(records)


def test_exported_spans_carry_no_address() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(PersonalDataSpanProcessor(SimpleSpanProcessor(exporter)))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("send mail") as span:
        span.set_attribute("messaging.recipients", [ADDRESS])
        span.set_attribute("enduser.id", "4b1c")
        span.record_exception(ValueError(f"550 no such mailbox: {ADDRESS}"))
    with tracer.start_as_current_span("plain") as plain:
        plain.set_attribute("http.route", "/products")
    masked, untouched = exporter.get_finished_spans()
    assert masked.attributes == {"messaging.recipients": ("a***@example.com",),
                                 "enduser.id": "4b1c"}
    (event,) = masked.events
    assert event.attributes is not None
    assert event.attributes["exception.message"] == "550 no such mailbox: a***@example.com"
    assert masked.context == span.get_span_context()
    assert untouched.attributes == {"http.route": "/products"}
