"""The Alembic environment shared by every service (see `kansoku.kit.migrate.upgrade_schema`).

It runs one service's migrations inside that service's schema, with the version table
there too. The caller passes `url` and `schema` through `config.attributes`.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

config = context.config
schema: str = config.attributes["schema"]
url: str = config.attributes["url"]


def run_in_connection(connection: Connection) -> None:
    connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    connection.execute(text(f'SET search_path TO "{schema}"'))
    connection.commit()
    context.configure(
        connection=connection,
        version_table_schema=schema,
        target_metadata=config.attributes.get("metadata"),
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_online() -> None:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(run_in_connection)
    finally:
        await engine.dispose()


asyncio.run(run_online())
