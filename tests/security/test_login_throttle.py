"""Guessing passwords is throttled, per account and per address, in identity.

Before: 150 wrong passwords in a row were 150 plain 401s at 13 a second. Now failures
in a row lock logins to the account (whether it exists or not) or from the address for
a while — 429 with Retry-After, doubling with each further failure — counted in
PostgreSQL so every identity instance sees the same locks; each lock is a metric point
and one log line that names no password and no e-mail address.

Identity is served twice on one database, with a clock the test moves and a meter the
test reads; the gateway forwards the client's address (identity believes it from the
gateway only: kit.serve's trusted proxies).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.metrics import Meter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint

from kansoku.kit import semconv
from kansoku.kit.telemetry import Telemetry
from kansoku.services.identity.app import create_app
from kansoku.services.identity.service import LoginThrottle
from kansoku.services.identity.settings import Settings
from tests.services.shop import Infrastructure, ServedShop, serve_shop
from tests.support import ManualClock, migrate, serve_in_thread

PASSWORD = "right-pass-1234"


@pytest.fixture(scope="module")
async def database(postgres_url: str) -> str:
    await migrate(postgres_url, "identity")
    return postgres_url


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


def identity_app(database: str, clock: ManualClock, meter: Meter) -> FastAPI:
    app = create_app(Settings(database_url=database, service_secret="throttle-test-secret"),
                     Telemetry("identity"),
                     clock=clock.utc_now)
    app.state.login_throttle = LoginThrottle(
        account_failures=5, address_failures=20, lock_seconds=30, max_lock_seconds=900,
        memory_seconds=900, meter=meter)
    return app


@asynccontextmanager
async def instance(app: FastAPI, address: str) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(address, 4000)),
            base_url="http://identity") as client:
        yield client


@pytest.fixture
async def identities(database: str, clock: ManualClock, reader: InMemoryMetricReader
                     ) -> AsyncIterator[tuple[FastAPI, FastAPI]]:
    """Two identity instances on one database (each client says where it comes from)."""
    meter = MeterProvider(metric_readers=[reader]).get_meter("kansoku.identity")
    yield identity_app(database, clock, meter), identity_app(database, clock, meter)


def unique_address() -> str:
    value = uuid.uuid4().int
    return f"10.{value % 250}.{(value >> 8) % 250}.{(value >> 16) % 250 + 1}"


async def new_account(client: httpx.AsyncClient) -> str:
    email = f"guess-{uuid.uuid4().hex[:10]}@example.com"
    created = await client.post("/users", json={"name": "Guess Me", "email": email,
                                                "password": PASSWORD})
    assert created.status_code == 201, created.text
    return email


async def attempt(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/auth/login", json={"email": email, "password": password})


def locks(reader: InMemoryMetricReader) -> dict[str, int]:
    counted: dict[str, int] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == semconv.METRIC_LOGIN_LOCKS:
                    for point in metric.data.data_points:
                        assert isinstance(point, NumberDataPoint)
                        counted[str((point.attributes or {})["kind"])] = int(point.value)
    return counted


async def test_an_account_is_locked_after_five_failures_on_any_instance(
        identities: tuple[FastAPI, FastAPI], clock: ManualClock, reader: InMemoryMetricReader,
        caplog: pytest.LogCaptureFixture) -> None:
    first, second = identities
    async with instance(first, unique_address()) as one, \
            instance(second, unique_address()) as other:
        email = await new_account(one)
        with caplog.at_level(logging.WARNING, logger="kansoku.services.identity"):
            wrong = [(await attempt(one if n % 2 else other, email, f"guess-{n}")).status_code
                     for n in range(5)]
        assert wrong == [401] * 5
        # Locked on both instances, even with the right password.
        for client in (one, other):
            locked = await attempt(client, email, PASSWORD)
            assert locked.status_code == 429
            assert locked.headers["retry-after"] == "30"
            assert locked.headers["content-type"] == "application/problem+json"
        assert locks(reader) == {"account": 1}
        (line,) = [r.getMessage() for r in caplog.records if "locked" in r.getMessage()]
        assert "30 s" in line and "5 failures" in line
        assert email not in line and "guess-" not in line

        clock.advance(31)  # the lock is over: the right password works, and clears it
        assert (await attempt(one, email, PASSWORD)).status_code == 200
        assert [(await attempt(other, email, "guess-again")).status_code
                for _ in range(4)] == [401] * 4


async def test_each_failure_past_the_threshold_doubles_the_lock(
        identities: tuple[FastAPI, FastAPI], clock: ManualClock) -> None:
    async with instance(identities[0], unique_address()) as client:
        email = await new_account(client)
        for n in range(5):
            await attempt(client, email, f"guess-{n}")
        waits = []
        for _ in range(3):
            clock.advance(int((await attempt(client, email, "x")).headers["retry-after"]))
            refused = await attempt(client, email, "guess-after-the-lock")
            assert refused.status_code == 401
            waits.append(int((await attempt(client, email, PASSWORD)).headers["retry-after"]))
        assert waits == [60, 120, 240]


async def test_an_unknown_address_is_locked_like_a_known_one(
        identities: tuple[FastAPI, FastAPI]) -> None:
    async with instance(identities[0], unique_address()) as client:
        nobody = f"nobody-{uuid.uuid4().hex[:10]}@example.com"
        statuses = [(await attempt(client, nobody, f"guess-{n}")).status_code
                    for n in range(6)]
    assert statuses == [401] * 5 + [429]


async def test_one_address_guessing_many_accounts_is_locked(
        identities: tuple[FastAPI, FastAPI], reader: InMemoryMetricReader) -> None:
    address = unique_address()
    async with instance(identities[0], address) as client, \
            instance(identities[1], unique_address()) as elsewhere:
        email = await new_account(elsewhere)
        statuses = [(await attempt(client, f"spray-{n}-{uuid.uuid4().hex[:6]}@example.com",
                                   "Summer2026!")).status_code for n in range(21)]
        assert statuses == [401] * 20 + [429]
        # The address is locked for every account; the account, elsewhere, is not.
        assert (await attempt(client, email, PASSWORD)).status_code == 429
        assert (await attempt(elsewhere, email, PASSWORD)).status_code == 200
    assert locks(reader) == {"address": 1}


@pytest.fixture(scope="module")
async def shop(postgres_url: str, valkey_url: str, nats_url: str
               ) -> AsyncIterator[ServedShop]:
    # The lock as configured by default (a served shop turns it off).
    async with serve_shop(Infrastructure(postgres_url, valkey_url, nats_url), ["identity"],
                          settings={"identity": {"login_account_failures": 5,
                                                 "login_address_failures": 20}}) as served:
        yield served


async def test_the_gateway_hands_on_the_lock_and_the_clients_address(shop: ServedShop
                                                                      ) -> None:
    """Through the gateway (real sockets, two client addresses): the lock is a 429 with
    Retry-After, for the API and the login page; identity counted the client's address,
    not the gateway's."""
    app = shop.gateway(rate_limit_per_ip=0)
    with serve_in_thread(app, lifespan="on") as url:
        email = f"gw-{uuid.uuid4().hex[:10]}@example.com"

        def client(address: str) -> httpx.AsyncClient:
            return httpx.AsyncClient(base_url=url, timeout=20, transport=(
                httpx.AsyncHTTPTransport(local_address=address)))

        async with client("127.0.0.5") as guesser, client("127.0.0.6") as owner:
            created = await owner.post("/api/v1/users", json={
                "name": "Gate Way", "email": email, "password": PASSWORD})
            assert created.status_code == 201
            body: dict[str, Any] = {"email": email, "password": "wrong-guess"}
            for _ in range(5):
                assert (await guesser.post("/api/v1/auth/login", json=body)).status_code == 401
            locked = await guesser.post("/api/v1/auth/login", json=body)
            assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
            # 15 more wrong ones elsewhere from the guesser's address: that lock too.
            for n in range(15):
                other = {"email": f"x{n}-{uuid.uuid4().hex[:6]}@example.com",
                         "password": "wrong-guess"}
                await guesser.post("/api/v1/auth/login", json=other)
            spray = await guesser.post("/api/v1/auth/login", json={
                "email": "alice@example.com", "password": "alice-pass-1234"})
            assert spray.status_code == 429
            # The owner's address was never counted: alice logs in from there.
            fine = await owner.post("/api/v1/auth/login", json={
                "email": "alice@example.com", "password": "alice-pass-1234"})
            assert fine.status_code == 200
