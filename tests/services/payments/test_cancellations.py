"""Payments never keeps money for a cancelled order, on a real PostgreSQL and NATS over
real HTTP: a charge taken before the `order.cancelled` event is refunded when it arrives
(once, however often the event is delivered), and a charge after it is refused, even one
that was already running when the order was cancelled."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import nats
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import TypeAdapter

from kansoku.faults import flagfile
from kansoku.kit import events, semconv
from kansoku.kit.db import Database
from kansoku.services.payments import service
from kansoku.services.payments.models import Payment
from kansoku.services.payments.schemas import Charge
from kansoku.services.payments.service import CANCELLATIONS_CONSUMER
from tests.faults import switch
from tests.services.payments.test_api import GOOD_CARD, ORDERS, charge
from tests.services.payments.traced import traced_payments
from tests.support import eventually, serve_in_thread

REASON = "payments did not answer in time; any charge is refunded"


@dataclass
class Payments:
    url: str
    app: FastAPI
    flags_file: Path
    exporter: InMemorySpanExporter
    js: Any
    postgres_url: str

    async def cancel(self, order_id: uuid.UUID, event_id: str | None = None,
                     message_id: str | None = None) -> str:
        """Publish `order.cancelled` as orders' outbox relay does (`message_id` other than
        the event id: a replay, which JetStream does not drop as a duplicate)."""
        event_id = event_id or str(uuid.uuid4())
        await self.js.publish("order.cancelled", json.dumps({
            "order_id": str(order_id), "number": "KS-TEST", "status": "cancelled",
            "user_id": "someone", "email": "someone@example.com", "name": "Someone",
            "total": "25.50",
            "currency": "USD", "items": [], "reason": REASON}).encode(), headers={
                events.MESSAGE_ID_HEADER: message_id or event_id,
                events.EVENT_ID_HEADER: event_id}, timeout=2)
        return event_id

    async def server_span(self, request_id: str) -> ReadableSpan:
        """The request's server span (it ends just after the answer is sent)."""
        def find() -> ReadableSpan | None:
            return next((span for span in self.exporter.get_finished_spans()
                         if (span.attributes or {}).get(semconv.REQUEST_ID) == request_id),
                        None)

        async def ended() -> bool:
            return find() is not None
        await eventually(ended, 5, f"the server span of {request_id}")
        span = find()
        assert span is not None
        return span

    def handled(self, order_id: uuid.UUID) -> list[ReadableSpan]:
        """The consumer spans of this order's cancellation events, finished."""
        return [span for span in self.exporter.get_finished_spans()
                if span.name == "order.cancelled process"
                and (span.attributes or {}).get(semconv.ORDER_ID) == str(order_id)]

    async def wait_handled(self, order_id: uuid.UUID, times: int = 1) -> list[ReadableSpan]:
        async def done() -> bool:
            return len(self.handled(order_id)) >= times
        await eventually(done, 10, f"payments handled {times} cancellation(s) of {order_id}")
        return self.handled(order_id)

    async def rows(self, order_id: uuid.UUID) -> list[dict[str, Any]]:
        """The order's payments, as stored."""
        connection = await asyncpg.connect(self.postgres_url)
        try:
            rows = await connection.fetch(
                "SELECT id, status, refund_reason, refunded_at FROM payments.payments "
                "WHERE order_id = $1", order_id)
        finally:
            await connection.close()
        return [dict(row) for row in rows]


@pytest.fixture(scope="module")
async def payments(postgres_url: str, nats_url: str,
                   tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Payments]:
    flags_file = tmp_path_factory.mktemp("cancellations") / "flags.json"
    app, exporter = await traced_payments(postgres_url, nats_url, flags_file)
    connection = await nats.connect(nats_url)
    try:
        with serve_in_thread(app, lifespan="on") as url:
            js = connection.jetstream()

            async def subscribed() -> bool:
                try:
                    info = await js.consumer_info(events.STREAM, CANCELLATIONS_CONSUMER)
                except Exception:
                    return False
                return bool(info.push_bound)
            await eventually(subscribed, 15, "payments subscribed to order.cancelled")
            yield Payments(url, app, flags_file, exporter, js, postgres_url)
    finally:
        await connection.close()


@pytest.fixture(autouse=True)
def flags_off(payments: Payments) -> Iterator[None]:
    yield
    flagfile.reset(payments.flags_file)


async def test_a_charge_before_the_cancellation_is_refunded_once(
        payments: Payments, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    order = uuid.uuid4()
    async with httpx.AsyncClient(base_url=payments.url) as client:
        paid = await client.post("/charges", json=charge(order), headers=ORDERS)
        assert paid.status_code == 201 and paid.json()["status"] == "succeeded"

        # The event, then the same event again (a redelivery or a replay).
        event_id = await payments.cancel(order)
        await payments.cancel(order, event_id, message_id=f"replay-{uuid.uuid4()}")
        handled = await payments.wait_handled(order, times=2)

        record = await client.get(f"/charges/{paid.json()['id']}", headers=ORDERS)
        again = await client.post("/charges", json=charge(order), headers=ORDERS)

    assert record.json()["status"] == "refunded"
    assert record.json()["refund_reason"] == "order_cancelled"
    assert record.json()["refunded_at"] is not None
    # Refunded by one delivery; the other saw the cancellation already handled.
    refunds = [event for span in handled for event in span.events
               if event.name.startswith("payment refunded")]
    assert len(refunds) == 1
    assert (refunds[0].attributes or {})[semconv.PAYMENT_ID] == paid.json()["id"]
    duplicates = [span for span in handled
                  if (span.attributes or {}).get(semconv.EVENT_DUPLICATE)]
    assert len(duplicates) == 1
    assert all((span.attributes or {})[semconv.ORDER_CANCEL_REASON] == REASON
               for span in handled)
    # Paying the cancelled order again is refused: the money stays refunded.
    assert again.status_code == 409, again.text
    assert again.json()["type"].endswith("/order-cancelled")
    assert [row["status"] for row in await payments.rows(order)] == ["refunded"]
    refund_lines = [r for r in caplog.records if "refunded payment" in r.getMessage()]
    assert len(refund_lines) == 1 and str(order) in refund_lines[0].getMessage()
    assert GOOD_CARD not in caplog.text and GOOD_CARD[-8:] not in caplog.text


async def test_a_charge_after_the_cancellation_is_refused(payments: Payments) -> None:
    order = uuid.uuid4()
    await payments.cancel(order)
    (handled,) = await payments.wait_handled(order)
    assert not any(event.name.startswith("payment refunded") for event in handled.events)

    async with httpx.AsyncClient(base_url=payments.url) as client:
        card = await client.post("/charges", json=charge(order), headers=ORDERS)
        wallet = await client.post("/charges", headers=ORDERS, json={
            **charge(order), "payment_method": "wallet",
            "payment_details": {"wallet_id": "empty-wallet"}})

    assert card.status_code == 409, card.text
    problem = card.json()
    assert problem["type"].endswith("/order-cancelled")
    assert problem["cancel_reason"] == REASON and "nothing was charged" in problem["detail"]
    assert wallet.status_code == 409, "not even a decline is recorded"
    assert await payments.rows(order) == [], "nothing captured, nothing stored"


async def test_a_charge_running_when_the_order_is_cancelled_is_refused(
        payments: Payments) -> None:
    """The cancellation lands while the charge waits on the card network: the check
    before the slow step passed, the one under the order's lock refuses."""
    await switch(payments.app, payments.flags_file, "paymentLatency", "1s")
    order = uuid.uuid4()
    async with httpx.AsyncClient(base_url=payments.url, timeout=10) as client:
        charging = asyncio.create_task(
            client.post("/charges", json=charge(order), headers=ORDERS))
        await asyncio.sleep(0.3)
        await payments.cancel(order)
        await payments.wait_handled(order)
        assert not charging.done(), "the cancellation was handled while the charge ran"
        refused = await charging

    assert refused.status_code == 409, refused.text
    assert refused.json()["type"].endswith("/order-cancelled")
    assert await payments.rows(order) == []
    attributes = (await payments.server_span(refused.headers["x-request-id"])).attributes
    assert attributes is not None
    assert attributes[semconv.FEATURE_FLAG_KEY] == "paymentLatency", \
        "it got past the first check and waited on the card network"
    assert attributes[semconv.ORDER_CANCEL_REASON] == REASON


async def test_a_cancellation_waits_for_a_charge_being_committed(payments: Payments) -> None:
    """The narrowest race: the charge is written but not committed when the cancellation
    is handled. The order's lock makes the handler wait, then refund what was committed."""
    db = Database(payments.postgres_url, schema="payments", application_name="race-test")
    order = uuid.uuid4()
    try:
        async with db.transaction() as charging:
            paid = await service.charge(charging,
                                        TypeAdapter(Charge).validate_python(charge(order)))

            async def cancel() -> list[Payment] | None:
                async with db.transaction() as session:
                    return await service.order_cancelled(
                        session, {"order_id": str(order), "reason": REASON}, "race-event")
            cancelling = asyncio.create_task(cancel())
            await asyncio.sleep(0.5)
            assert not cancelling.done(), "the cancellation waits for the charge's commit"
        refunded = await cancelling
    finally:
        await db.dispose()
    assert refunded is not None and [p.id for p in refunded] == [paid.id]
    assert [row["status"] for row in await payments.rows(order)] == ["refunded"]
