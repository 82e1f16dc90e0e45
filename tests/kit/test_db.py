"""Request-owned sessions and per-schema migrations, on a real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text

from kansoku.kit.db import Database, async_url, redact_url, upgrade_schema

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


async def test_session_commits_when_the_request_succeeds(notes_db: Database) -> None:
    before = await _count(notes_db)
    async for session in notes_db.session():
        await session.execute(text("INSERT INTO notes (body) VALUES ('kept')"))
    assert await _count(notes_db) == before + 1


async def test_session_rolls_back_when_the_request_fails(notes_db: Database) -> None:
    before = await _count(notes_db)
    sessions = notes_db.session()
    session = await anext(sessions)
    await session.execute(text("INSERT INTO notes (body) VALUES ('lost')"))
    with pytest.raises(RuntimeError):
        await sessions.athrow(RuntimeError("the handler failed"))
    assert await _count(notes_db) == before


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
