"""Rendering the pages: the Jinja templates, what every page gets, and its headers.

`render()` answers with a page. Its templates are in `templates/` (the storefront's at
the top, the admin's in `admin/`), and every page's context has `session`, `csrf_token`,
`explorer_url`, `current_path` and `messages` (one-time notices). Every page is sent
with `PAGE_SECURITY_HEADERS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from babel import dates
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from kansoku.contracts.reasons import cancellation_words
from kansoku.kit import i18n
from kansoku.services.gateway.state import gateway_of
from kansoku.services.gateway.web.sessions import WebSession

#: Where the pages' templates are: storefront ones at the top, admin ones in admin/.
TEMPLATES_DIR: Final = Path(__file__).parent.parent / "templates"
templates = Jinja2Templates(directory=TEMPLATES_DIR)

#: Sent with every page: scripts and styles only from the shop's own /static (no inline
#: code, so an injected <script> does not run), pictures also as data:/blob: URLs (an
#: upload's preview), no framing, forms post only here.
PAGE_SECURITY_HEADERS: Final[Mapping[str, str]] = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # Pages carry a CSRF token and personal data: never kept in a shared cache.
    "Cache-Control": "no-store",
}


#: An order's status as a customer reads it (the API's word is the key).
ORDER_STATUS_NAMES: Final[Mapping[str, Any]] = {
    "pending_payment": i18n.lazy_gettext("awaiting payment"),
    "paid": i18n.lazy_gettext("paid"),
    "cancelled": i18n.lazy_gettext("cancelled"),
}


def order_status(status: str) -> str:
    """`pending_payment` → "awaiting payment" (支払い待ち), in the reader's language."""
    name = ORDER_STATUS_NAMES.get(status)
    return str(name) if name is not None else status.replace("_", " ")


def cancel_reason(order: Any) -> str:
    """Why an order (as the orders API gives it) was cancelled, in the reader's language
    (its codes worded by `kansoku.contracts.reasons`); the English kept on orders
    cancelled before the codes were, as it is; "" when nothing says why."""
    def field(name: str) -> str | None:
        value = order.get(name) if isinstance(order, Mapping) else getattr(order, name, None)
        return str(value) if value else None

    return cancellation_words(field("cancel_reason_code"), field("decline_reason"),
                              field("cancel_reason")) or ""


def _moment(value: datetime | str) -> datetime:
    """A moment as the API gives it (ISO 8601 text) or as a datetime; UTC if unzoned."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def format_datetime(value: datetime | str, format: str = "medium") -> str:
    """A date and time in UTC as the reader's language writes it: "2026/12/07 15:04"
    (ja, short), "12/7/26, 3:04 PM" (en, short)."""
    return dates.format_datetime(_moment(value), format, tzinfo=UTC,
                                 locale=str(i18n.current_language()))


def format_date(value: datetime | str, format: str = "medium") -> str:
    return dates.format_date(_moment(value), format, locale=str(i18n.current_language()))


# `{% trans %}`, `_()`, and money, numbers and dates in the reader's language.
i18n.install(templates.env)
templates.env.filters.update(datetime=format_datetime, date=format_date,
                             order_status=order_status, cancel_reason=cancel_reason)


class _FormToken:
    """The CSRF token as a template sees it (`{{ csrf_token }}`). Rendering it keeps the
    session: a visitor gets a session, and a cookie, once a page shows them a form."""

    def __init__(self, session: WebSession) -> None:
        self._session = session

    def __str__(self) -> str:
        self._session.keep()
        return self._session.csrf_token

    def __html__(self) -> str:  # markupsafe: the token is URL-safe base64, nothing to escape
        return str(self)


def _messages_for(request: Request, session: WebSession) -> list[str]:
    """The one-time notices for this page. Only a page the browser navigates to uses them
    up: a script's fetch that followed a form post's redirect (rum.js does, then
    navigates there itself) shows them without taking them from the page that follows."""
    if request.headers.get("sec-fetch-mode", "navigate") == "navigate":
        return session.take_messages()
    return list(session.messages)


def page_context(request: Request, session: WebSession, extra: Mapping[str, Any] | None
                 ) -> dict[str, Any]:
    """What every page's template gets, with `extra` on top."""
    return {
        "request": request,
        "session": session,
        "csrf_token": _FormToken(session),
        "explorer_url": gateway_of(request.app).settings.explorer_link_url,
        "current_path": request.url.path,
        # The language switch sends the reader back here, query and all.
        "switch_url": lambda language: i18n.switch_url(
            language, request.url.path + (f"?{request.url.query}" if request.url.query
                                          else "")),
        "messages": _messages_for(request, session),
        **(extra or {}),
    }


def render(request: Request, template_name: str, context: Mapping[str, Any] | None = None,
           *, status_code: int = 200, headers: Mapping[str, str] | None = None
           ) -> HTMLResponse:
    """Answer with a page. The route must have asked for the session (`WebSessionDep`,
    `CustomerDep`, `AdminDep`, `AdminPost` or `CsrfChecked`)."""
    session: WebSession | None = getattr(request.state, "web_session", None)
    if session is None:
        raise RuntimeError(f"{request.url.path}: render() needs the route to take the "
                           "session (WebSessionDep, CustomerDep, AdminDep or CsrfChecked)")
    html = templates.get_template(template_name).render(
        page_context(request, session, context))
    return HTMLResponse(html, status_code=status_code,
                        headers={**PAGE_SECURITY_HEADERS, **(headers or {})})
