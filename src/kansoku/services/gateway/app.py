"""The gateway: `create_app` builds it, `kansoku serve gateway` runs it.

The gateway is the shop's front door: the public REST API (`api/`), the storefront's,
the admin's and the lab's web pages (`web/`), and the intake of what the pages measure
in the browser (`rum/`). All of them share one state (`state.Gateway`): the clients of
the services behind the gateway (`clients.py`), the shop's read model (`shop.py`), the
rate limits and the web sessions.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware import Middleware

from kansoku.contracts.calls import Refused
from kansoku.faults.catalogue import FLAG_KINDS
from kansoku.kit import semconv
from kansoku.kit.app import build_service_app, start_process_telemetry
from kansoku.kit.clock import WallClock, wall_time
from kansoku.kit.connections import Connections
from kansoku.kit.errors import PROBLEM_MEDIA_TYPE, problem_response
from kansoku.kit.flags import FaultFlags
from kansoku.kit.middleware import drop_incoming_baggage
from kansoku.kit.openapi import PROBLEM
from kansoku.kit.telemetry import Telemetry
from kansoku.services.gateway import SERVICE, faults
from kansoku.services.gateway.api import accounts, catalog, lab, operations, shopping
from kansoku.services.gateway.rum import routes as rum_routes
from kansoku.services.gateway.settings import Settings
from kansoku.services.gateway.state import Gateway, limit_requests
from kansoku.services.gateway.web import layers
from kansoku.services.gateway.web.admin import routes as admin_routes
from kansoku.services.gateway.web.lab import routes as lab_routes
from kansoku.services.gateway.web.storefront import routes as storefront_routes

STATIC_DIR = Path(__file__).parent / "static"
#: What a multipart form adds to the picture it carries, and then some.
IMAGE_FORM_SLACK_BYTES = 64 * 1024


async def hand_on_refusal(request: Request, exc: Exception) -> Response:
    """A service's "no" that no page turned into words next to a field: the service's
    own problem, as it wrote it (the HTML problem page, for a browser)."""
    assert isinstance(exc, Refused)
    if exc.body:
        return JSONResponse(exc.body, status_code=exc.status, media_type=PROBLEM_MEDIA_TYPE,
                            headers=exc.headers)
    return problem_response(exc.status, exc.code, exc.detail, instance=request.url.path,
                            headers=exc.headers)


def create_app(settings: Settings | None = None, telemetry: Telemetry | None = None, *,
               clock: WallClock = wall_time) -> FastAPI:
    """The gateway's app. `clock` (the wall clock, in seconds) is what web sessions'
    tokens expire by and rate limits count minutes by; tests move it."""
    settings = settings or Settings()
    telemetry = telemetry or start_process_telemetry(SERVICE, settings)
    connections = Connections(SERVICE, settings, telemetry, valkey=True)
    assert connections.valkey is not None
    gateway = Gateway.build(settings, telemetry, connections.valkey, clock=clock)

    async def stop_browser_telemetry() -> None:
        # After the gateway's own shutdown: the last batches are flushed too.
        if gateway.rum is not None:
            await asyncio.to_thread(gateway.rum.shutdown)

    app = build_service_app(
        service=SERVICE,
        settings=settings,
        telemetry=telemetry,
        fault_flags=FaultFlags(settings.flags_file, SERVICE, FLAG_KINDS),
        description="The public API of the kansoku shop. Errors are RFC 9457 problem "
                    "details (`application/problem+json`) with a `request_id`; log in at "
                    "`/api/v1/auth/login` and send `Authorization: Bearer <access_token>`.",
        # Ready when it can serve: a missing catalog shows as a 503 page for that request,
        # not as the gateway taken out of rotation. Valkey holds sessions and rate limits.
        connections=connections,
        on_shutdown=[gateway.clients.aclose, stop_browser_telemetry],
        docs_url="/api/docs",
        redoc_url="/api/redoc",
        openapi_url="/api/openapi.json",
        # Browser telemetry arrives with every page view: its own spans say what it holds.
        quiet_paths=("/rum",),
        # A picture comes as a multipart form: the image (checked against its own limit,
        # with its own words) plus the form's boundaries and part headers.
        body_limits=dict.fromkeys(
            (catalog.upload_product_image, admin_routes.create_product,
             admin_routes.upload_image), settings.max_image_bytes + IMAGE_FORM_SLACK_BYTES),
    )
    app.state.gateway = gateway
    # Inside the request's span (user_middleware's first entry is the outermost layer).
    app.user_middleware.append(Middleware(faults.CpuHog, faults=app.state.flags))
    if not settings.trust_incoming_user:
        drop_incoming_baggage(app, frozenset({semconv.BAGGAGE_USER_ID}))
    layers.install(app, gateway.sessions)
    app.add_exception_handler(Refused, hand_on_refusal)

    public_api = APIRouter(prefix="/api/v1", dependencies=[Depends(limit_requests)],
                           responses={429: PROBLEM})
    for part in (accounts, catalog, shopping, operations, lab):
        public_api.include_router(part.router)
    for router in (storefront_routes.router, admin_routes.router, lab_routes.router,
                   rum_routes.router, public_api):
        app.include_router(router)
    # The pages' own CSS and JavaScript, written here (no build step).
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
