"""No client can spend another's rate-limit allowance.

Before: the limit was per address, with `X-Forwarded-For` believed from 127.0.0.1
(uvicorn's default), and logged-in users counted against their address too; one
loopback client sending 6,000 bad requests in 30 s got every other client — logins,
the catalog, the synthetic journeys — a 429 for the rest of the minute.

Now: a logged-in user is counted as that user only, an anonymous request as its
address (the connecting one, or what a *configured* proxy says), and a refused request
is not counted. The gateway runs as `kansoku serve` runs it, over real sockets; Linux
routes all of 127.0.0.0/8 to loopback, so each client has a source address of its own
(httpx's `local_address`).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager
from datetime import datetime, timedelta

import httpx
import pytest

from kansoku.kit.telemetry import Telemetry
from kansoku.services.gateway.app import create_app as create_gateway
from tests.services.shop import Infrastructure, ServedShop, serve_shop
from tests.support import ManualClock, serve_in_thread

LIMIT = 20
FLOODER, NEIGHBOUR, PROXY = "127.0.0.2", "127.0.0.3", "127.0.0.4"


@pytest.fixture(scope="module")
async def shop(postgres_url: str, valkey_url: str, nats_url: str
               ) -> AsyncIterator[ServedShop]:
    async with serve_shop(Infrastructure(postgres_url, valkey_url, nats_url),
                          ["identity", "catalog", "inventory"]) as served:
        yield served


def gateway(shop: ServedShop, **settings: str | int) -> AbstractContextManager[str]:
    """A gateway with small limits whose minute stands still (a window of its own:
    the other tests' counts are elsewhere in time)."""
    clock = ManualClock(datetime(2040, 1, 1) + timedelta(minutes=uuid.uuid4().int % 500_000))
    app = create_gateway(shop.gateway_settings(rate_limit_per_ip=LIMIT,
                                               rate_limit_per_user=LIMIT, **settings),
                         Telemetry("gateway"), clock=clock.time)
    return serve_in_thread(app, lifespan="on")


def client_from(address: str, base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"{base_url}/api/v1", timeout=20,
                             transport=httpx.AsyncHTTPTransport(local_address=address))


async def flood(client: httpx.AsyncClient, **headers: str) -> list[int]:
    """Twice the limit of bad requests: a forged token, an invalid query."""
    forged = {"Authorization": "Bearer not.a.token", **headers}
    return [(await client.get("/products", params={"limit": "many"}, headers=forged)
             ).status_code for _ in range(2 * LIMIT)]


async def test_a_flood_from_one_address_leaves_other_clients_alone(shop: ServedShop) -> None:
    with gateway(shop) as url:
        async with client_from(FLOODER, url) as flooder, \
                client_from(NEIGHBOUR, url) as neighbour:
            logged_in = await flooder.post("/auth/login", json={
                "email": "alice@example.com", "password": "alice-pass-1234"})
            assert logged_in.status_code == 200, logged_in.text
            alice = {"Authorization": f"Bearer {logged_in.json()['access_token']}"}

            statuses = await flood(flooder)
            assert statuses.count(422) == LIMIT - 1 and statuses[-1] == 429
            # Claiming to be someone else changes nothing: no proxy is trusted.
            spoofed = await flood(flooder, **{"X-Forwarded-For": "198.51.100.23"})
            assert set(spoofed) == {429}

            # Another address, and a logged-in user at the flooder's own address.
            assert (await neighbour.get("/products")).status_code == 200
            assert (await neighbour.post("/auth/login", json={
                "email": "alice@example.com", "password": "alice-pass-1234"})
                    ).status_code == 200
            assert (await flooder.get("/users/me", headers=alice)).status_code == 200
            assert (await flooder.get("/products", headers=alice)).status_code == 200


async def test_a_logged_in_user_has_an_allowance_of_their_own(shop: ServedShop) -> None:
    with gateway(shop) as url:
        async with client_from(NEIGHBOUR, url) as client:
            logged_in = await client.post("/auth/login", json={
                "email": "admin@example.com", "password": "admin-pass-1234"})
            admin = {"Authorization": f"Bearer {logged_in.json()['access_token']}"}
            statuses = [(await client.get("/products", headers=admin)).status_code
                        for _ in range(LIMIT + 1)]
            assert statuses[-1] == 429 and "user" in (
                await client.get("/products", headers=admin)).json()["detail"]
            assert (await client.get("/products")).status_code == 200, (
                "the address's own allowance is untouched")


async def test_a_configured_proxy_names_the_client(shop: ServedShop) -> None:
    with gateway(shop, trusted_proxies=PROXY) as url:
        async with client_from(PROXY, url) as proxy:
            statuses = await flood(proxy, **{"X-Forwarded-For": "198.51.100.1"})
            assert statuses[-1] == 429
            other = await proxy.get("/products", headers={"X-Forwarded-For": "198.51.100.2"})
            assert other.status_code == 200, "another client behind the same proxy"
            # A client cannot pick its address by adding its own header in front: the
            # proxy appends the address it saw, and the rightmost untrusted one counts.
            sneaky = await proxy.get("/products", headers={
                "X-Forwarded-For": "203.0.113.9, 198.51.100.1"})
            assert sneaky.status_code == 429
