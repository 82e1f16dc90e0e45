"""Running the services: `kansoku serve NAME` (one service in this process),
`kansoku migrate` (every service's schema and demo data, and the drills' history) and
`kansoku health NAME` (is it ready?) — what the supervisor starts, and how to run
kansoku's services without it (one per container, say: the image in deploy/ names the
service in `KANSOKU_SERVICE`).

The service machinery (uvicorn, SQLAlchemy, Alembic) is imported inside the commands:
every `kansoku` command imports this module, and most never need it.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import time
from pathlib import Path
from typing import Annotated

import typer

from kansoku import topology
from kansoku.commands import health as health_check
from kansoku.commands.common import console, fail, invalid_setting
from kansoku.commands.typer_texts import TranslatedTyper
from kansoku.kit.i18n import _

app = TranslatedTyper()

ServiceName = Annotated[
    str | None,
    typer.Argument(help=_("The service [env: {variable}]").format(
        variable=health_check.SERVICE_VARIABLE), show_default=False),
]


def _service(name: str | None) -> topology.ServiceInfo:
    try:
        return health_check.service_named(name)
    except health_check.UnknownService as exc:
        fail(str(exc), code=2)


@app.command(help=_("Run one service in this process until SIGTERM: what the supervisor "
                    "starts, and how to run services yourself (one per container, say)."))
def serve(name: ServiceName = None) -> None:
    from pydantic import ValidationError

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


@app.command(help=_("Exit 0 if the service on this machine answers /health/ready with 200, "
                    "else say why and exit 1. (The container image's healthcheck runs the "
                    "same check as `python -m kansoku.commands.health`, which starts in a "
                    "tenth of the time.)"))
def health(name: ServiceName = None) -> None:
    problem = health_check.readiness_problem(_service(name))
    if problem is not None:
        fail(problem)


def _package(service: topology.ServiceInfo) -> str:
    """The package a service's app lives in (`kansoku.services.catalog`)."""
    return service.app_factory.split(":")[0].rsplit(".", 1)[0]


@app.command(help=_("Create or upgrade every service's schema and add the demo data "
                    "(needs KANSOKU_DATABASE_URL). Safe to run again: a second run (a "
                    "compose `up` that scales a service, say) changes nothing, fault flags "
                    "included."))
def migrate(
    reset_flags: Annotated[bool, typer.Option(
        "--reset-flags", help=_("Also turn every fault flag off (in KANSOKU_FLAGS_FILE). "
                                "Without it, flags someone switched on stay on; a missing "
                                "flags file is created with every flag off."))] = False,
    wait: Annotated[float | None, typer.Option(
        "--wait", help=_("Migrate nothing: wait up to this many seconds until every schema "
                         "is at its newest migration, which another run (a Kubernetes Job) "
                         "makes; what a pod's init container runs."),
        show_default=False)] = None,
) -> None:
    import asyncio

    from kansoku.kit.db import Database, redact_url
    from kansoku.kit.migrate import applied_revisions, upgrade_schema

    url = os.environ.get("KANSOKU_DATABASE_URL")
    if not url:
        fail(_("KANSOKU_DATABASE_URL is not set — point it at PostgreSQL (kansoku up sets "
               "it for the embedded one)"))

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
        fail(_("KANSOKU_DATABASE_URL={url} is not a URL — use the form "
               "postgresql://user:password@host:5432/database").format(
                   url=repr(redact_url(url))))
    if wait is not None:
        _wait_for_migrations(url, wait)
        return
    migrated = _schemas()
    try:
        # What every schema records, read at once (which also proves the database is
        # there): a schema already current needs no Alembic run.
        applied = asyncio.run(applied_revisions(url, migrated))
    except Exception as exc:
        fail(_("cannot reach the database at {url} ({error}) — check "
               "KANSOKU_DATABASE_URL").format(url=redact_url(url),
                                              error=exc or type(exc).__name__))
    for service in topology.SERVICES:
        if service.name not in migrated:
            continue
        package = _package(service)
        try:
            upgrade_schema(url, schema=service.name, versions=migrated[service.name],
                           applied=applied[service.name])
            message = _("{schema}: schema up to date").format(schema=service.name)
            if importlib.util.find_spec(f"{package}.demo") is not None:
                added = asyncio.run(seed(package, service.name))
                message += (_(", {count} demo rows added").format(count=added) if added
                            else _(", demo data present"))
        except Exception as exc:
            # The traceback is for the log; the line says what failed where.
            logging.getLogger("kansoku.migrate").debug("migration failed", exc_info=True)
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            fail(_("migrating {schema} failed: {error}").format(
                schema=service.name, error=first_line[:300]))
        console.print(message, highlight=False)
    for schema, package in TOOL_SCHEMAS.items():
        try:
            upgrade_schema(url, schema=schema, versions=migrated[schema],
                           applied=applied[schema])
        except Exception as exc:
            logging.getLogger("kansoku.migrate").debug("migration failed", exc_info=True)
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            fail(_("migrating {schema} failed: {error}").format(
                schema=f"{schema} ({package})", error=first_line[:300]))
        console.print(_("{schema}: schema up to date").format(schema=schema),
                      highlight=False)
    console.print(_prepare_flags(reset_flags), highlight=False)


#: Schemas of kansoku's tools that are not services, and the package bringing each one's
#: migrations: the drills' history (`kansoku drill`).
TOOL_SCHEMAS: dict[str, str] = {"drills": "kansoku.drills"}


def _schemas() -> dict[str, Path]:
    """Every schema with migrations (the services', then the tools'), and its versions
    folder."""
    from kansoku.kit.migrate import migrations_folder

    services = {service.name: migrations_folder(_package(service))
                for service in topology.SERVICES
                if migrations_folder(_package(service)).is_dir()}
    return {**services, **{schema: migrations_folder(package)
                           for schema, package in TOOL_SCHEMAS.items()}}


def _wait_for_migrations(url: str, seconds: float) -> None:
    """Return once every schema is at its newest migration; fail after `seconds`."""
    import asyncio

    from kansoku.kit.db import redact_url
    from kansoku.kit.migrate import applied_revisions, newest_revisions

    schemas = _schemas()

    async def behind() -> list[str]:
        try:
            applied = await applied_revisions(url, schemas)
        except Exception:  # not reachable yet
            return list(schemas)
        return [schema for schema, versions in schemas.items()
                if applied[schema] != newest_revisions(versions)]

    deadline = time.monotonic() + seconds
    while late := asyncio.run(behind()):
        if time.monotonic() >= deadline:
            fail(_("the schemas of {schemas} at {url} are not migrated after {seconds} s — "
                   "is the migration job running? (kubectl get jobs)").format(
                       schemas=", ".join(late), url=redact_url(url), seconds=f"{seconds:g}"))
        time.sleep(WAIT_INTERVAL_SECONDS)
    console.print(_("every schema is migrated"), highlight=False)


#: How often `migrate --wait` looks again.
WAIT_INTERVAL_SECONDS = 2.0


def _prepare_flags(reset: bool) -> str:
    """Make sure the flags file exists (every flag off), and turn every flag off only
    when asked: re-running migrate must not undo what an operator switched on."""
    from kansoku.faults import flagfile
    from kansoku.kit.flagkinds import FLAGS_FILE_VARIABLE, OFF

    path = flagfile.default_path()
    if path is None:
        if reset:
            fail(_("--reset-flags needs {variable}: set it to the flags file the services "
                   "read").format(variable=FLAGS_FILE_VARIABLE))
        return _("fault flags: none ({variable} is not set)").format(
            variable=FLAGS_FILE_VARIABLE)
    try:
        if reset or not path.exists():
            flagfile.reset(path)
            return _("fault flags: every flag off ({path})").format(path=path)
        on = [name for name, variant in flagfile.read_variants(path).items()
              if variant != OFF]
    except flagfile.FlagFileError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(_("cannot write the flags file {path}: {error} — check {variable}").format(
            path=path, error=exc.strerror, variable=FLAGS_FILE_VARIABLE))
    return _("fault flags: left as they are, {flags} on ({path}); `kansoku migrate "
             "--reset-flags` turns them off").format(flags=", ".join(on) or _("none"),
                                                     path=path)


#: Random bytes in each generated secret value, written as hex: safe in a URL's
#: password without quoting (the bundled servers' URLs are put together in the pods).
SECRET_BYTES = 24


@app.command("cluster-secret", hidden=True)
def cluster_secret(
    name: Annotated[str, typer.Argument(help="The Secret, in this pod's namespace")],
    keys: Annotated[list[str], typer.Argument(help="The keys it must hold")],
    labels: Annotated[list[str] | None, typer.Option(
        "--label", help="KEY=VALUE labels for a new Secret")] = None,
) -> None:
    """Make sure the Kubernetes Secret NAME holds every KEY: a new Secret, or the keys it
    lacks, get random values; values it holds are kept. The Helm chart's
    pre-install/pre-upgrade hook runs it with the pod's service account, so the
    release's secrets are made once, in the cluster — never by rendering the chart,
    which would make new ones on every render."""
    import secrets

    from lightkube import ApiError, Client, ConfigError, KubeConfig
    from lightkube.models.meta_v1 import ObjectMeta
    from lightkube.resources.core_v1 import Secret

    try:
        client = Client(config=KubeConfig.from_env(), field_manager="kansoku")
    except ConfigError as exc:
        fail(f"cannot reach Kubernetes ({exc}) — this runs in a pod of the chart's hook")
    try:
        try:
            secret = client.get(Secret, name)
        except ApiError as exc:
            if (exc.status.code or exc.response.status_code) != 404:
                raise
            pairs = dict(label.partition("=")[::2] for label in labels or [])
            client.create(Secret(metadata=ObjectMeta(name=name, labels=pairs or None),
                                 type="Opaque",
                                 stringData={key: secrets.token_hex(SECRET_BYTES)
                                             for key in keys}))
            console.print(f"secret {name}: made with {', '.join(keys)}", highlight=False)
            return
        missing = [key for key in keys if key not in (secret.data or {})]
        if missing:
            # The object carries its resourceVersion: a concurrent change is refused.
            secret.stringData = {key: secrets.token_hex(SECRET_BYTES) for key in missing}
            client.replace(secret)
        console.print(f"secret {name}: kept, {', '.join(missing) or 'nothing'} added",
                      highlight=False)
    except ApiError as exc:
        fail(f"Kubernetes answered {exc.status.code or exc.response.status_code} for "
             f"secret {name}: {exc.status.message} — the hook's service account needs "
             "get, create and update on it")
    finally:
        client.close()
