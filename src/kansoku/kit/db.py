"""PostgreSQL access: an async engine per service, request-owned sessions, migrations.

A service reads and writes only its own schema; the engine sets `search_path` to it, so
SQL in `store.py` names tables without a schema prefix.

Sessions belong to the request (`DbSession`): committed when the route returned, rolled
back when it raised, before the response leaves. Service code never commits.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit

from alembic import command
from alembic.config import Config
from fastapi import Depends, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from kansoku.kit.errors import Problem

#: The Alembic environment every service shares; each service brings its own versions.
MIGRATIONS_ENV = Path(__file__).parent / "migrations"


def async_url(url: str) -> str:
    """Accept the URL forms people paste (postgres://, postgresql://) and use asyncpg."""
    scheme, rest = url.split("://", 1)
    if scheme in ("postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2"):
        scheme = "postgresql+asyncpg"
    return f"{scheme}://{rest}"


def redact_url(url: str) -> str:
    """The URL with its password replaced, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def create_engine(
    url: str, *, schema: str, application_name: str, pool_size: int = 10, **kwargs: Any
) -> AsyncEngine:
    return create_async_engine(
        async_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        # Past this a request gets 503 "busy" (see kit.errors) rather than waiting on.
        pool_timeout=10,
        # Error messages (which reach logs and spans) name the statement, never the
        # values bound to it: those can be e-mail addresses or password hashes.
        hide_parameters=True,
        connect_args={
            "timeout": 5,
            "server_settings": {"search_path": schema, "application_name": application_name},
        },
        **kwargs,
    )


class Database:
    """One service's connection pool and the sessions its requests use."""

    def __init__(self, url: str, *, schema: str, application_name: str, pool_size: int = 10):
        self.schema = schema
        self.engine = create_engine(url, schema=schema, application_name=application_name,
                                    pool_size=pool_size)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session whose work is committed when the block ends normally and rolled back
        when it raises; its connection goes back to the pool either way."""
        async with self._sessions() as session:
            try:
                yield session
            except Problem as problem:
                if problem.keep_changes:
                    await session.commit()
                else:
                    await session.rollback()
                raise
            except BaseException:
                await session.rollback()
                raise
            await session.commit()

    async def check(self) -> None:
        """Readiness: the database answers a trivial query."""
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def migrations_folder(package: str) -> Path:
    """A service package's Alembic versions: the `migrations` folder inside it."""
    return Path(str(files(package) / "migrations"))


def upgrade_schema(url: str, *, schema: str, versions: Path) -> None:
    """Bring one service's schema up to its newest migration (creating the schema first).

    Runs Alembic with the shared environment in `kit/migrations` and the service's own
    `versions` folder; the version table lives in the service's schema, so services
    migrate independently.
    """
    if not versions.is_dir():
        raise FileNotFoundError(f"no migrations folder at {versions} for schema {schema}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_ENV))
    config.set_main_option("version_locations", str(versions))
    config.set_main_option("path_separator", "os")
    config.attributes["url"] = async_url(url)
    config.attributes["schema"] = schema
    command.upgrade(config, "head")


async def check_reachable(url: str, timeout: float = 5.0) -> None:
    """Raise if the database at `url` cannot be reached and queried within `timeout`."""
    engine = create_async_engine(async_url(url), connect_args={"timeout": timeout})
    try:
        async with asyncio.timeout(timeout + 1), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    finally:
        await engine.dispose()


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    database: Database = request.app.state.db
    async with database.transaction() as session:
        yield session


#: Use as a route parameter type: `session: DbSession`. The service's app must put its
#: `Database` at `app.state.db`. The scope "function" ends the transaction when the
#: route returns and *before* the response is sent, so a commit that fails becomes an
#: error answer instead of a success for data that was never saved.
DbSession = Annotated[AsyncSession, Depends(_request_session, scope="function")]
