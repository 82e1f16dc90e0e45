"""The HTML problem pages: what a browser sees instead of problem+json.

Errors are answered as problem+json everywhere (`kit/errors.py`'s handlers, and the
services' own problems handed on). For a browser asking for a page, `HtmlProblemPages`
swaps that body for a page with the shop's look — 404, 403, 429, 5xx alike — keeping the
status and headers (Retry-After). An exception no handler took becomes the 500 page
here, recorded on the span and logged with its traceback as the request middleware
would. API clients, and scripts that do not ask for HTML, keep the problem+json.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, Final

from fastapi import Request
from opentelemetry import trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kansoku.kit.context import current_request_id
from kansoku.kit.i18n import _, lazy_gettext
from kansoku.services.gateway.web.auth import current_session
from kansoku.services.gateway.web.rendering import (
    PAGE_SECURITY_HEADERS,
    page_context,
    templates,
)
from kansoku.services.gateway.web.sessions import WebSession

logger = logging.getLogger(__name__)

#: Paths whose errors stay problem+json even for a browser: the API, the telemetry
#: intake, health, metrics and the static files.
_MACHINE_PATHS: Final = ("/api/", "/api", "/rum", "/health", "/metrics", "/static/")
_FORM_TYPES: Final = ("application/x-www-form-urlencoded", "multipart/form-data")

_PROBLEM_HEADINGS: Final = {
    400: lazy_gettext("That request was not understood"),
    401: lazy_gettext("Please log in"),
    403: lazy_gettext("Not allowed"),
    404: lazy_gettext("Page not found"),
    405: lazy_gettext("Not available that way"),
    409: lazy_gettext("That did not work"),
    422: lazy_gettext("Something in the request is not right"),
    429: lazy_gettext("Too many requests"),
}


def is_page_request(scope: Scope) -> bool:
    """A browser asking for a page (or posting a page's form), outside the API: its
    errors are answered with an HTML page, not problem+json."""
    path: str = scope.get("path", "")
    if path.startswith(_MACHINE_PATHS):
        return False
    headers = {name: value for name, value in scope.get("headers", [])}
    if b"text/html" in headers.get(b"accept", b""):
        return True
    if headers.get(b"sec-fetch-dest") == b"document":
        return True
    content_type = headers.get(b"content-type", b"").decode("latin-1")
    return scope.get("method") == "POST" and content_type.startswith(_FORM_TYPES)


def problem_page(request: Request, session: WebSession, problem: Mapping[str, Any],
                 status: int) -> str:
    """The HTML of the problem page for `problem` (a problem+json body)."""
    code = str(problem.get("type", "")).rsplit("/", 1)[-1]
    unavailable = status == 503 and code == "dependency-unavailable"
    known = _PROBLEM_HEADINGS.get(status)
    heading = str(known) if known is not None else (
        _("Something went wrong on our side") if status >= 500 else _("That did not work"))
    values = {
        "status": status,
        "code": code,
        "heading": heading,
        "detail": str(problem.get("detail") or problem.get("title") or ""),
        "request_id": problem.get("request_id"),
        "dependency": problem.get("dependency"),
        "reason": problem.get("detail"),
    }
    name = "unavailable.html" if unavailable else "problem.html"
    return templates.get_template(name).render(page_context(request, session, values))


class HtmlProblemPages:
    """Problems answered to a browser's page request become the HTML problem page."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_page_request(scope):
            await self.app(scope, receive, send)
            return
        problem_start: Message | None = None  # held back until its body is complete
        problem_body = bytearray()
        response_started = False

        async def send_page_for_problem(message: Message) -> None:
            nonlocal problem_start, response_started
            if message["type"] == "http.response.start":
                content_type = dict(message.get("headers", [])).get(b"content-type", b"")
                if content_type.startswith(b"application/problem+json"):
                    problem_start = message
                    return
                response_started = True
            elif message["type"] == "http.response.body" and problem_start is not None:
                problem_body.extend(message.get("body", b""))
                if not message.get("more_body", False):
                    response_started = True
                    await self._send_page(scope, receive, send, problem_start,
                                          bytes(problem_body))
                return
            await send(message)

        try:
            await self.app(scope, receive, send_page_for_problem)
        except Exception as exc:
            if response_started:
                raise
            span = trace.get_current_span()
            span.record_exception(exc)
            span.set_status(trace.Status(trace.StatusCode.ERROR, type(exc).__name__))
            logger.exception("unhandled error in %s %s", scope["method"], scope["path"])
            problem = {"detail": _("Something went wrong on our side. The request id leads "
                                   "to the details."), "request_id": current_request_id()}
            await self._send_page(scope, receive, send,
                                  {"type": "http.response.start", "status": 500},
                                  json.dumps(problem).encode())

    async def _send_page(self, scope: Scope, receive: Receive, send: Send, start: Message,
                         problem: bytes) -> None:
        """Send the problem page instead: the problem's status and headers, but HTML."""
        page = await self._page(scope, receive, start["status"], problem)
        headers = [(name, value) for name, value in start.get("headers", [])
                   if name not in (b"content-type", b"content-length")]
        headers += [(b"content-type", b"text/html; charset=utf-8"),
                    (b"content-length", str(len(page)).encode())]
        headers += [(name.lower().encode(), value.encode())
                    for name, value in PAGE_SECURITY_HEADERS.items()]
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": page})

    @staticmethod
    async def _page(scope: Scope, receive: Receive, status: int, body: bytes) -> bytes:
        request = Request(scope, receive)
        try:
            problem = json.loads(body)
        except ValueError:
            problem = {}
        if not isinstance(problem, dict):
            problem = {}
        try:
            session = await current_session(request)
        except Exception:  # the page about an error must not fail on its own
            logger.warning("problem page shown without the session", exc_info=True)
            session = WebSession.new()
        return problem_page(request, session, problem, status).encode()
