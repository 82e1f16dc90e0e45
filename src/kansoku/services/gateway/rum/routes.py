"""The intake for what the pages' script measures in the browser: `POST /rum`.

A batch is checked strictly (`rum/schemas.py`), limited by size and by rate (per
address, then per browser session), and forwarded over OTLP as service `storefront-web`
(`rum/pipeline.py`). The intake's own Valkey calls are bookkeeping and not traced, and
the route itself is a quiet path (no span, no access-log line): its spans say what it
holds.
"""

from __future__ import annotations

import time
from typing import Final

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from opentelemetry.instrumentation.utils import suppress_instrumentation
from pydantic import ValidationError

from kansoku.kit.errors import Problem
from kansoku.services.gateway.rum.schemas import Beacon
from kansoku.services.gateway.state import GatewayDep, client_address

router = APIRouter(include_in_schema=False)

_ACCEPTED_TYPES: Final = ("application/json", "text/plain")


async def _read_body(request: Request, limit: int) -> bytes:
    """The request's body, refused with 413 as soon as it is larger than `limit`."""
    too_large = Problem(413, "payload-too-large",
                        f"A batch of browser telemetry is at most {limit} bytes.", limit=limit)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


@router.post("/rum", status_code=204, response_class=Response)
async def receive_browser_telemetry(request: Request, gateway: GatewayDep) -> Response:
    """Take one batch from a page's script, check it, and forward it over OTLP."""
    settings = gateway.settings
    # A browser says where a request comes from; another site's pages may not post here.
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise Problem(403, "cross-site", "Browser telemetry is accepted from this site's "
                      "own pages only.")
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in _ACCEPTED_TYPES:
        raise Problem(415, "unsupported-media-type",
                      "Send browser telemetry as JSON (application/json, or text/plain "
                      "from navigator.sendBeacon).")
    with suppress_instrumentation():
        await gateway.rum_limits.check("address", client_address(request),
                                       settings.rum_rate_per_address)
    body = await _read_body(request, settings.rum_max_body_bytes)
    try:
        beacon = Beacon.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False)
        if any(error["type"] == "json_invalid" for error in errors):
            raise Problem(400, "bad-json", "The body is not JSON: "
                          f"{errors[0]['msg'].removeprefix('Invalid JSON: ')}.") from None
        # The kit's handler answers 422 naming each field, as for every other route.
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in errors]) from None
    with suppress_instrumentation():
        await gateway.rum_limits.check("session", beacon.session_id,
                                       settings.rum_rate_per_session)
    if gateway.rum is not None:
        gateway.rum.record(
            beacon, received_ms=time.time() * 1000,
            route_template=gateway.rum_routes.template_of(request.app, beacon.path),
            user_agent=request.headers.get("user-agent"))
    return Response(status_code=204)
