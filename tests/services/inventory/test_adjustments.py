"""The history of manual stock changes (the admin's inventory page shows it), on a real
PostgreSQL: newest first, with reason and actor, and for admins only."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from kansoku.kit.telemetry import Telemetry
from kansoku.services.inventory.app import create_app
from kansoku.services.inventory.settings import Settings
from tests.support import migrate
from tests.tokens import TokenIssuer

TOKENS = TokenIssuer()
_next_product = iter(range(30_000, 40_000))


@pytest.fixture(scope="module")
async def inventory(postgres_url: str, nats_url: str) -> AsyncIterator[httpx.AsyncClient]:
    await migrate(postgres_url, "inventory")
    app = create_app(Settings(database_url=postgres_url, nats_url=nats_url,
                              expiry_sweep_seconds=3600), Telemetry("inventory"))
    app.state.tokens = TOKENS.verifier
    async with (app.router.lifespan_context(app),
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                  base_url="http://inventory") as client):
        yield client


async def test_adjustments_newest_first_with_reason_and_actor(inventory: httpx.AsyncClient
                                                             ) -> None:
    product_id = next(_next_product)
    admin_id = "admin-who-counted"
    admin = TOKENS.headers("admin", user_id=admin_id)
    for delta, reason in ((10, "first delivery"), (-2, "damaged"), (5, "restock")):
        changed = await inventory.post(f"/inventory/{product_id}/adjust", headers=admin,
                                       json={"delta": delta, "reason": reason})
        assert changed.status_code == 200, changed.text
    refused = await inventory.post(f"/inventory/{product_id}/adjust", headers=admin,
                                   json={"delta": -100, "reason": "too many"})
    assert refused.status_code == 409

    history = await inventory.get(f"/inventory/{product_id}/adjustments", headers=admin)

    assert history.status_code == 200
    rows = history.json()
    assert [(row["delta"], row["reason"]) for row in rows] == [
        (5, "restock"), (-2, "damaged"), (10, "first delivery")], "a refused one is not kept"
    assert {row["actor"] for row in rows} == {admin_id}
    limited = await inventory.get(f"/inventory/{product_id}/adjustments",
                                  params={"limit": 1}, headers=admin)
    assert [row["reason"] for row in limited.json()] == ["restock"]


async def test_only_admins_see_adjustments(inventory: httpx.AsyncClient) -> None:
    assert (await inventory.get("/inventory/1/adjustments")).status_code == 401
    customer = await inventory.get("/inventory/1/adjustments", headers=TOKENS.headers())
    assert customer.status_code == 403
    untrusted = TokenIssuer().headers("admin")  # signed by a key inventory does not know
    assert (await inventory.get("/inventory/1/adjustments",
                                headers=untrusted)).status_code == 401
