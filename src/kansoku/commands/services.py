"""Running the services: `kansoku serve NAME` (one service in this process),
`kansoku migrate` (every service's schema and demo data) and `kansoku health NAME` (is
it ready?) — what the supervisor starts, and how to run kansoku's services without it
(one per container, say: the image in deploy/ names the service in `KANSOKU_SERVICE`).

The service machinery (uvicorn, SQLAlchemy, Alembic) is imported inside the commands:
every `kansoku` command imports this module, and most never need it.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import logging
import os
from typing import Annotated

import typer
from pydantic import ValidationError

from kansoku import topology
from kansoku.commands import health as health_check
from kansoku.commands.common import console, fail, invalid_setting

app = typer.Typer()

ServiceName = Annotated[
    str | None,
    typer.Argument(help=f"The service [env: {health_check.SERVICE_VARIABLE}]",
                   show_default=False),
]


def _service(name: str | None) -> topology.ServiceInfo:
    try:
        return health_check.service_named(name)
    except health_check.UnknownService as exc:
        fail(str(exc), code=2)


@app.command()
def serve(name: ServiceName = None) -> None:
    """Run one service in this process until SIGTERM: what the supervisor starts, and
    how to run services yourself (one per container, say)."""
    from kansoku.kit.serve import PortUnavailable
    from kansoku.kit.serve import serve as run_server
    from kansoku.kit.settings import ConfigurationError

    info = _service(name)
    name = info.name
    module_name, factory_name = info.app_factory.split(":")
    factory = getattr(importlib.import_module(module_name), factory_name)
    try:
        service_app = factory()
        settings = service_app.state.settings
        run_server(service_app, host=settings.host, ports=settings.listen_ports(),
                   graceful_shutdown_seconds=settings.graceful_shutdown_seconds,
                   trusted_proxies=settings.trusted_proxies,
                   header_timeout=settings.header_timeout, body_timeout=settings.body_timeout)
    except ValidationError as exc:
        invalid_setting(exc, prefix=f"KANSOKU_{name.upper()}_")
    except (ConfigurationError, PortUnavailable) as exc:
        fail(f"{name}: {exc}", code=2)


@app.command()
def health(name: ServiceName = None) -> None:
    """Exit 0 if the service on this machine answers /health/ready with 200, else say
    why and exit 1. (The container image's healthcheck runs the same check as
    `python -m kansoku.commands.health`, which starts in a tenth of the time.)"""
    problem = health_check.readiness_problem(_service(name))
    if problem is not None:
        fail(problem)


def _package(service: topology.ServiceInfo) -> str:
    """The package a service's app lives in (`kansoku.services.catalog`)."""
    return service.app_factory.split(":")[0].rsplit(".", 1)[0]


@app.command()
def migrate() -> None:
    """Create or upgrade every service's schema and add the demo data (needs
    KANSOKU_DATABASE_URL). Safe to run again."""
    from kansoku.kit.db import Database, redact_url
    from kansoku.kit.migrate import applied_revisions, migrations_folder, upgrade_schema

    url = os.environ.get("KANSOKU_DATABASE_URL")
    if not url:
        fail("KANSOKU_DATABASE_URL is not set — point it at PostgreSQL "
             "(kansoku up sets it for the embedded one)")

    async def seed(package: str, schema: str) -> int:
        demo = importlib.import_module(f"{package}.demo")
        database = Database(url, schema=schema, application_name="kansoku-migrate")
        try:
            async with database.transaction() as session:
                added: int = await demo.seed(session)
            return added
        finally:
            await database.dispose()

    if "://" not in url:
        fail(f"KANSOKU_DATABASE_URL={redact_url(url)!r} is not a URL — use the form "
             "postgresql://user:password@host:5432/database")
    migrated = {service.name: migrations_folder(_package(service))
                for service in topology.SERVICES
                if migrations_folder(_package(service)).is_dir()}
    try:
        # What every schema records, read at once (which also proves the database is
        # there): a schema already current needs no Alembic run.
        applied = asyncio.run(applied_revisions(url, migrated))
    except Exception as exc:
        fail(f"cannot reach the database at {redact_url(url)} ({exc or type(exc).__name__}) "
             "— check KANSOKU_DATABASE_URL")
    for service in topology.SERVICES:
        if service.name not in migrated:
            continue
        package = _package(service)
        try:
            upgrade_schema(url, schema=service.name, versions=migrated[service.name],
                           applied=applied[service.name])
            message = f"{service.name}: schema up to date"
            if importlib.util.find_spec(f"{package}.demo") is not None:
                added = asyncio.run(seed(package, service.name))
                message += f", {added} demo rows added" if added else ", demo data present"
        except Exception as exc:
            # The traceback is for the log; the line says what failed where.
            logging.getLogger("kansoku.migrate").debug("migration failed", exc_info=True)
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            fail(f"migrating {service.name} failed: {first_line[:300]}")
        console.print(message, highlight=False)
