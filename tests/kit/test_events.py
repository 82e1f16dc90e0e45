"""Events over a real NATS JetStream carry the request's trace context *and* its baggage:
the consumer's span — and the spans its handler makes — are marked as the request was
(`kansoku.synthetic`, `enduser.id`), as every service's BaggageSpanProcessor stamps them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
from opentelemetry import baggage, context, trace
from opentelemetry.processor.baggage import BaggageSpanProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from kansoku.kit import events, semconv
from tests.support import eventually

STAMPED = {semconv.BAGGAGE_SYNTHETIC, semconv.BAGGAGE_USER_ID}


@pytest.fixture
async def jetstream(nats_url: str) -> AsyncIterator[Any]:
    connection = await nats.connect(nats_url)
    js = connection.jetstream()
    await events.ensure_streams(js)
    try:
        yield js
    finally:
        await connection.close()


def recording_provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    """A tracer provider set up as a service's is, for what matters here: baggage
    entries stamped onto every span."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(BaggageSpanProcessor(STAMPED.__contains__))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


async def test_a_consumer_span_carries_the_baggage_of_the_request_that_wrote_the_event(
        jetstream: Any) -> None:
    provider, exporter = recording_provider()
    tracer = provider.get_tracer("test")
    # The request: generated traffic of a known user, which writes an event to its
    # outbox (what `outbox.add_event` stores is `event_headers()`).
    marked = baggage.set_baggage(semconv.BAGGAGE_SYNTHETIC, "load",
                                 baggage.set_baggage(semconv.BAGGAGE_USER_ID, "user-9"))
    token = context.attach(marked)
    try:
        with tracer.start_as_current_span("POST /orders", kind=SpanKind.SERVER) as request:
            stored = events.event_headers()
    finally:
        context.detach(token)
    assert "traceparent" in stored and "kansoku.synthetic=load" in stored["baggage"]

    # Later, and in another context (the relay's loop has no baggage of its own), the
    # event is published and consumed; the handler does some traced work of its own.
    subject = f"order.baggage-{uuid.uuid4().hex[:8]}"
    seen: dict[str, Any] = {}
    handled = asyncio.Event()

    async def handler(payload: dict[str, Any], message_id: str) -> None:
        seen["baggage"] = dict(baggage.get_all())
        with tracer.start_as_current_span("send confirmation"):
            pass
        handled.set()

    subscription = await events.subscribe(jetstream, subject, f"test-{uuid.uuid4().hex[:8]}",
                                          handler, tracer_provider=provider)
    try:
        assert baggage.get_all() == {}
        await events.publish(jetstream, subject, {"number": "KS-BAGGAGE"},
                             message_id=str(uuid.uuid4()), trace_headers=stored,
                             tracer_provider=provider)
        await asyncio.wait_for(handled.wait(), 10)

        async def consumer_ended() -> bool:  # it ends once the message is acknowledged
            return any(span.kind is SpanKind.CONSUMER for span in exporter.get_finished_spans())

        await eventually(consumer_ended, 5, "the consumer span ending")
    finally:
        await subscription.unsubscribe()

    spans = {span.name: span for span in exporter.get_finished_spans()}
    publish, consumer = spans[f"{subject} publish"], spans[f"{subject} process"]
    work = spans["send confirmation"]
    assert seen["baggage"] == {semconv.BAGGAGE_SYNTHETIC: "load",
                               semconv.BAGGAGE_USER_ID: "user-9"}
    for span in (publish, consumer, work):
        assert attributes(span)[semconv.BAGGAGE_SYNTHETIC] == "load", span.name
        assert attributes(span)[semconv.BAGGAGE_USER_ID] == "user-9", span.name
    # Still one trace: request → publish → process → the handler's work.
    trace_id = request.get_span_context().trace_id
    assert {span.context.trace_id for span in (publish, consumer, work)} == {trace_id}
    assert publish.parent is not None
    assert publish.parent.span_id == request.get_span_context().span_id
    assert consumer.parent is not None and consumer.parent.span_id == publish.context.span_id
    assert work.parent is not None and work.parent.span_id == consumer.context.span_id
    # Nothing leaks out: the baggage was current only while the event was handled.
    assert baggage.get_all() == {}
    assert trace.get_current_span() is trace.INVALID_SPAN


async def test_an_event_written_without_baggage_carries_none(jetstream: Any) -> None:
    provider, exporter = recording_provider()
    subject = f"order.plain-{uuid.uuid4().hex[:8]}"
    handled = asyncio.Event()
    seen: dict[str, Any] = {}

    async def handler(payload: dict[str, Any], message_id: str) -> None:
        seen["baggage"] = dict(baggage.get_all())
        handled.set()

    subscription = await events.subscribe(jetstream, subject, f"test-{uuid.uuid4().hex[:8]}",
                                          handler, tracer_provider=provider)
    try:
        await events.publish(jetstream, subject, {}, message_id=str(uuid.uuid4()),
                             trace_headers=events.event_headers(), tracer_provider=provider)
        await asyncio.wait_for(handled.wait(), 10)
    finally:
        await subscription.unsubscribe()
    assert seen["baggage"] == {}
    assert all(semconv.BAGGAGE_SYNTHETIC not in attributes(span)
               for span in exporter.get_finished_spans())


def dead_letter_counts(reader: InMemoryMetricReader) -> dict[str, int]:
    """The dead-letter count per consumer, as exported so far."""
    counts: dict[str, int] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name != semconv.METRIC_DEAD_LETTERS:
                    continue
                for point in metric.data.data_points:
                    assert isinstance(point, NumberDataPoint)
                    consumer = (point.attributes or {})[semconv.MESSAGING_CONSUMER]
                    counts[str(consumer)] = int(point.value)
    return counts


async def test_a_consumers_dead_letters_are_counted_from_zero(jetstream: Any) -> None:
    """The count exists at 0 from the subscription on, so Prometheus's increase() sees
    the first dead letter (a series that appears at 1 shows no increase)."""
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    subject = f"order.poison-{uuid.uuid4().hex[:8]}"
    durable = f"test-{uuid.uuid4().hex[:8]}"

    async def handler(payload: dict[str, Any], message_id: str) -> None:
        raise ValueError("cannot handle this one")

    subscription = await events.subscribe(jetstream, subject, durable, handler,
                                          max_deliveries=1, meter_provider=meter_provider)
    try:
        assert dead_letter_counts(reader) == {durable: 0}
        await events.publish(jetstream, subject, {}, message_id=str(uuid.uuid4()),
                             trace_headers={})

        async def counted() -> bool:
            return dead_letter_counts(reader) == {durable: 1}

        await eventually(counted, 10, "the dead letter being counted")
    finally:
        await subscription.unsubscribe()
        meter_provider.shutdown()


async def test_an_older_stream_gets_the_subjects_a_newer_kansoku_publishes(
        jetstream: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A data directory from before `payment.>`: its stream keeps its events and takes
    the new subject, instead of every `payment.succeeded` failing to publish."""
    name = f"OLDER_{uuid.uuid4().hex[:8].upper()}"
    old, new = f"{name.lower()}.order.>", f"{name.lower()}.payment.>"
    await jetstream.add_stream(name=name, subjects=[old])
    await jetstream.publish(f"{name.lower()}.order.placed", b"{}")
    monkeypatch.setattr(events, "STREAM", name)
    monkeypatch.setattr(events, "STREAM_SUBJECTS", [old, new])
    try:
        await events.ensure_streams(jetstream)
        info = await jetstream.stream_info(name)
        assert info.config.subjects == [old, new]
        assert info.state.messages == 1, "its events stay"
        await jetstream.publish(f"{name.lower()}.payment.succeeded", b"{}")
    finally:
        await jetstream.delete_stream(name)
