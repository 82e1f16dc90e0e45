"""The catalog on a real PostgreSQL and Valkey, migrated and seeded the way `kansoku
migrate` does; one app per test module."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from kansoku.kit.telemetry import Telemetry
from kansoku.services.catalog import demo
from kansoku.services.catalog.app import create_app
from kansoku.services.catalog.settings import Settings
from tests.support import migrate
from tests.tokens import TokenIssuer

TOKENS = TokenIssuer()
ADMIN = TOKENS.headers("admin")


@pytest.fixture(scope="module")
async def catalog(postgres_url: str, valkey_url: str, nats_url: str
                  ) -> AsyncIterator[httpx.AsyncClient]:
    await migrate(postgres_url, "catalog")
    app = create_app(Settings(database_url=postgres_url, redis_url=valkey_url,
                              nats_url=nats_url),
                     Telemetry("catalog"))
    app.state.tokens = TOKENS.verifier
    db = app.state.db
    async with db.transaction() as session:
        await demo.seed(session)
    async with db.transaction() as session:
        assert await demo.seed(session) == 0, "seeding twice must add nothing"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://catalog") as client:
        yield client
    await db.dispose()


