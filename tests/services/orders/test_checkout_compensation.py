"""Checkout when payments is slower than orders is willing to wait, on a real PostgreSQL
and NATS, orders and payments over real HTTP: orders gives up (a read timeout) and
cancels the order, the charge still goes through in payments, and payments refunds it
when it hears of the cancellation — even if it hears only later — or refuses it if the
cancellation came first. Either way the customer keeps their money, and the one trace
shows what happened."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from kansoku.contracts.clients import PaymentsClient
from kansoku.faults import flagfile
from kansoku.kit import semconv
from kansoku.kit.http import ServiceClient, Timeouts
from kansoku.kit.telemetry import Telemetry
from kansoku.services.orders.app import create_app as create_orders
from kansoku.services.orders.settings import Settings as OrdersSettings
from kansoku.services.payments.app import create_app as create_payments
from kansoku.services.payments.settings import Settings as PaymentsSettings
from tests.faults import switch
from tests.support import eventually, free_ports, migrate, serve_in_thread
from tests.tokens import TokenIssuer

TOKENS = TokenIssuer()
USER = str(uuid.uuid4())
CUSTOMER = TOKENS.headers(user_id=USER)
CARD = {"card_number": "4111111111111111", "expiry_month": 12, "expiry_year": 2099,
        "cvv": "123"}
#: Orders waits this long for payments; the paymentLatency flag (1s) makes every
#: charge take longer, so orders always gives up while the charge goes on.
READ_TIMEOUT = 0.4


@dataclass
class Shop:
    orders: httpx.AsyncClient
    payments_app: FastAPI
    payments_url: str
    flags_file: Path
    #: Every app's spans (an app shuts its exporter down when it stops: one each).
    exporters: list[InMemorySpanExporter]
    postgres_url: str
    nats_url: str

    async def new_order(self) -> uuid.UUID:
        """An order waiting for payment, as placing it (catalog, inventory) leaves it."""
        order_id = uuid.uuid4()
        connection = await asyncpg.connect(self.postgres_url)
        try:
            await connection.execute(
                "INSERT INTO orders.orders (id, number, user_id, status, total, currency, "
                "shipping_address) VALUES ($1, $2, $3, 'pending_payment', $4, 'USD', '{}')",
                order_id, f"T-{uuid.uuid4().hex[:12]}", USER, Decimal("25.50"))
        finally:
            await connection.close()
        return order_id

    async def order(self, order_id: uuid.UUID) -> dict[str, Any]:
        answer = await self.orders.get(f"/orders/{order_id}", headers=CUSTOMER)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    async def payments(self, order_id: uuid.UUID) -> list[dict[str, Any]]:
        """What payments holds for the order."""
        connection = await asyncpg.connect(self.postgres_url)
        try:
            rows = await connection.fetch(
                "SELECT id, status, refund_reason FROM payments.payments WHERE order_id = $1",
                order_id)
        finally:
            await connection.close()
        return [dict(row) for row in rows]

    def consumer(self) -> FastAPI:
        """A payments instance that consumes order.cancelled (the one serving charges
        here has no NATS: it cannot hear of cancellations)."""
        app = create_payments(PaymentsSettings(database_url=self.postgres_url,
                                               nats_url=self.nats_url),
                              Telemetry("payments", traced(self.exporters), MeterProvider()))
        app.state.tokens = TOKENS.verifier
        return app

    def spans(self) -> list[ReadableSpan]:
        return [span for exporter in self.exporters for span in exporter.get_finished_spans()]

    def trace(self, trace_id: int) -> list[ReadableSpan]:
        return [span for span in self.spans()
                if span.context is not None and span.context.trace_id == trace_id]

    def checkout(self, answer: httpx.Response) -> ReadableSpan:
        """Orders' server span of a payment request (payments' span has the same request
        id: the id goes along with the call)."""
        request_id = answer.headers["x-request-id"]
        span = next((span for span in self.spans()
                     if (span.attributes or {}).get(semconv.REQUEST_ID) == request_id
                     and span.name == "POST /orders/{order_id}/payment"), None)
        assert span is not None and span.context is not None
        return span


def traced(exporters: list[InMemorySpanExporter]) -> TracerProvider:
    """A tracer provider whose spans are kept in memory, in a new exporter of `exporters`."""
    exporter = InMemorySpanExporter()
    exporters.append(exporter)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


@pytest.fixture(scope="module")
async def shop(postgres_url: str, nats_url: str, tmp_path_factory: pytest.TempPathFactory
               ) -> AsyncIterator[Shop]:
    await migrate(postgres_url, "orders")
    await migrate(postgres_url, "payments")
    flags_file = tmp_path_factory.mktemp("compensation") / "flags.json"
    flagfile.reset(flags_file)
    exporters: list[InMemorySpanExporter] = []
    # Nothing listens here: inventory cannot release the stock (its reservation expires
    # by itself), and the payments that takes charges cannot reach NATS.
    nowhere = f"http://127.0.0.1:{free_ports(1)[0]}"
    payments_app = create_payments(
        PaymentsSettings(database_url=postgres_url, flags_file=flags_file,
                         nats_url=nowhere.replace("http", "nats")),
        Telemetry("payments", traced(exporters), MeterProvider()))
    payments_app.state.tokens = TOKENS.verifier
    with serve_in_thread(payments_app, lifespan="on") as payments_url:
        telemetry = Telemetry("orders", traced(exporters), MeterProvider())
        orders_app = create_orders(OrdersSettings(
            database_url=postgres_url, nats_url=nats_url, payments_url=payments_url,
            inventory_url=nowhere, catalog_url=nowhere, cart_url=nowhere), telemetry)
        orders_app.state.tokens = TOKENS.verifier
        orders_app.state.service_credentials.source = TOKENS.service_source("orders")
        impatient = ServiceClient("payments", payments_url, orders_app.state.breakers,
                                  timeouts=Timeouts(read=READ_TIMEOUT),
                                  telemetry=telemetry)
        orders_app.state.downstream = dataclasses.replace(orders_app.state.downstream,
                                                          payments=PaymentsClient(impatient))
        async with (orders_app.router.lifespan_context(orders_app),
                    httpx.AsyncClient(transport=httpx.ASGITransport(app=orders_app),
                                      base_url="http://orders") as orders):
            await switch(payments_app, flags_file, "paymentLatency", "1s")
            yield Shop(orders, payments_app, payments_url, flags_file, exporters,
                       postgres_url, nats_url)
        await impatient.aclose()


async def pay(shop: Shop, order_id: uuid.UUID) -> httpx.Response:
    paid = await shop.orders.post(f"/orders/{order_id}/payment", headers=CUSTOMER, json={
        "payment_method": "credit_card", "payment_details": CARD})
    assert paid.status_code == 503, paid.text
    assert paid.json()["type"].endswith("/payments-unavailable")
    assert paid.json()["order_status"] == "cancelled"
    return paid


async def test_a_late_charge_is_refunded_once_payments_hears_of_the_cancellation(
        shop: Shop) -> None:
    async with httpx.AsyncClient(base_url=shop.payments_url) as client:
        ready = await client.get("/health/ready")
    assert ready.status_code == 200, "charges need no NATS: payments is ready without it"

    order_id = await shop.new_order()
    answer = await pay(shop, order_id)

    order = await shop.order(order_id)
    assert order["status"] == "cancelled"
    assert order["cancel_reason"] == "payments did not answer in time; any charge is refunded"

    # The charge finished after orders gave up: money held for a cancelled order, as
    # long as payments has not heard of the cancellation (it has no NATS here).
    async def charged() -> bool:
        return [row["status"] for row in await shop.payments(order_id)] == ["succeeded"]
    await eventually(charged, 10, "the late charge went through")

    # A payments instance that consumes order.cancelled comes up: the event waited in
    # its durable consumer, and the charge is refunded.
    consumer = shop.consumer()
    async with consumer.router.lifespan_context(consumer):
        async def refunded() -> bool:
            return [row["status"] for row in await shop.payments(order_id)] == ["refunded"]
        await eventually(refunded, 15, "payments refunded the late charge")
    (payment,) = await shop.payments(order_id)
    assert payment["refund_reason"] == "order_cancelled"

    # One trace tells it: orders' checkout → its call to payments (timed out) → the
    # charge in payments (finished, 201) → "order cancelled" → the event → the refund.
    checkout = shop.checkout(answer)
    assert checkout.context is not None
    spans = shop.trace(checkout.context.trace_id)
    call = next(s for s in spans if s.kind is SpanKind.CLIENT
                and (s.attributes or {}).get(semconv.PEER_SERVICE) == "payments")
    assert call.status.status_code is StatusCode.ERROR
    charge = next(s for s in spans if s.kind is SpanKind.SERVER and s.name == "POST /charges")
    assert (charge.attributes or {})[semconv.HTTP_RESPONSE_STATUS_CODE] == 201
    assert any(event.name == "order cancelled" for event in checkout.events)
    handled = next(s for s in spans if s.name == "order.cancelled process")
    (refund,) = [event for event in handled.events if event.name.startswith("payment refunded")]
    assert (refund.attributes or {})[semconv.PAYMENT_ID] == str(payment["id"])
    assert handled.end_time is not None and charge.end_time is not None
    assert handled.end_time > charge.end_time


async def test_whichever_comes_first_no_money_is_kept(shop: Shop) -> None:
    """With the consumer running, the cancellation may reach payments before the charge
    finishes (refused) or after (refunded): both end with nothing charged."""
    consumer = shop.consumer()
    async with consumer.router.lifespan_context(consumer):
        order_id = await shop.new_order()
        answer = await pay(shop, order_id)
        checkout = shop.checkout(answer)
        assert checkout.context is not None
        trace_id = checkout.context.trace_id

        def ended(name: str) -> ReadableSpan | None:
            return next((s for s in shop.trace(trace_id) if s.name == name), None)

        async def settled() -> bool:
            return (ended("POST /charges") is not None
                    and ended("order.cancelled process") is not None)
        await eventually(settled, 15, "the charge ended and the cancellation was handled")

    rows = await shop.payments(order_id)
    assert [row["status"] for row in rows] in ([], ["refunded"]), rows
    charge = ended("POST /charges")
    assert charge is not None
    status = (charge.attributes or {})[semconv.HTTP_RESPONSE_STATUS_CODE]
    assert status == (409 if rows == [] else 201), "refused, or taken and then refunded"
    assert (await shop.order(order_id))["status"] == "cancelled"
