"""Request-owned sessions and per-schema migrations, on a real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import event, text

from kansoku.kit.db import Database, DbSession, async_url, redact_url
from kansoku.kit.errors import Problem
from kansoku.kit.migrate import upgrade_schema
from tests.kit.apps import make_app
from tests.support import RestartablePostgres

MIGRATION = '''
import sqlalchemy as sa
from alembic import op

revision = "notes_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("notes", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("body", sa.Text, nullable=False))
    op.execute("ALTER TABLE notes ADD CONSTRAINT notes_body_unique_at_commit "
               "UNIQUE (body) DEFERRABLE INITIALLY DEFERRED")


def downgrade() -> None:
    op.drop_table("notes")
'''


@pytest.fixture(scope="module")
async def notes_db(postgres_url: str, tmp_path_factory: pytest.TempPathFactory
                   ) -> AsyncIterator[Database]:
    versions = tmp_path_factory.mktemp("versions")
    (versions / "0001_notes.py").write_text(MIGRATION)
    await asyncio.to_thread(upgrade_schema, postgres_url, schema="notes", versions=versions)
    # Twice: migrating is idempotent.
    await asyncio.to_thread(upgrade_schema, postgres_url, schema="notes", versions=versions)
    database = Database(postgres_url, schema="notes", application_name="test")
    yield database
    await database.dispose()


async def _count(db: Database) -> int:
    async with db.engine.connect() as connection:
        return int((await connection.execute(text("SELECT count(*) FROM notes"))).scalar_one())


async def test_migrations_live_in_the_service_schema(notes_db: Database, postgres_url: str
                                                     ) -> None:
    connection = await asyncpg.connect(postgres_url)
    try:
        tables = {(row["table_schema"], row["table_name"]) for row in await connection.fetch(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema = 'notes'")}
    finally:
        await connection.close()
    assert tables == {("notes", "notes"), ("notes", "alembic_version")}


async def test_transaction_commits_when_the_block_succeeds(notes_db: Database) -> None:
    before = await _count(notes_db)
    async with notes_db.transaction() as session:
        await session.execute(
            text("INSERT INTO notes (body) VALUES ('kept-' || gen_random_uuid())"))
    assert await _count(notes_db) == before + 1


async def test_transaction_rolls_back_when_the_block_fails(notes_db: Database) -> None:
    before = await _count(notes_db)
    with pytest.raises(RuntimeError):
        async with notes_db.transaction() as session:
            await session.execute(text("INSERT INTO notes (body) VALUES ('lost')"))
            raise RuntimeError("the handler failed")
    assert await _count(notes_db) == before


def notes_app(db: Database) -> httpx.AsyncClient:
    """A route that writes through the request-owned session."""
    app = make_app()
    app.state.db = db

    @app.post("/notes")
    async def add_note(session: DbSession, body: str, fail: bool = False) -> dict[str, str]:
        await session.execute(text("INSERT INTO notes (body) VALUES (:body)"), {"body": body})
        if fail:
            raise Problem(409, "refused", "Refused after writing.")
        return {"saved": body}

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_route_session_is_committed_before_the_answer(notes_db: Database) -> None:
    before = await _count(notes_db)
    async with notes_app(notes_db) as client:
        ok = await client.post("/notes", params={"body": "via route"})
        refused = await client.post("/notes", params={"body": "refused", "fail": True})
    assert ok.status_code == 200
    assert refused.status_code == 409
    assert await _count(notes_db) == before + 1


async def test_a_commit_that_fails_is_an_error_answer_not_a_success(notes_db: Database
                                                                   ) -> None:
    """The unique check is deferred to COMMIT: only a commit before the response can
    turn its failure into the answer."""
    async with notes_app(notes_db) as client:
        first = await client.post("/notes", params={"body": "unique-at-commit"})
        second = await client.post("/notes", params={"body": "unique-at-commit"})
    assert first.status_code == 200
    assert second.status_code == 500
    assert second.headers["content-type"] == "application/problem+json"
    assert "unique-at-commit" not in second.text


async def test_readiness_check(notes_db: Database) -> None:
    await notes_db.check()


def test_urls() -> None:
    assert async_url("postgres://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert async_url("postgresql://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert redact_url("postgresql://u:pw@h:5/db") == "postgresql://u:***@h:5/db"
    assert redact_url("postgresql://u@h/db") == "postgresql://u@h/db"


def test_versions_folder_is_required(tmp_path: Path, postgres_url: str) -> None:
    with pytest.raises(FileNotFoundError, match="no migrations folder"):
        upgrade_schema(postgres_url, schema="empty", versions=tmp_path / "missing")


async def test_a_problem_that_keeps_changes_commits_them(notes_db: Database) -> None:
    before = await _count(notes_db)
    with pytest.raises(Problem):
        async with notes_db.transaction() as session:
            await session.execute(text("INSERT INTO notes (body) VALUES ('compensated')"))
            raise Problem(402, "declined", "Declined, and the decline is on record.",
                          keep_changes=True)
    with pytest.raises(Problem):
        async with notes_db.transaction() as session:
            await session.execute(text("INSERT INTO notes (body) VALUES ('discarded')"))
            raise Problem(409, "conflict", "Nothing of this is kept.")
    assert await _count(notes_db) == before + 1


async def _hold_connections(db: Database, count: int) -> None:
    """Fill the pool: `count` transactions at once, each on its own connection."""
    async def one() -> None:
        async with db.transaction() as session:
            await session.execute(text("SELECT pg_sleep(0.05)"))
    await asyncio.gather(*(one() for _ in range(count)))


async def test_pooled_connections_survive_a_database_restart(tmp_path: Path) -> None:
    """After PostgreSQL restarts, every pooled connection is dead; the next requests get
    new ones instead of errors — without a ping before every checkout."""
    postgres = RestartablePostgres(tmp_path)
    await postgres.start()
    db = Database(postgres.url, schema="public", application_name="restart-test",
                  pool_size=3)
    try:
        await _hold_connections(db, 3)
        assert db.engine.pool.status().count("Connections in pool: 3") == 1
        # The restart waits for the new server to answer: meanwhile the event loop has
        # read the old connections' end.
        await postgres.restart()
        for _ in range(6):  # more than the pool holds: every pooled connection is met
            async with db.transaction() as session:
                assert (await session.execute(text("SELECT 1"))).scalar_one() == 1
        await _hold_connections(db, 3)
    finally:
        await db.dispose()
        await asyncio.to_thread(postgres.stop)


async def test_taking_a_pooled_connection_costs_no_round_trip(notes_db: Database) -> None:
    """No pre-ping: a transaction sends its own statements and nothing else."""
    sent: list[str] = []
    db = Database(notes_db.engine.url.render_as_string(hide_password=False),
                  schema="notes", application_name="statements-test", pool_size=1)

    @event.listens_for(db.engine.sync_engine, "connect")
    def log_queries(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.driver_connection.add_query_logger(
            lambda query: sent.append(query.query))

    try:
        for _ in range(3):
            async with db.transaction() as session:
                await session.execute(text("SELECT count(*) FROM notes"))
    finally:
        await db.dispose()
    # asyncpg's logger sees the statements sent as plain queries: a transaction's own
    # BEGIN and COMMIT; a pre-ping would add a BEGIN and ROLLBACK around its probe.
    assert sent == ["BEGIN;", "COMMIT;"] * 3
