"""Abandoned carts on a real Valkey: a cart left with items past the window is counted
exactly once, however many sweeps run; emptied and recently changed carts are not.

The window is a fraction of a second here, so waiting it out costs little.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as redis
from opentelemetry.metrics import Counter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint

from kansoku.kit import semconv
from kansoku.kit.logging import ContextFilter
from kansoku.kit.telemetry import Telemetry
from kansoku.services.cart import service
from kansoku.services.cart.app import create_app
from kansoku.services.cart.schemas import Cart, CartItem
from kansoku.services.cart.settings import Settings
from tests.support import eventually
from tests.tokens import TokenIssuer

WINDOW = 0.3
#: Long enough past the window that a cart left alone is surely idle for it.
PAST_WINDOW = WINDOW + 0.2
ONE_ITEM = CartItem(product_id=7, quantity=1)
TOKENS = TokenIssuer()


@pytest.fixture
def abandonment_url(valkey_url: str) -> str:
    """A Valkey database of this module's own: the active-carts index is one key per
    database, and other tests' carts in it would be counted here too."""
    return valkey_url.rsplit("/", 1)[0] + "/3"


@pytest.fixture
async def valkey(abandonment_url: str) -> AsyncIterator[redis.Redis]:
    client = redis.from_url(abandonment_url)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def abandoned(reader: InMemoryMetricReader) -> Counter:
    return service.abandoned_carts_counter(
        MeterProvider(metric_readers=[reader]).get_meter("kansoku.cart"))


def abandoned_total(reader: InMemoryMetricReader) -> int:
    """What the abandoned-carts counter says so far (0 before its first use)."""
    data = reader.get_metrics_data()
    total = 0
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == semconv.METRIC_CART_ABANDONED:
                    for point in metric.data.data_points:
                        assert isinstance(point, NumberDataPoint)
                        total += int(point.value)
    return total


async def test_an_idle_cart_is_counted_once_even_by_concurrent_sweeps(
        valkey: redis.Redis, abandonment_url: str, abandoned: Counter,
        reader: InMemoryMetricReader) -> None:
    users = [f"idle-{n}" for n in range(20)]
    for user in users:
        await service.add(valkey, user, ONE_ITEM)
    await asyncio.sleep(PAST_WINDOW)

    # Four cart instances, each with its own connection, sweeping at the same moment.
    instances = [redis.from_url(abandonment_url) for _ in range(4)]
    try:
        counts = await asyncio.gather(*(
            service.count_abandoned_carts(instance, WINDOW, abandoned)
            for instance in instances))
        again = await service.count_abandoned_carts(valkey, WINDOW, abandoned)
    finally:
        for instance in instances:
            await instance.aclose()

    assert sum(counts) == len(users)
    assert again == 0, "a cart already counted must not be counted by a later sweep"
    assert abandoned_total(reader) == len(users)


async def test_emptied_and_checked_out_carts_are_not_counted(
        valkey: redis.Redis, abandoned: Counter, reader: InMemoryMetricReader) -> None:
    for user in ("set-to-zero", "line-removed", "checked-out", "left-with-items"):
        await service.add(valkey, user, ONE_ITEM)
    await service.change(valkey, "set-to-zero", ONE_ITEM.product_id, 0)
    await service.remove(valkey, "line-removed", ONE_ITEM.product_id)
    await service.clear(valkey, "checked-out")  # what orders calls once the order is placed
    await asyncio.sleep(PAST_WINDOW)

    assert await service.count_abandoned_carts(valkey, WINDOW, abandoned) == 1
    assert abandoned_total(reader) == 1, "only the cart that still has items"


async def test_a_change_restarts_the_window(
        valkey: redis.Redis, abandoned: Counter, reader: InMemoryMetricReader) -> None:
    await service.add(valkey, "left-alone", ONE_ITEM)
    await service.add(valkey, "came-back", ONE_ITEM)
    await asyncio.sleep(PAST_WINDOW)
    await service.change(valkey, "came-back", ONE_ITEM.product_id, 3)

    assert await service.count_abandoned_carts(valkey, WINDOW, abandoned) == 1
    assert await service.cart(valkey, "came-back") == Cart(
        items=[CartItem(product_id=ONE_ITEM.product_id, quantity=3)]), \
        "counting a cart abandoned must not touch the cart itself"

    await asyncio.sleep(PAST_WINDOW)
    assert await service.count_abandoned_carts(valkey, WINDOW, abandoned) == 1
    assert abandoned_total(reader) == 2


async def test_the_running_service_counts_and_logs_abandoned_carts(
        valkey: redis.Redis, abandonment_url: str, reader: InMemoryMetricReader,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kansoku.services.cart")
    # The service's log handlers stamp the user id from baggage; so does this one.
    caplog.handler.addFilter(ContextFilter())
    settings = Settings(redis_url=abandonment_url, abandon_after_seconds=WINDOW,
                        abandon_sweep_seconds=0.05)
    app = create_app(settings, Telemetry("cart", meter_provider=MeterProvider(
        metric_readers=[reader])))
    app.state.tokens = TOKENS.verifier
    async with (app.router.lifespan_context(app),
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                  base_url="http://cart") as client):
        added = await client.post("/cart/items", json=ONE_ITEM.model_dump(),
                                  headers=TOKENS.headers(user_id="walked-away"))
        assert added.status_code == 200

        async def counted() -> bool:
            return abandoned_total(reader) > 0

        await eventually(counted, 5, "the background sweep counting the abandoned cart")
        await asyncio.sleep(0.2)  # a few more sweeps, which must find nothing new
        assert abandoned_total(reader) == 1

    lines = [record for record in caplog.records if "cart abandoned" in record.message]
    assert len(lines) == 1
    assert getattr(lines[0], "user_id", None) == "walked-away"
