"""The explorer: `create_app` builds it, `kansoku serve explorer` runs it on two ports."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from kansoku.explorer import SERVICE, api, pages
from kansoku.explorer.settings import Settings
from kansoku.explorer.store import TelemetryStore
from kansoku.kit.app import build_service_app
from kansoku.kit.logging import setup_logging
from kansoku.kit.telemetry import Telemetry

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    # The explorer does not trace itself: its spans would be sent to itself, and every
    # export would produce more to export.
    setup_logging(SERVICE, settings.effective_log_level)
    store = TelemetryStore(settings.db_path, max_pending_rows=settings.max_pending_rows,
                           memory_limit=settings.memory_limit, threads=settings.threads)

    async def enforce_retention() -> None:
        while True:
            await asyncio.sleep(settings.retention_check_seconds)
            try:
                deleted = await asyncio.to_thread(
                    store.enforce_retention, max_age_seconds=settings.retention_hours * 3600,
                    max_bytes=settings.retention_bytes)
                if deleted:
                    logger.info("retention: deleted %d old rows", deleted)
            except Exception:
                logger.exception("retention failed; trying again later")

    async def close_store() -> None:
        await asyncio.to_thread(store.close)

    app = build_service_app(
        service=SERVICE,
        settings=settings,
        telemetry=Telemetry(SERVICE),
        description="Receives OTLP (traces, metrics, logs) into an embedded DuckDB store "
                    "and answers questions about it: the Jaeger query API, RED, the "
                    "service map, logs.",
        # Exports arrive every few seconds from every service: not worth a log line each.
        quiet_paths=("/v1/",),
        background=[enforce_retention],
        on_shutdown=[close_store],
    )
    app.state.store = store
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.include_router(pages.router)
    app.include_router(api.router)
    return app
