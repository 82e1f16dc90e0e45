"""The cart service: `create_app` builds it, `kansoku serve cart` runs it.

Carts live in Valkey: fast, and kept across restarts by its append-only file. In the
background, the service counts abandoned carts (see `service.count_abandoned_carts`).
"""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as redis
from fastapi import FastAPI
from opentelemetry import metrics
from opentelemetry.instrumentation.utils import suppress_instrumentation

from kansoku.faults.catalogue import FLAG_KINDS
from kansoku.faults.effects import refusing_address
from kansoku.kit.app import build_service_app, start_process_telemetry
from kansoku.kit.connections import Connections
from kansoku.kit.flags import FaultFlags
from kansoku.kit.redis_telemetry import trace_client
from kansoku.kit.telemetry import Telemetry
from kansoku.services.cart import SERVICE, api, service
from kansoku.services.cart.settings import Settings

logger = logging.getLogger(__name__)


async def sweep_abandoned_carts(client: redis.Redis, abandoned: metrics.Counter,
                                abandon_after_seconds: float, interval: float) -> None:
    """Count the carts abandoned since the last look, every `interval` seconds."""
    while True:
        await asyncio.sleep(interval)
        try:
            # A sweep every 30 s must not become a trace every 30 s; what it finds is
            # counted and logged instead.
            with suppress_instrumentation():
                await service.count_abandoned_carts(client, abandon_after_seconds, abandoned)
        except Exception:
            logger.exception("the cart abandonment sweep failed; retrying")


def unreachable_valkey(telemetry: Telemetry) -> redis.Redis:
    """A client set up like the real one, for an address that refuses connections: what
    the cart uses while cartCacheOutage is on (its commands fail with the library's own
    ConnectionError, after its usual retries, in spans of their own)."""
    host, port = refusing_address()
    client = redis.from_url(f"redis://{host}:{port}/0", socket_connect_timeout=2,
                            socket_timeout=2)
    if telemetry.enabled:
        trace_client(client, telemetry.tracer_provider)
    return client


def create_app(settings: Settings | None = None, telemetry: Telemetry | None = None) -> FastAPI:
    settings = settings or Settings()
    telemetry = telemetry or start_process_telemetry(SERVICE, settings)
    connections = Connections(SERVICE, settings, telemetry, valkey=True)
    assert connections.valkey is not None
    valkey = connections.valkey
    abandoned = service.abandoned_carts_counter(
        metrics.get_meter("kansoku.cart", meter_provider=telemetry.meter_provider))

    async def sweep() -> None:
        await sweep_abandoned_carts(valkey, abandoned, settings.abandon_after_seconds,
                                    settings.abandon_sweep_seconds)

    app = build_service_app(
        service=SERVICE,
        settings=settings,
        telemetry=telemetry,
        fault_flags=FaultFlags(settings.flags_file, SERVICE, FLAG_KINDS),
        description="Shopping carts, kept in Valkey.",
        connections=connections,
        background=[sweep],
    )
    app.state.valkey = valkey
    app.state.unreachable_valkey = unreachable_valkey(telemetry)
    app.include_router(api.router)
    return app
