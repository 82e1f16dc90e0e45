"""The identity service: `create_app` builds it, `kansoku serve identity` runs it.

So far it has its health endpoints and the connections it will need (identity keeps users
and password hashes in its `identity` schema); the shop issue fills in its API.
"""

from __future__ import annotations

from fastapi import FastAPI

from kansoku.kit.app import build_service_app, start_process_telemetry
from kansoku.kit.connections import Connections
from kansoku.kit.telemetry import Telemetry
from kansoku.services.identity import SERVICE
from kansoku.services.identity.settings import Settings


def create_app(settings: Settings | None = None, telemetry: Telemetry | None = None) -> FastAPI:
    settings = settings or Settings()
    telemetry = telemetry or start_process_telemetry(SERVICE, settings)
    return build_service_app(
        service=SERVICE,
        settings=settings,
        telemetry=telemetry,
        description="Users, password hashes, login and JWT issuing.",
        connections=Connections(SERVICE, settings, telemetry, postgresql_schema="identity"),
    )
