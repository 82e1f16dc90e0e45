"""Schema migrations: Alembic, run by `kansoku migrate` and never by a running service.

Every service package with a `migrations/` folder brings its own Alembic versions; the
environment they share is `kit/migrations/env.py`, and each service's version table lives
in its own schema, so services migrate independently. Alembic (and Mako, which it
imports) stays out of the services' processes: only the migrate command imports this.

Most runs find every schema current (each `kansoku up` migrates), so the revisions in
the database are read first, all schemas in one query, and Alembic runs only for a
schema behind its newest version.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from importlib.resources import files
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from kansoku.kit.db import async_url

#: The Alembic environment every service shares; each service brings its own versions.
MIGRATIONS_ENV = Path(__file__).parent / "migrations"


def migrations_folder(package: str) -> Path:
    """A service package's Alembic versions: the `migrations` folder inside it."""
    return Path(str(files(package) / "migrations"))


def _config(url: str, *, schema: str, versions: Path) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_ENV))
    config.set_main_option("version_locations", str(versions))
    config.set_main_option("path_separator", "os")
    config.attributes["url"] = async_url(url)
    config.attributes["schema"] = schema
    return config


def newest_revisions(versions: Path) -> frozenset[str]:
    """The head revision(s) of the migrations in `versions`, read from the files."""
    if not versions.is_dir():
        raise FileNotFoundError(f"no migrations folder at {versions}")
    script = ScriptDirectory.from_config(_config("postgresql://", schema="", versions=versions))
    return frozenset(script.get_heads())


async def applied_revisions(url: str, schemas: Iterable[str]) -> dict[str, frozenset[str]]:
    """The revision each schema's version table records (empty for a schema never
    migrated), read in one query on one connection."""
    wanted = list(schemas)
    # The names go into the query below as identifiers: only plain ones are accepted.
    if not all(schema.isidentifier() for schema in wanted):
        raise ValueError(f"not a schema name kansoku uses: {wanted}")
    engine = create_async_engine(async_url(url), connect_args={"timeout": 5})
    try:
        async with asyncio.timeout(10), engine.connect() as connection:
            present = set((await connection.execute(text(
                "SELECT table_schema FROM information_schema.tables "
                "WHERE table_name = 'alembic_version' AND table_schema = ANY(:schemas)"),
                {"schemas": wanted})).scalars())
            applied: dict[str, frozenset[str]] = {schema: frozenset() for schema in wanted}
            if present:
                # Identifiers cannot be bound parameters; these were checked above.
                union = " UNION ALL ".join(
                    f"SELECT '{schema}' AS schema, version_num "  # noqa: S608
                    f'FROM "{schema}".alembic_version' for schema in sorted(present))
                rows = (await connection.execute(text(union))).all()
                for schema in present:
                    applied[schema] = frozenset(row.version_num for row in rows
                                                if row.schema == schema)
            return applied
    finally:
        await engine.dispose()


def upgrade_schema(url: str, *, schema: str, versions: Path,
                   applied: frozenset[str] | None = None) -> bool:
    """Bring one service's schema up to its newest migration (creating the schema first);
    True if anything was migrated.

    `applied` is the revision the schema records (from `applied_revisions`); when it is
    already the newest, Alembic is not run at all. Without it, Alembic finds out itself.
    """
    if not versions.is_dir():
        raise FileNotFoundError(f"no migrations folder at {versions} for schema {schema}")
    if applied is not None and applied == newest_revisions(versions):
        return False
    command.upgrade(_config(url, schema=schema, versions=versions), "head")
    return True

