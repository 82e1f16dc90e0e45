"""A caller's own deliberate errors never trip a breaker that everyone shares.

Once, twenty clicks on the lab's "database error" opened the gateway's circuit to the
lab: for five seconds every user's lab calls got 503, repeatable forever. The lab's
deliberate SQL error is the lab working as asked; it marks the answer so
(`kit.http.CALLER_REQUESTED_ERROR_HEADER`), and the gateway's client neither retries it
nor counts it. Losing the lab for real still opens the circuit (`tests/kit/test_http`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from kansoku.kit.http import BreakerPolicy
from tests.services.shop import Infrastructure, ServedShop, serve_shop

ALICE = ("alice@example.com", "alice-pass-1234")
#: Another user of the same gateway (the demo admin is a user too).
OTHER = ("admin@example.com", "admin-pass-1234")


@pytest.fixture(scope="module")
async def lab_shop(postgres_url: str, valkey_url: str, nats_url: str
                   ) -> AsyncIterator[ServedShop]:
    async with serve_shop(Infrastructure(postgres_url, valkey_url, nats_url),
                          ["identity", "catalog", "orders", "lab"]) as served:
        yield served


@pytest.fixture(scope="module")
async def gateway(lab_shop: ServedShop) -> AsyncIterator[FastAPI]:
    app = lab_shop.gateway()
    async with app.router.lifespan_context(app):
        yield app


async def log_in(api: httpx.AsyncClient, email: str, password: str) -> dict[str, str]:
    tokens = (await api.post("/auth/login", json={"email": email,
                                                  "password": password})).json()
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def test_many_deliberate_lab_errors_leave_the_lab_open_for_everyone(
        gateway: FastAPI) -> None:
    many = 4 * BreakerPolicy().failure_threshold
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway),
                                 base_url="http://gw/api/v1", timeout=30) as api:
        alice, other = await log_in(api, *ALICE), await log_in(api, *OTHER)
        for _ in range(many):
            answer = await api.post("/lab/database-error", headers=alice)
            assert answer.status_code == 500, answer.text
            assert answer.json()["status"] == "error", "the lab's own answer, shown"
        others = await api.post("/lab/n-plus-one/fixed", headers=other,
                                json={"parameters": {"limit": 5}})
    assert others.status_code == 200, others.text
    assert gateway.state.gateway.clients.breakers.state("lab") == "closed"
