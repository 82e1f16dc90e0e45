"""PostgreSQL access: an async engine per service and request-owned sessions.

A service reads and writes only its own schema; the engine sets `search_path` to it, so
SQL in `store.py` names tables without a schema prefix.

Sessions belong to the request (`DbSession`): committed when the route returned, rolled
back when it raised, before the response leaves. Service code never commits.

Migrations are `kit/migrate.py`'s, run by `kansoku migrate`: a service never imports
Alembic.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit

from fastapi import Depends, Request
from sqlalchemy import event, exc, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from kansoku.kit.errors import Problem

#: A pooled connection older than this is closed and replaced when next taken from the
#: pool: it bounds how long a connection a server or proxy between dropped silently can
#: stay in the pool (PgBouncer, a cloud load balancer's idle timeout).
POOL_RECYCLE_SECONDS = 1800


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
        # No pre-ping: it costs a round trip on every checkout (several per request).
        # A connection the server closed is noticed locally instead (`_drop_closed`).
        pool_recycle=POOL_RECYCLE_SECONDS,
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


def _drop_closed(dbapi_connection: Any, connection_record: Any, proxy: Any) -> None:
    """Pool checkout hook: refuse a connection the server has closed — PostgreSQL
    restarted, or the backend was terminated — so the pool replaces it with a new one
    before the request uses it.

    asyncpg notices the server closing the socket as soon as the event loop reads it,
    so this is a look at local state, not the round trip `pool_pre_ping` makes. Raising
    `DisconnectionError` here is SQLAlchemy's way to say "discard and retry" (up to three
    times per checkout).
    """
    if dbapi_connection.driver_connection.is_closed():
        raise exc.DisconnectionError("the server closed this pooled connection")


def drop_closed_connections(engine: AsyncEngine) -> None:
    """Make `engine`'s pool replace connections the server closed when they are taken."""
    event.listen(engine.sync_engine, "checkout", _drop_closed)


class Database:
    """One service's connection pool and the sessions its requests use."""

    def __init__(self, url: str, *, schema: str, application_name: str, pool_size: int = 10):
        self.schema = schema
        self.engine = create_engine(url, schema=schema, application_name=application_name,
                                    pool_size=pool_size)
        drop_closed_connections(self.engine)
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
