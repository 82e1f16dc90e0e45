"""The identity service: `create_app` builds it, `kansoku serve identity` runs it."""

from __future__ import annotations

from fastapi import FastAPI
from opentelemetry.instrumentation.utils import suppress_instrumentation

from kansoku.faults.catalogue import FLAG_KINDS
from kansoku.kit.app import build_service_app, start_process_telemetry
from kansoku.kit.auth import TokenVerifier
from kansoku.kit.connections import Connections
from kansoku.kit.flags import FaultFlags
from kansoku.kit.telemetry import Telemetry
from kansoku.services.identity import SERVICE, api, service
from kansoku.services.identity.models import SCHEMA
from kansoku.services.identity.settings import Settings


def create_app(settings: Settings | None = None, telemetry: Telemetry | None = None) -> FastAPI:
    settings = settings or Settings()
    telemetry = telemetry or start_process_telemetry(SERVICE, settings)
    connections = Connections(SERVICE, settings, telemetry, postgresql_schema=SCHEMA)

    async def load_signing_key() -> None:
        assert connections.db is not None
        # Start-up work, outside any request: traced, its statements would each be a
        # trace of one span.
        with suppress_instrumentation():
            async with connections.db.transaction() as session:
                signer = await service.load_signer(session)
        app.state.signer = signer
        # Identity checks its own tokens with the same public keys it publishes.
        app.state.tokens = TokenVerifier(jwks=signer.jwks())

    app = build_service_app(
        service=SERVICE,
        settings=settings,
        telemetry=telemetry,
        fault_flags=FaultFlags(settings.flags_file, SERVICE, FLAG_KINDS),
        description="Users, password hashes, login and access tokens (JWKS for checking "
                    "them).",
        connections=connections,
        on_startup=[load_signing_key],
    )
    app.include_router(api.router)
    return app
