"""The request middleware every service runs: request id, one access-log line, and a
last line of defence that turns any unhandled exception into a 500 problem+json."""

from __future__ import annotations

import logging
import time
from urllib.parse import unquote

from fastapi import FastAPI
from opentelemetry import trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kansoku.kit import semconv
from kansoku.kit.context import new_request_id, set_request_id
from kansoku.kit.errors import problem_response

logger = logging.getLogger("kansoku.access")

_REQUEST_ID_HEADER_BYTES = semconv.REQUEST_ID_HEADER.lower().encode()


class RequestContextMiddleware:
    """Pure ASGI (no per-request task or body buffering, unlike BaseHTTPMiddleware).

    `quiet_paths` are served without an access-log line (health probes every few
    seconds would drown everything else).
    """

    def __init__(self, app: ASGIApp, quiet_paths: tuple[str, ...] = ()) -> None:
        self.app = app
        self.quiet_paths = quiet_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        supplied = None
        for name, value in scope["headers"]:
            if name == _REQUEST_ID_HEADER_BYTES:
                supplied = value.decode("latin-1")
                break
        request_id = new_request_id(supplied)
        set_request_id(request_id)
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attribute(semconv.REQUEST_ID, request_id)

        status = 500
        response_started = False

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
            if span.is_recording():
                span.record_exception(exc)
                span.set_status(trace.Status(trace.StatusCode.ERROR, type(exc).__name__))
            logger.exception("unhandled error in %s %s", scope["method"], scope["path"])
            if response_started:
                raise
            status = 500
            response = problem_response(
                500, "internal-error",
                "Something went wrong on our side. The request id leads to the details.",
                instance=scope["path"],
            )
            await response(scope, receive, send_with_request_id)
        finally:
            path = scope["path"]
            if not path.startswith(self.quiet_paths):
                logger.info(
                    "%s %s %s", scope["method"], path, status,
                    extra={"http_status": status,
                           "duration_ms": round((time.perf_counter() - started) * 1000, 2)},
                )


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
