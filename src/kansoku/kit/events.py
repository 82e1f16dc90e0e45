"""Events between services over NATS JetStream, with the trace going along.

- Producers write events to an outbox table in the same transaction as the change they
  report; `OutboxRelay` publishes them afterwards. JetStream drops a repeat of the same
  message id, so a relay that crashes between publishing and marking cannot deliver an
  event twice.
- The publish span is a child of the request that wrote the event (its trace context is
  stored with it), and the consumer's span a child of the publish: one checkout is one
  trace, into the worker. The request's baggage travels the same way (`event_headers`),
  so the consumer's spans carry what the request's did: the user (`enduser.id`) and the
  mark of generated traffic (`kansoku.synthetic`).
- Under a vendor's approach (kit/approaches) neither vendor's library sees NATS, so the
  running approach is asked here: for its trace headers when an event is written, to
  record the publish, and to open its own segment or transaction around each event a
  consumer handles, continuing the trace the event carries or marking the break
  (docs/approaches.md, mixed shops).
- A message whose handler keeps failing goes, after `max_deliveries`, to the dead-letter
  stream, where an admin can list it and replay it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from nats.js.api import ConsumerConfig, StreamConfig
from nats.js.errors import NotFoundError
from opentelemetry import context, metrics, trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import SpanKind, StatusCode, TracerProvider

from kansoku.kit import approaches, semconv
from kansoku.kit.approaches import ConsumedEvent, Instrumentation, propagation
from kansoku.kit.context import current_user_id

logger = logging.getLogger(__name__)
_tracer = trace.get_tracer("kansoku.events")
_meter = metrics.get_meter("kansoku.events")


def _dead_letter_counter(meter: metrics.Meter) -> metrics.Counter:
    return meter.create_counter(semconv.METRIC_DEAD_LETTERS, unit="{message}",
                                description="Messages moved to the dead-letter stream")


_dead_letters = _dead_letter_counter(_meter)

STREAM = "KANSOKU"
STREAM_SUBJECTS = ["order.>", "inventory.>", "product.>", "payment.>"]
DEAD_LETTER_STREAM = "KANSOKU_DLQ"
DEAD_LETTER_PREFIX = "dlq"
#: Headers a dead letter carries, besides the original ones.
ORIGINAL_SUBJECT_HEADER = "Kansoku-Original-Subject"
ERROR_HEADER = "Kansoku-Error"
CONSUMER_HEADER = "Kansoku-Consumer"
MESSAGE_ID_HEADER = "Nats-Msg-Id"
#: The event's own id: unlike the message id, it stays the same when a dead letter is
#: replayed, so consumers recognise an event they have already handled.
EVENT_ID_HEADER = "Kansoku-Event-Id"

def event_headers() -> dict[str, str]:
    """The current trace context and baggage, as an event's headers: what the outbox
    stores with an event, so its publish and its consumers continue the request. W3C
    `traceparent` and `baggage` always (`propagation.event_propagator`: and
    `X-Amzn-Trace-Id` with an X-Ray neighbour); under a vendor's approach, the vendor's
    own trace headers for what it is recording now."""
    headers: dict[str, str] = {}
    propagation.event_propagator().inject(headers)
    headers.update(approaches.running().event_trace_headers())
    return headers


def _tracer_for(tracer_provider: TracerProvider | None) -> trace.Tracer:
    return _tracer if tracer_provider is None else trace.get_tracer(
        "kansoku.events", tracer_provider=tracer_provider)


async def ensure_streams(js: Any) -> None:
    """Create the event and dead-letter streams if they are missing, and give an
    existing stream the subjects a newer kansoku publishes (idempotent)."""
    for name, subjects in ((STREAM, STREAM_SUBJECTS),
                           (DEAD_LETTER_STREAM, [f"{DEAD_LETTER_PREFIX}.>"])):
        try:
            info = await js.stream_info(name)
        except NotFoundError:
            await js.add_stream(StreamConfig(name=name, subjects=subjects,
                                             duplicate_window=300.0))
            continue
        missing = [subject for subject in subjects
                   if subject not in (info.config.subjects or [])]
        if missing:
            # A data directory from before `payment.>` existed: its events stay.
            info.config.subjects = [*(info.config.subjects or []), *missing]
            await js.update_stream(info.config)
            logger.info("stream %s now also takes %s", name, ", ".join(missing))


async def publish(js: Any, subject: str, payload: dict[str, Any], *, message_id: str,
                  trace_headers: dict[str, str],
                  tracer_provider: TracerProvider | None = None) -> None:
    """Publish one event as a child span of the request that produced it, whose context
    and baggage `trace_headers` hold (`event_headers`); the message carries both on."""
    # The request's context becomes the current one, not only the span's parent: the
    # baggage then reaches the span processors and the message's headers.
    token = context.attach(propagation.event_propagator().extract(trace_headers))
    try:
        with approaches.running().publishing(subject, message_id), \
                _tracer_for(tracer_provider).start_as_current_span(
                    f"{subject} publish", kind=SpanKind.PRODUCER,
                    attributes={semconv.MESSAGING_SYSTEM: semconv.MESSAGING_SYSTEM_NATS,
                                semconv.MESSAGING_DESTINATION: subject,
                                semconv.MESSAGING_MESSAGE_ID: message_id}):
            # The headers the request wrote go on unless this publish writes them anew: a
            # vendor's approach records no publish outside a request (the outbox relay's),
            # so there its consumers continue the request itself.
            headers = {**trace_headers, **event_headers(),
                       MESSAGE_ID_HEADER: message_id, EVENT_ID_HEADER: message_id}
            await js.publish(subject, json.dumps(payload).encode(), headers=headers,
                             timeout=2)
    finally:
        context.detach(token)


class OutboxMessage(Protocol):
    id: Any
    subject: str
    payload: dict[str, Any]
    headers: dict[str, str]


@dataclass
class OutboxRelay:
    """Publishes a service's outbox, oldest first, every `interval` seconds.

    `take_batch(session, limit)` must lock what it returns (FOR UPDATE SKIP LOCKED) so
    relays of several instances share the work; `mark_published(session, id)` records a
    publish. While NATS is away nothing is lost: events wait in the table.
    """

    service: str
    transaction: Callable[[], Any]
    take_batch: Callable[[Any, int], Awaitable[Sequence[OutboxMessage]]]
    mark_published: Callable[[Any, Any], Awaitable[None]]
    jetstream: Callable[[], Any]
    interval: float = 0.5
    batch: int = 100
    _streams_ready: bool = False

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            js = self.jetstream()
            if js is None:
                continue
            try:
                if not self._streams_ready:
                    await ensure_streams(js)
                    self._streams_ready = True
                await self.relay_once(js)
            except Exception as exc:
                logger.warning("outbox relay: %s; retrying", exc or type(exc).__name__)

    async def relay_once(self, js: Any) -> int:
        published = 0
        # Polling the table twice a second is not traffic: no spans for it.
        with suppress_instrumentation():
            async with self.transaction() as session:
                for message in await self.take_batch(session, self.batch):
                    await publish(js, message.subject, message.payload,
                                  message_id=str(message.id), trace_headers=message.headers)
                    await self.mark_published(session, message.id)
                    published += 1
        return published


Handler = Callable[[dict[str, Any], str], Awaitable[None]]



async def subscribe_when_connected(jetstream: Callable[[], Any], subject: str, durable: str,
                                   handler: Handler, *, max_deliveries: int,
                                   tracer_provider: TracerProvider | None = None) -> None:
    """Subscribe durably once NATS is reachable (it connects in the background,
    `kit.connections`), retrying until it works: a background task of a service that
    consumes `subject`. Events that arrive meanwhile wait in the durable consumer."""
    while True:
        js = jetstream()
        if js is None:
            await asyncio.sleep(0.5)
            continue
        try:
            await ensure_streams(js)
            await subscribe(js, subject, durable, handler, max_deliveries=max_deliveries,
                            tracer_provider=tracer_provider)
        except Exception as exc:
            logger.warning("could not subscribe to %s yet (%s); retrying", subject,
                           exc or type(exc).__name__)
            await asyncio.sleep(2)
            continue
        logger.info("subscribed to %s as %s", subject, durable)
        return

async def subscribe(js: Any, subject: str, durable: str, handler: Handler, *,
                    max_deliveries: int = 5, retry_delay: float = 1.0,
                    tracer_provider: TracerProvider | None = None,
                    meter_provider: MeterProvider | None = None) -> Any:
    """Run `handler(payload, message_id)` for every message on `subject`, each in a
    consumer span continuing the producer's trace, with the producer's baggage current
    (so the handler's own spans and calls carry it too); under a vendor's approach, in
    the vendor's own segment or transaction (`Approach.consuming`). A trace header this
    service cannot continue is marked on the consumer span as on a request's
    (`kansoku.trace.break`). Acknowledged on success; redelivered on failure; after
    `max_deliveries` failures moved to the dead-letter stream (and counted in
    `kansoku.events.dead_letters`)."""
    tracer = _tracer_for(tracer_provider)
    dead_letters = _dead_letters if meter_provider is None else _dead_letter_counter(
        metrics.get_meter("kansoku.events", meter_provider=meter_provider))
    # The consumer's series exists at 0 from now on: Prometheus's increase() counts the
    # first dead letter only as a change from a value it has already seen.
    dead_letters.add(0, {semconv.MESSAGING_CONSUMER: durable})

    async def on_message(message: Any) -> None:
        headers = dict(message.headers or {})
        message_id = headers.get(EVENT_ID_HEADER) or headers.get(MESSAGE_ID_HEADER, "")
        token = context.attach(propagation.event_propagator().extract(headers))
        try:
            lowered = {name.lower(): value for name, value in headers.items()}
            attributes = {semconv.MESSAGING_SYSTEM: semconv.MESSAGING_SYSTEM_NATS,
                          semconv.MESSAGING_DESTINATION: message.subject,
                          semconv.MESSAGING_MESSAGE_ID: message_id,
                          semconv.MESSAGING_CONSUMER: durable}
            foreign = propagation.foreign_trace(lowered, Instrumentation.OTEL,
                                                reads_xray=propagation.speaks_xray())
            if foreign is not None:
                attributes.update(foreign.attributes())
            approach = approaches.running()
            event = ConsumedEvent(subject=message.subject, consumer=durable,
                                  message_id=message_id, headers=lowered,
                                  user_id=current_user_id())
            with approach.consuming(event), tracer.start_as_current_span(
                    f"{message.subject} process", kind=SpanKind.CONSUMER,
                    attributes=attributes) as span:
                try:
                    await handler(json.loads(message.data), message_id)
                except Exception as exc:
                    span.record_exception(exc)
                    span.set_status(StatusCode.ERROR, type(exc).__name__)
                    approach.event_failed(exc)
                    deliveries = message.metadata.num_delivered
                    if deliveries >= max_deliveries:
                        await _to_dead_letters(js, message, headers, durable, exc)
                        dead_letters.add(1, {semconv.MESSAGING_CONSUMER: durable})
                        await message.ack()
                    else:
                        logger.warning("%s failed on %s (delivery %d of %d): %s", durable,
                                       message.subject, deliveries, max_deliveries, exc)
                        await message.nak(delay=retry_delay * deliveries)
                    return
                await message.ack()
        finally:
            context.detach(token)

    return await js.subscribe(subject, durable=durable, cb=on_message, manual_ack=True,
                              config=ConsumerConfig(ack_wait=30, max_deliver=-1))


async def _to_dead_letters(js: Any, message: Any, headers: dict[str, str], consumer: str,
                           error: Exception) -> None:
    dead_headers = {**headers, ORIGINAL_SUBJECT_HEADER: message.subject,
                    CONSUMER_HEADER: consumer, ERROR_HEADER: str(error)[:300] or
                    type(error).__name__}
    # A new id: the dead-letter stream must accept it even if the same event died before.
    dead_headers[MESSAGE_ID_HEADER] = f"{headers.get(MESSAGE_ID_HEADER, '')}:{time.time_ns()}"
    await js.publish(f"{DEAD_LETTER_PREFIX}.{message.subject}", message.data,
                     headers=dead_headers, timeout=2)
    logger.error("%s gave up on %s after %d deliveries; moved to the dead letters: %s",
                 consumer, message.subject, message.metadata.num_delivered, error,
                 extra={"event_id": headers.get(MESSAGE_ID_HEADER), "consumer": consumer})


async def dead_letters(js: Any, limit: int = 100) -> list[dict[str, Any]]:
    """The dead-letter stream's messages, oldest first."""
    info = await js.stream_info(DEAD_LETTER_STREAM)
    found: list[dict[str, Any]] = []
    sequence = info.state.first_seq
    while sequence and sequence <= info.state.last_seq and len(found) < limit:
        try:
            message = await js.get_msg(DEAD_LETTER_STREAM, sequence)
        except NotFoundError:
            sequence += 1
            continue
        headers = dict(message.headers or {})
        found.append({
            "sequence": sequence,
            "subject": headers.get(ORIGINAL_SUBJECT_HEADER, message.subject),
            "consumer": headers.get(CONSUMER_HEADER),
            "error": headers.get(ERROR_HEADER),
            "event_id": headers.get(EVENT_ID_HEADER),
            "payload": json.loads(message.data or b"null"),
        })
        sequence += 1
    return found


async def replay_dead_letter(js: Any, sequence: int) -> str:
    """Publish a dead letter again on its original subject, and remove it from the
    dead letters. Returns the subject."""
    message = await js.get_msg(DEAD_LETTER_STREAM, sequence)
    headers = dict(message.headers or {})
    subject = headers.pop(ORIGINAL_SUBJECT_HEADER)
    headers.pop(ERROR_HEADER, None)
    headers.pop(CONSUMER_HEADER, None)
    # A new id, or JetStream would drop it as a duplicate of the first delivery.
    headers[MESSAGE_ID_HEADER] = f"replay-{time.time_ns()}"
    await js.publish(subject, message.data, headers=headers, timeout=2)
    await js.delete_msg(DEAD_LETTER_STREAM, sequence)
    return str(subject)
