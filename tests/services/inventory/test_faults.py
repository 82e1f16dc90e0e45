"""inventoryFailure on a real PostgreSQL: stock reads and reservations fail (500) while
it is on, and nothing is reserved by a failed request."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from kansoku.faults import flagfile
from kansoku.kit.telemetry import Telemetry
from kansoku.services.inventory.app import create_app
from kansoku.services.inventory.settings import Settings
from tests.faults import switch
from tests.services.inventory.test_api import ADMIN, ORDERS, TOKENS, stocked
from tests.support import migrate


@pytest.fixture(scope="module")
async def faulty(postgres_url: str, nats_url: str, tmp_path_factory: pytest.TempPathFactory
                 ) -> AsyncIterator[tuple[FastAPI, Path]]:
    await migrate(postgres_url, "inventory")
    flags_file = tmp_path_factory.mktemp("faults") / "flags.json"
    flagfile.reset(flags_file)
    app = create_app(Settings(database_url=postgres_url, nats_url=nats_url,
                              expiry_sweep_seconds=3600, flags_file=flags_file),
                     Telemetry("inventory"))
    app.state.tokens = TOKENS.verifier
    async with app.router.lifespan_context(app):
        yield app, flags_file


async def test_inventory_failure_fails_reads_and_reservations(
        faulty: tuple[FastAPI, Path]) -> None:
    app, flags_file = faulty
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://inventory") as client:
        product = await stocked(client, 5)
        await switch(app, flags_file, "inventoryFailure", "100%")
        read = await client.get("/stock", params={"product_ids": str(product)})
        order = str(uuid.uuid4())
        reserved = await client.post("/reservations", headers=ORDERS, json={
            "order_id": order, "items": [{"product_id": product, "quantity": 2}]})
        assert (read.status_code, reserved.status_code) == (500, 500)
        assert read.json()["type"].endswith("/inventory-failed")
        await switch(app, flags_file, "inventoryFailure", "off")
        level = await client.get(f"/stock/{product}")
        assert level.status_code == 200
        assert level.json()["available"] == 5, "the failed reservation held nothing"
        # At 10%, most requests still work.
        await switch(app, flags_file, "inventoryFailure", "10%")
        answers = [(await client.get(f"/stock/{product}")).status_code for _ in range(40)]
        assert answers.count(200) >= 25 and set(answers) <= {200, 500}
        assert (await client.get("/inventory", headers=ADMIN)).status_code == 200
