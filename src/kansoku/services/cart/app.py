"""The cart service: `create_app` builds it, `kansoku serve cart` runs it.

Carts live in Valkey: fast, and kept across restarts by its append-only file.
"""

from __future__ import annotations

from fastapi import FastAPI

from kansoku.kit.app import build_service_app, start_process_telemetry
from kansoku.kit.connections import Connections
from kansoku.kit.telemetry import Telemetry
from kansoku.services.cart import SERVICE, api
from kansoku.services.cart.settings import Settings


def create_app(settings: Settings | None = None, telemetry: Telemetry | None = None) -> FastAPI:
    settings = settings or Settings()
    telemetry = telemetry or start_process_telemetry(SERVICE, settings)
    connections = Connections(SERVICE, settings, telemetry, valkey=True)
    app = build_service_app(
        service=SERVICE,
        settings=settings,
        telemetry=telemetry,
        description="Shopping carts, kept in Valkey.",
        connections=connections,
    )
    app.state.valkey = connections.valkey
    app.include_router(api.router)
    return app
