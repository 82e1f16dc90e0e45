"""Identity's signing key is stored encrypted under the service secret, and what happens
when that secret changes (in a database of this module's own)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from kansoku.kit.db import Database
from kansoku.services.identity.service import Signer, load_signer
from tests.support import database_of_its_own, migrate


@pytest.fixture
async def database(postgres_url: str) -> AsyncIterator[Database]:
    url = await database_of_its_own(postgres_url, "signing_keys")
    await migrate(url, "identity")
    opened = Database(url, schema="identity", application_name="signing-key-tests")
    yield opened
    await opened.dispose()


async def stored_pems(database: Database) -> list[str]:
    async with database.transaction() as session:
        rows = await session.execute(text(
            "SELECT private_key_pem FROM identity.signing_keys ORDER BY created_at"))
        return [row[0] for row in rows]


async def signer(database: Database, secret: str) -> Signer:
    async with database.transaction() as session:
        return await load_signer(session, secret)


async def test_the_key_is_stored_sealed_and_opens_with_the_same_secret(database: Database
                                                                       ) -> None:
    first = await signer(database, "secret-one")
    again = await signer(database, "secret-one")
    (pem,) = await stored_pems(database)
    assert pem.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert again.kid == first.kid and again.jwks() == first.jwks()


async def test_another_secret_makes_a_new_key(database: Database,
                                              caplog: pytest.LogCaptureFixture) -> None:
    old = await signer(database, "secret-one")
    with caplog.at_level(logging.WARNING, logger="kansoku.services.identity"):
        new = await signer(database, "secret-two")
    assert new.kid != old.kid
    assert any("signs from now on" in record.getMessage() for record in caplog.records)
    assert (await signer(database, "secret-two")).kid == new.kid, "the new key is kept"
    assert (await signer(database, "secret-one")).kid == old.kid, "the old secret opens its own"


async def test_a_plain_key_from_before_is_sealed_on_start(database: Database) -> None:
    kid, pem = Signer.new_key()
    async with database.transaction() as session:
        await session.execute(text("INSERT INTO identity.signing_keys (kid, private_key_pem) "
                                   "VALUES (:kid, :pem)"), {"kid": kid, "pem": pem})
    assert (await signer(database, "secret-one")).kid == kid
    (stored,) = await stored_pems(database)
    assert stored.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert (await signer(database, "secret-one")).kid == kid
