"""The explorer: `create_app` builds it, `kansoku serve explorer` runs it on two ports."""

from __future__ import annotations

from fastapi import FastAPI

from kansoku.explorer import SERVICE, api
from kansoku.explorer.settings import Settings
from kansoku.explorer.store import TelemetryStore
from kansoku.kit.app import build_service_app
from kansoku.kit.logging import setup_logging
from kansoku.kit.telemetry import Telemetry


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    # The explorer does not trace itself: its spans would be sent to itself, and every
    # export would produce more to export.
    setup_logging(SERVICE, settings.effective_log_level)
    app = build_service_app(
        service=SERVICE,
        settings=settings,
        telemetry=Telemetry(SERVICE),
        description="Receives OTLP and answers questions about the telemetry it holds.",
        # Exports arrive every few seconds from every service: not worth a log line each.
        quiet_paths=("/v1/",),
    )
    app.state.store = TelemetryStore(max_spans=settings.max_spans)
    app.include_router(api.router)
    return app
