"""The cart on a real Valkey: each user's own cart, quantities capped, lines removed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from kansoku.kit.telemetry import Telemetry
from kansoku.services.cart.app import create_app
from kansoku.services.cart.settings import Settings
from tests.tokens import TokenIssuer

TOKENS = TokenIssuer()


@pytest.fixture
async def cart(valkey_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(redis_url=valkey_url), Telemetry("cart"))
    app.state.tokens = TOKENS.verifier
    async with (app.router.lifespan_context(app),
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                  base_url="http://cart") as client):
        yield client


async def test_add_change_remove(cart: httpx.AsyncClient) -> None:
    me = TOKENS.headers(user_id="cart-user-1")
    await cart.post("/cart/items", json={"product_id": 5, "quantity": 2}, headers=me)
    added = await cart.post("/cart/items", json={"product_id": 5, "quantity": 3}, headers=me)
    await cart.post("/cart/items", json={"product_id": 2, "quantity": 1}, headers=me)
    assert added.json()["items"] == [{"product_id": 5, "quantity": 5}]
    changed = await cart.patch("/cart/items/5", json={"quantity": 1}, headers=me)
    assert changed.json()["items"] == [{"product_id": 2, "quantity": 1},
                                       {"product_id": 5, "quantity": 1}]
    removed = await cart.delete("/cart/items/2", headers=me)
    assert removed.json()["items"] == [{"product_id": 5, "quantity": 1}]
    zero = await cart.patch("/cart/items/5", json={"quantity": 0}, headers=me)
    assert zero.json()["items"] == []
    missing = await cart.delete("/cart/items/5", headers=me)
    assert missing.status_code == 404


async def test_quantities_are_capped_and_validated(cart: httpx.AsyncClient) -> None:
    me = TOKENS.headers(user_id="cart-user-2")
    await cart.post("/cart/items", json={"product_id": 9, "quantity": 90}, headers=me)
    capped = await cart.post("/cart/items", json={"product_id": 9, "quantity": 50}, headers=me)
    assert capped.json()["items"] == [{"product_id": 9, "quantity": 99}]
    bad = await cart.post("/cart/items", json={"product_id": 9, "quantity": 0}, headers=me)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "quantity"


async def test_each_user_sees_only_their_own_cart(cart: httpx.AsyncClient) -> None:
    alice, bob = TOKENS.headers(user_id="alice-3"), TOKENS.headers(user_id="bob-3")
    await cart.post("/cart/items", json={"product_id": 1, "quantity": 1}, headers=alice)
    assert (await cart.get("/cart", headers=bob)).json()["items"] == []
    assert (await cart.get("/cart")).status_code == 401
    assert (await cart.delete("/cart", headers=alice)).status_code == 204
    assert (await cart.get("/cart", headers=alice)).json()["items"] == []
