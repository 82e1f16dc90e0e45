"""The catalog's faults on a real PostgreSQL and Valkey: catalogNPlusOne really sends a
statement per product, catalogSlowQuery really sleeps inside the product query (once,
not per row), dbConnectionLoss really loses the database and gets it back."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from kansoku.faults import flagfile
from kansoku.kit.telemetry import Telemetry
from kansoku.services.catalog import demo
from kansoku.services.catalog.app import create_app
from kansoku.services.catalog.settings import Settings
from tests.faults import switch
from tests.support import migrate


@dataclass
class Catalog:
    app: FastAPI
    client: httpx.AsyncClient
    flags_file: Path
    statements: list[str] = field(default_factory=list)

    async def switch(self, name: str, variant: str) -> None:
        await switch(self.app, self.flags_file, name, variant)


@pytest.fixture(scope="module")
async def catalog(postgres_url: str, valkey_url: str, nats_url: str,
                  tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Catalog]:
    await migrate(postgres_url, "catalog")
    flags_file = tmp_path_factory.mktemp("faults") / "flags.json"
    flagfile.reset(flags_file)
    app = create_app(Settings(database_url=postgres_url, redis_url=valkey_url,
                              nats_url=nats_url, flags_file=flags_file), Telemetry("catalog"))
    async with app.state.db.transaction() as session:
        await demo.seed(session)
    async with (app.router.lifespan_context(app),
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                  base_url="http://catalog") as client):
        found = Catalog(app, client, flags_file)

        def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            found.statements.append(statement)
        event.listen(app.state.db.engine.sync_engine, "before_cursor_execute", count)
        yield found
    await app.state.db.dispose()


@pytest.fixture(autouse=True)
def flags_off(catalog: Catalog) -> None:
    flagfile.reset(catalog.flags_file)


async def test_n_plus_one_sends_one_query_per_product(catalog: Catalog) -> None:
    await catalog.switch("catalogNPlusOne", "on")
    catalog.statements.clear()
    faulty = await catalog.client.get("/products", params={"limit": 12})
    assert faulty.status_code == 200 and len(faulty.json()["items"]) == 12
    per_product = [s for s in catalog.statements if "FROM catalog.categories" in s]
    assert len(per_product) == 12, catalog.statements
    await catalog.switch("catalogNPlusOne", "off")
    catalog.statements.clear()
    normal = await catalog.client.get("/products", params={"limit": 12, "sort": "id"})
    assert normal.json()["items"] == faulty.json()["items"], "the same page, loaded well"
    assert len(catalog.statements) <= 2


async def test_slow_query_sleeps_in_the_product_statement_once(catalog: Catalog) -> None:
    await catalog.switch("catalogSlowQuery", "on")
    catalog.statements.clear()
    started = time.monotonic()
    answer = await catalog.client.get("/products", params={"limit": 5, "category": "telescopes"})
    elapsed = time.monotonic() - started
    assert answer.status_code == 200 and answer.json()["items"]
    slow = [s for s in catalog.statements if "pg_sleep" in s]
    assert len(slow) == 1 and "FROM catalog.products" in slow[0]
    assert 2.0 <= elapsed < 3.5, "slept once, not once per row"


async def test_db_connection_loss_fails_requests_until_it_is_off(catalog: Catalog) -> None:
    await catalog.switch("dbConnectionLoss", "on")
    lost = await catalog.client.get("/categories")
    assert lost.status_code == 500
    ready = await catalog.client.get("/health/ready")
    assert ready.status_code == 503
    await catalog.switch("dbConnectionLoss", "off")
    back = await catalog.client.get("/categories")
    assert back.status_code == 200 and back.json()
