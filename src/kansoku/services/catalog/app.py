"""The catalog service: `create_app` builds it, `kansoku serve catalog` runs it."""

from __future__ import annotations

from fastapi import FastAPI

from kansoku.faults.catalogue import FLAG_KINDS
from kansoku.faults.effects import lose_database_while_on
from kansoku.kit.app import build_service_app, start_process_telemetry
from kansoku.kit.cache import Cache
from kansoku.kit.connections import Connections
from kansoku.kit.events import OutboxRelay
from kansoku.kit.flags import FaultFlags
from kansoku.kit.telemetry import Telemetry
from kansoku.services.catalog import SERVICE, api, store
from kansoku.services.catalog.models import SCHEMA
from kansoku.services.catalog.service import MAX_THUMBNAIL_BYTES
from kansoku.services.catalog.settings import Settings


def create_app(settings: Settings | None = None, telemetry: Telemetry | None = None) -> FastAPI:
    settings = settings or Settings()
    telemetry = telemetry or start_process_telemetry(SERVICE, settings)
    connections = Connections(SERVICE, settings, telemetry, postgresql_schema=SCHEMA,
                              valkey=True, nats_messaging=True,
                              pool_size=settings.pool_size)
    assert connections.db is not None
    # Image uploads announce themselves through the outbox (product.image_uploaded).
    relay = OutboxRelay(SERVICE, connections.db.transaction, store.unpublished,
                        store.mark_published, connections.jetstream)
    fault_flags = FaultFlags(settings.flags_file, SERVICE, FLAG_KINDS)
    app = build_service_app(
        service=SERVICE,
        settings=settings,
        telemetry=telemetry,
        fault_flags=fault_flags,
        description="Products, categories and product images, in PostgreSQL.",
        connections=connections,
        background=[relay.run],
        # Uploads are checked against their own limits, with their own words, as they
        # are read (api.read_body); the request's limit only stops what goes far past.
        body_limits={api.upload_image: settings.max_image_bytes + api.UPLOAD_SLACK_BYTES,
                     api.store_thumbnail: MAX_THUMBNAIL_BYTES + api.UPLOAD_SLACK_BYTES},
    )
    app.state.cache = Cache(connections.valkey, "catalog", settings.cache_seconds)
    lose_database_while_on(connections.db.engine, fault_flags)
    app.include_router(api.router)
    return app
