"""cartCacheOutage on a real Valkey: while it is on, the cart's Valkey calls fail with
the client's own connection error (500), and the carts are all there once it is off."""

from __future__ import annotations

import httpx
import pytest

from kansoku.faults import flagfile
from kansoku.kit.telemetry import Telemetry
from kansoku.services.cart.app import create_app
from kansoku.services.cart.settings import Settings
from tests.faults import switch
from tests.services.cart.test_api import TOKENS


async def test_cache_outage_fails_cart_calls_until_it_is_off(
        valkey_url: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    flags_file = tmp_path_factory.mktemp("faults") / "flags.json"
    flagfile.reset(flags_file)
    app = create_app(Settings(redis_url=valkey_url, flags_file=flags_file), Telemetry("cart"))
    app.state.tokens = TOKENS.verifier
    me = TOKENS.headers(user_id="cart-outage-user")
    async with (app.router.lifespan_context(app),
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                  base_url="http://cart") as cart):
        await cart.post("/cart/items", json={"product_id": 7, "quantity": 2}, headers=me)
        await switch(app, flags_file, "cartCacheOutage", "on")
        failed = await cart.get("/cart", headers=me)
        assert failed.status_code == 500
        assert failed.json()["type"].endswith("/internal-error")
        await switch(app, flags_file, "cartCacheOutage", "off")
        back = await cart.get("/cart", headers=me)
    assert back.json()["items"] == [{"product_id": 7, "quantity": 2}]
