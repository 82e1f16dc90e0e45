"""The request middleware every service runs: one server span, the request-duration
histogram, the request id, one access-log line, and a last line of defence that turns any
unhandled exception into a 500 problem+json.

It replaces OpenTelemetry's FastAPI/ASGI instrumentation, which cost more than everything
else the services do for a product page (measured by `benchmarks/telemetry_tax.py`): it
matches the route a second time, builds two generations of semantic-convention
attributes, records five instruments per request and wraps every ASGI message. Here the
route comes from Starlette's own match (`scope["route"]`, with the prefixes of the
routers it was included under), the attributes are the stable HTTP conventions only,
and one histogram is recorded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from opentelemetry import context, propagate, trace
from opentelemetry.metrics import Histogram
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kansoku.kit import semconv
from kansoku.kit.approaches import Instrumentation, propagation
from kansoku.kit.context import new_request_id, set_request_id
from kansoku.kit.errors import BodyTooLarge, problem_response
from kansoku.kit.i18n import _

logger = logging.getLogger("kansoku.access")

_REQUEST_ID_HEADER_BYTES = semconv.REQUEST_ID_HEADER.lower().encode()
#: The only headers the propagators read (W3C trace context and baggage).
_PROPAGATION_HEADERS = frozenset({b"traceparent", b"tracestate", b"baggage"})
#: AWS X-Ray's trace header (kit/approaches/propagation.py).
_XRAY_HEADER_BYTES = propagation.XRAY_HEADER.encode()

#: How the kit's client between services introduces itself (`kit.http`).
SERVICE_CLIENT_USER_AGENT = "kansoku-service-client"

#: The buckets the HTTP semantic conventions advise for request durations, in seconds.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
                    7.5, 10.0)


def _is_quiet(path: str, quiet_paths: tuple[str, ...]) -> bool:
    """Whether `path` is one of `quiet_paths` or below one: `/health` covers
    `/health/ready` but not `/healthy`; an entry ending in `/` covers what starts with it."""
    for quiet in quiet_paths:
        if path == quiet or path.startswith(quiet if quiet.endswith("/") else quiet + "/"):
            return True
    return False


class RouteTemplates:
    """The whole path template of the route a request matched (`/api/v1/products/{id}`).

    Starlette puts the matched route in `scope["route"]`, but FastAPI keeps routers
    included with a prefix nested: that route's own `path` lacks the prefixes it was
    included under. The first request reads every route's whole path once
    (`whole_route_paths`; by then every router is included), and each later one is a
    dictionary lookup.
    """

    def __init__(self) -> None:
        self._paths: dict[int, str] | None = None

    def of(self, scope: Scope) -> str | None:
        route = scope.get("route")
        if route is None:
            return None
        if self._paths is None:
            self._paths = whole_route_paths(scope["app"])
        path = self._paths.get(id(route), getattr(route, "path", None))
        return path if isinstance(path, str) and path else None


def whole_route_paths(app: Any) -> dict[int, str]:
    """Each route object of `app` (by identity) with its whole path template, the
    prefixes of the routers it was included under in front."""
    paths: dict[int, str] = {}
    for included in iter_route_contexts(getattr(app, "routes", ())):
        if isinstance(included.path, str):
            paths.setdefault(id(included.original_route), included.path)
    return paths


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class ServiceRequestMiddleware:
    """Pure ASGI (no per-request task or body buffering, unlike BaseHTTPMiddleware).

    `tracer` and `duration` are None when telemetry is off. Paths at or below one of
    `quiet_paths` (health probes, scrapes, static files) are served without a span, a
    duration or an access-log line: a probe every few seconds would drown real traffic.

    A request body larger than `max_body_bytes` is refused with a 413 problem as soon as
    it is known — from its Content-Length, or while it is read, so a body that never
    ends is not kept in memory. `body_limits` gives routes that take more (image
    uploads), by their endpoint function, a limit of their own.
    """

    def __init__(self, app: ASGIApp, *, tracer: Tracer | None = None,
                 duration: Histogram | None = None, quiet_paths: tuple[str, ...] = (),
                 max_body_bytes: int | None = None,
                 body_limits: Mapping[Callable[..., Any], int] | None = None) -> None:
        self.app = app
        self.tracer = tracer
        self.duration = duration
        self.quiet_paths = quiet_paths
        self.max_body_bytes = max_body_bytes
        self.body_limits = dict(body_limits or {})
        self._routes = RouteTemplates()

    def _within_limit(self, scope: Scope, receive: Receive) -> Receive:
        """`receive`, raising `BodyTooLarge` once the body goes past the route's limit
        (routing has found the endpoint by the time it reads the body)."""
        default = self.max_body_bytes
        assert default is not None
        received = 0
        limit: int | None = None

        async def receive_within_limit() -> Message:
            nonlocal received, limit
            if limit is None:
                endpoint = scope.get("endpoint")
                limit = self.body_limits.get(endpoint, default) if endpoint else default
                declared = _declared_length(scope)
                if declared is not None and declared > limit:
                    raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        return receive_within_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        path: str = scope["path"]
        method: str = scope["method"]
        if self.max_body_bytes is not None:
            receive = self._within_limit(scope, receive)
        quiet = _is_quiet(path, self.quiet_paths)
        supplied = None
        carrier: dict[str, str] = {}
        user_agent = ""
        for name, value in scope["headers"]:
            if name == _REQUEST_ID_HEADER_BYTES:
                supplied = value.decode("latin-1")
            elif name in _PROPAGATION_HEADERS:
                carrier[name.decode()] = value.decode("latin-1")
            elif name == _XRAY_HEADER_BYTES:
                # Read by the X-Ray propagator (with an X-Ray neighbour) under its own
                # spelling; otherwise noted as a trace this service cannot continue.
                carrier[propagation.XRAY_HEADER_NAME] = value.decode("latin-1")
            elif name == b"user-agent":
                user_agent = value.decode("latin-1")
        request_id = new_request_id(supplied)
        set_request_id(request_id)

        span: trace.Span = trace.INVALID_SPAN
        token = None
        if self.tracer is not None and not quiet:
            parent = propagate.extract(carrier)
            # Few attributes, cheap to build: the SDK validates each one, and the exporter
            # encodes each one, on every span.
            attributes: dict[str, Any] = {
                semconv.HTTP_REQUEST_METHOD: method,
                semconv.URL_PATH: path,
                semconv.URL_SCHEME: scope.get("scheme", "http"),
                semconv.REQUEST_ID: request_id,
            }
            # Who called, for calls from outside only: between services it is always
            # the kit's own client on this network, which says nothing.
            if user_agent != SERVICE_CLIENT_USER_AGENT:
                if user_agent:
                    attributes[semconv.USER_AGENT] = user_agent
                if scope.get("client"):
                    attributes[semconv.CLIENT_ADDRESS] = scope["client"][0]
            if propagation.XRAY_HEADER_NAME in carrier:
                foreign = propagation.foreign_trace(
                    {key.lower(): value for key, value in carrier.items()},
                    Instrumentation.OTEL, reads_xray=propagation.speaks_xray())
                if foreign is not None:
                    attributes.update(foreign.attributes())
            # Named by method until routing has matched; renamed to "GET /route" below.
            span = self.tracer.start_span(method, parent, SpanKind.SERVER, attributes)
            token = context.attach(trace.set_span_in_context(span, parent))

        status = 500
        response_started = False
        crashed = False

        async def send_with_request_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((_REQUEST_ID_HEADER_BYTES, request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_request_id)
        except Exception as exc:
            # Record it on the server span and in the log (with the traceback, which is
            # for us), and answer the caller with a problem (without it).
            crashed = True
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            logger.exception("unhandled error in %s %s", method, path)
            if response_started:
                raise
            status = 500
            response = problem_response(
                500, "internal-error",
                _("Something went wrong on our side. The request id leads to the details."),
                instance=path,
            )
            await response(scope, receive, send_with_request_id)
        finally:
            elapsed = time.perf_counter() - started
            if not quiet:
                self._finish(scope, method, path, status, elapsed, span, crashed)
            if token is not None:
                span.end()
                context.detach(token)

    def _finish(self, scope: Scope, method: str, path: str, status: int, elapsed: float,
                span: trace.Span, crashed: bool) -> None:
        """Name the span after its route, record the duration and write the access line
        (while the span is current, so the line carries its trace id)."""
        route = self._routes.of(scope)
        if span.is_recording():
            if route:
                span.update_name(f"{method} {route}")
                span.set_attribute(semconv.HTTP_ROUTE, route)
            span.set_attribute(semconv.HTTP_RESPONSE_STATUS_CODE, status)
            # Server spans are errors for 5xx only: a 404 is the client's mistake. (An
            # exception has set the status already, with its type as the description.)
            if status >= 500 and not crashed:
                span.set_status(Status(StatusCode.ERROR))
        if self.duration is not None:
            labels: Mapping[str, str | int] = (
                {semconv.HTTP_REQUEST_METHOD: method, semconv.HTTP_ROUTE: route,
                 semconv.HTTP_RESPONSE_STATUS_CODE: status} if route else
                {semconv.HTTP_REQUEST_METHOD: method, semconv.HTTP_RESPONSE_STATUS_CODE: status})
            self.duration.record(elapsed, labels)
        extra: dict[str, object] = {"http_status": status,
                                    "duration_ms": round(elapsed * 1000, 2)}
        # The user a route authenticated is named on its span (kit.auth); their baggage
        # ended with the route, so the access line takes the id from the span.
        attributes = getattr(span, "attributes", None)
        user_id = attributes.get(semconv.ENDUSER_ID) if attributes else None
        if user_id is not None:
            extra["user_id"] = str(user_id)
        logger.info("%s %s %s", method, path, status, extra=extra)


class DropIncomingBaggage:
    """Removes baggage entries a caller must not set from the incoming `baggage` header.

    At the edge (the gateway) the user id in baggage would otherwise be whatever the
    client claims, stamped on every span and log line of the request. Runs outside the
    tracing middleware, so no span ever sees the dropped entries.
    """

    def __init__(self, app: ASGIApp, keys: frozenset[str]) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = []
            for name, value in scope["headers"]:
                if name == b"baggage":
                    kept = [entry for entry in value.decode("latin-1").split(",")
                            if unquote(entry.split("=", 1)[0]).strip() not in self.keys]
                    if not kept:
                        continue
                    value = ",".join(kept).encode("latin-1")
                headers.append((name, value))
            scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)


def drop_incoming_baggage(app: FastAPI, keys: frozenset[str]) -> None:
    """Wrap `app`'s whole middleware stack, tracing included, in `DropIncomingBaggage`.

    The tracing middleware is installed as the outermost layer when the stack is built,
    so this hooks the build rather than `add_middleware`, which would land inside it.
    """
    build_stack = app.build_middleware_stack

    def build_guarded_stack() -> ASGIApp:
        return DropIncomingBaggage(build_stack(), keys)

    app.build_middleware_stack = build_guarded_stack  # type: ignore[method-assign]
