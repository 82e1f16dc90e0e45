"""The payments service: `create_app` builds it, `kansoku serve payments` runs it."""

from __future__ import annotations

from fastapi import FastAPI

from kansoku.kit.app import build_service_app, start_process_telemetry
from kansoku.kit.connections import Connections
from kansoku.kit.telemetry import Telemetry
from kansoku.services.payments import SERVICE, api
from kansoku.services.payments.models import SCHEMA
from kansoku.services.payments.settings import Settings


def create_app(settings: Settings | None = None, telemetry: Telemetry | None = None) -> FastAPI:
    settings = settings or Settings()
    telemetry = telemetry or start_process_telemetry(SERVICE, settings)
    app = build_service_app(
        service=SERVICE,
        settings=settings,
        telemetry=telemetry,
        description="A simulated card processor: Luhn and expiry checks, test cards that "
                    "decline, tokens; never stores a card number.",
        connections=Connections(SERVICE, settings, telemetry, postgresql_schema=SCHEMA),
    )
    app.include_router(api.router)
    return app
