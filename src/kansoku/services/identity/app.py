"""The identity service: `create_app` builds it, `kansoku serve identity` runs it."""

from __future__ import annotations

from fastapi import FastAPI
from opentelemetry.instrumentation.utils import suppress_instrumentation

from kansoku.faults.catalogue import FLAG_KINDS
from kansoku.kit.app import build_service_app, start_process_telemetry
from kansoku.kit.auth import TokenVerifier
from kansoku.kit.clock import UtcClock, utc_now
from kansoku.kit.connections import Connections
from kansoku.kit.flags import FaultFlags
from kansoku.kit.settings import require
from kansoku.kit.telemetry import Telemetry
from kansoku.services.identity import SERVICE, api, service
from kansoku.services.identity.models import SCHEMA
from kansoku.services.identity.settings import Settings


def create_app(settings: Settings | None = None, telemetry: Telemetry | None = None, *,
               clock: UtcClock = utc_now) -> FastAPI:
    """Identity's app. `clock` is what login locks are counted by; tests move it."""
    settings = settings or Settings()
    sealing_secret = require(
        settings.service_secret.get_secret_value() if settings.service_secret else None,
        "KANSOKU_SERVICE_SECRET",
        "identity keeps its token signing key encrypted with it (kansoku up sets one)")
    telemetry = telemetry or start_process_telemetry(SERVICE, settings)
    connections = Connections(SERVICE, settings, telemetry, postgresql_schema=SCHEMA)

    async def load_signing_key() -> None:
        assert connections.db is not None
        # Start-up work, outside any request: traced, its statements would each be a
        # trace of one span.
        with suppress_instrumentation():
            async with connections.db.transaction() as session:
                signer = await service.load_signer(session, sealing_secret)
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
    app.state.clock = clock
    app.state.login_throttle = service.LoginThrottle(
        account_failures=settings.login_account_failures,
        address_failures=settings.login_address_failures,
        lock_seconds=settings.login_lock_seconds,
        max_lock_seconds=settings.login_lock_max_seconds,
        memory_seconds=settings.login_failure_memory_seconds)
    app.include_router(api.router)
    return app
