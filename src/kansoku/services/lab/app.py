"""The lab service: `create_app` builds it, `kansoku serve lab` runs it.

The performance-problem lab of seeds 000 and 001: N+1 queries, a slow query and a
database error, each beside its fixed twin, run on the shop's own data for the user who
asked. The lab reads the catalog's and orders' tables in place (the same database,
read-only) and keeps one table of its own in the `lab` schema.
"""

from __future__ import annotations

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.processor.baggage import BaggageSpanProcessor

from kansoku import __version__
from kansoku.faults.catalogue import FLAG_KINDS
from kansoku.kit import semconv
from kansoku.kit.app import build_service_app, start_process_telemetry
from kansoku.kit.connections import Connections
from kansoku.kit.flags import FaultFlags
from kansoku.kit.telemetry import Telemetry
from kansoku.services.lab import SERVICE, api, store
from kansoku.services.lab.service import Lab
from kansoku.services.lab.settings import Settings

SCHEMA = "lab"


def create_app(settings: Settings | None = None, telemetry: Telemetry | None = None) -> FastAPI:
    settings = settings or Settings()
    telemetry = telemetry or start_process_telemetry(SERVICE, settings)
    connections = Connections(SERVICE, settings, telemetry, postgresql_schema=SCHEMA,
                              pool_size=settings.pool_size)
    assert connections.db is not None
    store.limit_statement_time(connections.db.engine, settings.statement_timeout_seconds)
    tracer: trace.Tracer = trace.NoOpTracer()
    if telemetry.tracer_provider is not None:
        # The kit's processor copies the user id from baggage onto every span; this one
        # adds the lab's operation, so the database spans of a run say which one it was.
        telemetry.tracer_provider.add_span_processor(
            BaggageSpanProcessor(lambda key: key == semconv.OPERATION_TYPE))
        tracer = trace.get_tracer("kansoku.lab", __version__,
                                  tracer_provider=telemetry.tracer_provider)
    app = build_service_app(
        service=SERVICE,
        settings=settings,
        telemetry=telemetry,
        fault_flags=FaultFlags(settings.flags_file, SERVICE, FLAG_KINDS),
        description="The performance-problem lab: N+1 queries, a slow query and a "
                    "database error, each with its fixed twin, on the shop's data. Send a "
                    "user's access token; answers use the seeds' format (`status`, `data` "
                    "with `results`, `execution_time` and `query_count`, `user_id`, "
                    "`trace_id`).",
        connections=connections,
    )
    app.state.lab = Lab(settings, tracer)
    app.include_router(api.router)
    return app
