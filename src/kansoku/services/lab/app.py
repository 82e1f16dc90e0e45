"""The lab service: `create_app` builds it, `kansoku serve lab` runs it.

So far it has its health endpoints and the connections it will need (the lab reads the
shop's tables in PostgreSQL); the lab issue fills in its API.
"""

from __future__ import annotations

from fastapi import FastAPI

from kansoku.kit.app import build_service_app, start_process_telemetry
from kansoku.kit.connections import Connections
from kansoku.kit.telemetry import Telemetry
from kansoku.services.lab import SERVICE
from kansoku.services.lab.settings import Settings


def create_app(settings: Settings | None = None, telemetry: Telemetry | None = None) -> FastAPI:
    settings = settings or Settings()
    telemetry = telemetry or start_process_telemetry(SERVICE, settings)
    return build_service_app(
        service=SERVICE,
        settings=settings,
        telemetry=telemetry,
        description="The performance-problem lab.",
        connections=Connections(SERVICE, settings, telemetry, postgresql_schema="lab"),
    )
