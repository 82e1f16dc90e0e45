"""A charge that went through reaches its order, even when its answer never does.

Payments is "killed between the charge and the answer": between orders and payments
sits a proxy that hands the charge on, lets payments take the money and commit, and then
breaks the connection to orders instead of passing the answer back — what orders sees
when the payments process dies right after committing. (A real SIGKILL cannot be timed
to land between the commit and the answer; the proxy makes it land there every time.)

Then: orders answers 503 `payment-outcome-unknown` (the charge may have gone through;
paying again never charges twice) and leaves the order waiting; payments'
`payment.succeeded`, relayed from its outbox, settles it — stock committed, order paid,
`order.paid` once; and the customer's retry finds it paid with the same one payment.
Nothing lost, nothing charged twice, nothing stranded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from kansoku.kit.errors import DependencyUnavailable
from tests.services.orders.test_api import TOKENS, customer, pay, placed_order, stock
from tests.services.shop import Infrastructure, ServedShop, serve_shop
from tests.support import eventually, free_ports

ORDERS_TOKEN = TOKENS.service_headers("orders")


@dataclass
class AnswerLosingProxy:
    """Passes requests to `upstream`; for a `POST /charges`, waits for payments' whole
    answer and then closes orders' connection without sending it."""

    port: int
    upstream: str = ""
    #: Whether charges' answers are lost (else they are passed on like any other).
    lose_charges: bool = True
    charges_lost: int = 0
    _server: asyncio.Server | None = field(default=None, repr=False)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, client_reader: asyncio.StreamReader,
                     client_writer: asyncio.StreamWriter) -> None:
        target = urlsplit(self.upstream)
        try:
            while True:
                request = await _read_message(client_reader)
                if not request:
                    return
                upstream_reader, upstream_writer = await asyncio.open_connection(
                    target.hostname, target.port)
                upstream_writer.write(request)
                await upstream_writer.drain()
                answer = await _read_message(upstream_reader)
                upstream_writer.close()
                if self.lose_charges and request.startswith(b"POST /charges "):
                    # Payments has answered, so the charge is committed: now "die".
                    self.charges_lost += 1
                    return
                client_writer.write(answer)
                await client_writer.drain()
        finally:
            client_writer.close()


async def _read_message(reader: asyncio.StreamReader) -> bytes:
    """One HTTP/1.1 message (headers and a Content-Length body); b"" at the end."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return b""
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    return head + (await reader.readexactly(length) if length else b"")


@pytest.fixture(scope="module")
async def proxy() -> AsyncIterator[AnswerLosingProxy]:
    losing = AnswerLosingProxy(free_ports(1)[0])
    await losing.start()
    yield losing
    await losing.stop()


@pytest.fixture(scope="module")
async def shop(postgres_url: str, valkey_url: str, nats_url: str,
               proxy: AnswerLosingProxy) -> AsyncIterator[ServedShop]:
    async with serve_shop(
            Infrastructure(postgres_url, valkey_url, nats_url),
            ["catalog", "inventory", "cart", "payments", "orders"], tokens=TOKENS,
            settings={"orders": {"payments_url": f"http://127.0.0.1:{proxy.port}"}}
    ) as served:
        proxy.upstream = served.urls["payments"]
        yield served


async def _count(postgres_url: str, query: str, *arguments: str) -> int:
    """One `SELECT count(*)` on the session's PostgreSQL."""
    connection = await asyncpg.connect(postgres_url)
    try:
        return int(await connection.fetchval(query, *arguments))
    finally:
        await connection.close()


async def _order_events(postgres_url: str, order_id: str, subject: str) -> int:
    return await _count(postgres_url, "SELECT count(*) FROM orders.outbox WHERE subject = $1 "
                        "AND payload->>'order_id' = $2", subject, order_id)


async def _succeeded_charges(postgres_url: str, order_id: str) -> int:
    return await _count(postgres_url, "SELECT count(*) FROM payments.payments "
                        "WHERE order_id = $1 AND status = 'succeeded'", order_id)


async def test_a_charge_whose_answer_was_lost_pays_its_order_exactly_once(
        shop: ServedShop, proxy: AnswerLosingProxy, postgres_url: str) -> None:
    buyer = customer()
    async with httpx.AsyncClient(base_url=shop.urls["orders"], timeout=30) as orders:
        product, order = await placed_order(shop, orders, buyer, units=5, quantity=2)

        lost = await pay(orders, buyer, order["id"])
        assert proxy.charges_lost == 1
        assert lost.status_code == 503, lost.text
        problem = lost.json()
        assert problem["type"].endswith("/payment-outcome-unknown")
        assert "may have gone through" in problem["detail"]
        assert "cannot connect" not in problem["detail"]

        async def settled() -> bool:
            found = (await orders.get(f"/orders/{order['id']}", headers=buyer)).json()
            return bool(found["status"] == "paid")

        await eventually(settled, 30, "the order settled from payment.succeeded")
        paid = (await orders.get(f"/orders/{order['id']}", headers=buyer)).json()
        level = await stock(shop, product)
        assert (level["on_hand"], level["reserved"]) == (3, 0), "the stock left once"

        # The customer, told to retry, pays again (and loses that answer too): the same
        # one payment, no new charge.
        again = await pay(orders, buyer, order["id"])
    assert proxy.charges_lost == 2
    assert again.status_code == 503
    async with httpx.AsyncClient(base_url=shop.urls["payments"], timeout=30) as payments:
        record = (await payments.get(f"/charges/{paid['payment_id']}",
                                     headers=ORDERS_TOKEN)).json()
    assert record["status"] == "succeeded" and record["order_id"] == order["id"]
    assert await _succeeded_charges(postgres_url, order["id"]) == 1, "charged exactly once"
    assert await _order_events(postgres_url, order["id"], "order.paid") == 1
    assert await _order_events(postgres_url, order["id"], "order.cancelled") == 0


async def test_a_retry_after_a_lost_answer_is_answered_as_paid(
        shop: ServedShop, proxy: AnswerLosingProxy, postgres_url: str) -> None:
    """The retry with payments answering again: 201, the one payment, the order paid —
    whether the event or the retry got there first."""
    buyer = customer()
    async with httpx.AsyncClient(base_url=shop.urls["orders"], timeout=30) as orders:
        _, order = await placed_order(shop, orders, buyer)
        lost = await pay(orders, buyer, order["id"])
        assert lost.status_code == 503, lost.text
        proxy.lose_charges = False
        try:
            retried = await pay(orders, buyer, order["id"])
        finally:
            proxy.lose_charges = True
    assert retried.status_code == 201, retried.text
    assert retried.json()["order_status"] == "paid"
    assert await _succeeded_charges(postgres_url, order["id"]) == 1


async def test_without_a_service_token_nothing_is_charged_and_the_order_waits(
        shop: ServedShop) -> None:
    """Identity refusing orders its token (a wrong service secret, identity away) is
    not payments being away: the order is not cancelled, and the answer names
    identity."""
    buyer = customer()
    credentials = shop.apps["orders"].state.service_credentials
    working = credentials.source

    async def refused() -> tuple[str, float]:
        raise DependencyUnavailable("identity", "it refused a service token (HTTP 401)")

    async with httpx.AsyncClient(base_url=shop.urls["orders"], timeout=30) as orders:
        _, order = await placed_order(shop, orders, buyer)
        credentials.source = refused
        credentials.forget()
        try:
            answer = await pay(orders, buyer, order["id"])
        finally:
            credentials.source = working
        found = (await orders.get(f"/orders/{order['id']}", headers=buyer)).json()
    assert answer.status_code == 503, answer.text
    assert answer.json()["dependency"] == "identity", answer.text
    assert found["status"] == "pending_payment", "not cancelled: nothing was charged"
