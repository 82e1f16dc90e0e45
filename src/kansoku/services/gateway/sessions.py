"""Web sessions for the gateway's pages: who is browsing, their tokens, and CSRF.

The browser holds one cookie, `kansoku_session`: a random id that means nothing by
itself. It is HttpOnly (page scripts cannot read it), Secure (sent over HTTPS, and to
localhost) and SameSite=Lax (another site's form posts arrive without it). The session
lives in Valkey, under a hash of that id, with an idle timeout: the identity service's
access and refresh tokens, who the user is, and the CSRF token the pages' forms carry.
Tokens never reach the browser, a log line or a span.

Route parameters (FastAPI dependencies):

- `session: WebSessionDep` — anyone; an anonymous session is stored only once a page
  shows it a form (so crawlers and load tests do not fill Valkey);
- `customer: CustomerDep` — logged in, else a 303 to `/login?next=<this page>`;
- `admin: AdminDep` — the admin role; anonymous: a 303 to `/admin/login?next=…`;
  logged in without the role: the 403 page;
- `session: CsrfChecked` — on every form POST: the form's `csrf_token` must be the
  session's, else the 403 page "This form has expired or was not sent by this site".

`render()` answers with a page; `log_in()` and `log_out()` change who is logged in;
`install()` (called by `create_app`) writes session cookies and turns problems into the
HTML problem pages for browsers.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Final
from urllib.parse import quote, urlsplit

import redis.asyncio as redis
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from opentelemetry import baggage, context, trace
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kansoku.kit import semconv
from kansoku.kit.auth import ROLE_ADMIN
from kansoku.kit.context import current_request_id
from kansoku.kit.errors import DependencyUnavailable, Problem

logger = logging.getLogger(__name__)

#: The one cookie the pages set.
COOKIE_NAME: Final = "kansoku_session"
#: A session unused this long is forgotten (each request starts the count again).
SESSION_IDLE_SECONDS: Final = 7 * 24 * 3600
#: Refresh the access token this long before it expires, so no call leaves with a token
#: that expires on the way.
REFRESH_MARGIN_SECONDS: Final = 30
#: How long one request may hold a session's refresh (refresh tokens work only once).
_REFRESH_LOCK_SECONDS: Final = 10
_KEY_PREFIX: Final = "websession:"
#: What a session id looks like (secrets.token_urlsafe(32)); anything else is ignored.
_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{43}$")

#: Where the pages' templates are: storefront ones at the top, admin ones in admin/.
TEMPLATES_DIR: Final = Path(__file__).parent / "templates"
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

#: Paths whose errors stay problem+json even for a browser: the API, the telemetry
#: intake, health, metrics and the static files.
_MACHINE_PATHS: Final = ("/api/", "/api", "/rum", "/health", "/metrics", "/static/")
_FORM_TYPES: Final = ("application/x-www-form-urlencoded", "multipart/form-data")


# --- the session ----------------------------------------------------------------------

@dataclass(eq=False)
class WebSession:
    """One browser's session. Anonymous until `log_in`; `auth_headers()` is what calls to
    the other services send for the logged-in user."""

    #: The cookie's value. repr=False here and below: never in a log line or a repr.
    id: str = field(repr=False)
    csrf_token: str = field(repr=False)
    user_id: str | None = None
    email: str | None = None
    name: str | None = None
    role: str | None = None
    access_token: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    #: When the access token expires (seconds since the epoch).
    access_expires_at: float = 0.0
    #: One-time notices for the next page ("Added 2 to your cart").
    messages: list[str] = field(default_factory=list)
    # Bookkeeping, not stored: is it in Valkey, must it be saved before the response
    # starts, and was it ended (logged out) in this request?
    stored: bool = field(default=False, repr=False)
    changed: bool = field(default=False, repr=False)
    ended: bool = field(default=False, repr=False)

    @property
    def logged_in(self) -> bool:
        return self.user_id is not None and self.access_token is not None

    @property
    def is_admin(self) -> bool:
        return self.logged_in and self.role == ROLE_ADMIN

    def auth_headers(self) -> dict[str, str]:
        """`Authorization: Bearer …` for calls made for this user; empty when anonymous."""
        if not self.logged_in:
            return {}
        return {"Authorization": f"Bearer {self.access_token}"}

    def keep(self) -> None:
        """Store this session (and give the browser its cookie) when the response starts."""
        if not self.stored:
            self.changed = True

    def add_message(self, text: str) -> None:
        """Show `text` once, on the next page rendered for this session."""
        self.messages.append(text)
        self.changed = True

    def take_messages(self) -> list[str]:
        taken, self.messages = self.messages, []
        if taken:
            self.changed = True
        return taken

    def forget_user(self) -> None:
        """Become anonymous (the tokens no longer work)."""
        self.user_id = self.email = self.name = self.role = None
        self.access_token = self.refresh_token = None
        self.access_expires_at = 0.0
        self.changed = True

    def _take_tokens(self, tokens: Mapping[str, Any], *, user_id: str, email: str,
                     name: str, role: str) -> None:
        self.access_token = str(tokens["access_token"])
        self.refresh_token = str(tokens["refresh_token"])
        self.access_expires_at = time.time() + float(tokens.get("expires_in", 900))
        self.user_id, self.email, self.name, self.role = user_id, email, name, role
        self.changed = True

    def _adopt_tokens(self, fresher: WebSession) -> None:
        """Take the user and tokens another request of this session stored since."""
        self.access_token, self.refresh_token = fresher.access_token, fresher.refresh_token
        self.access_expires_at = fresher.access_expires_at
        self.user_id, self.email = fresher.user_id, fresher.email
        self.name, self.role = fresher.name, fresher.role

    def _needs_refresh(self) -> bool:
        return (self.logged_in and self.refresh_token is not None
                and time.time() >= self.access_expires_at - REFRESH_MARGIN_SECONDS)

    def _dump(self) -> str:
        return json.dumps({
            "csrf_token": self.csrf_token, "user_id": self.user_id, "email": self.email,
            "name": self.name, "role": self.role, "access_token": self.access_token,
            "refresh_token": self.refresh_token, "access_expires_at": self.access_expires_at,
            "messages": self.messages})

    @classmethod
    def _load(cls, session_id: str, raw: str | bytes) -> WebSession:
        data = json.loads(raw)
        return cls(id=session_id, csrf_token=data["csrf_token"], user_id=data["user_id"],
                   email=data["email"], name=data["name"], role=data["role"],
                   access_token=data["access_token"], refresh_token=data["refresh_token"],
                   access_expires_at=float(data["access_expires_at"]),
                   messages=list(data.get("messages", [])), stored=True)


def _new_session() -> WebSession:
    return WebSession(id=secrets.token_urlsafe(32), csrf_token=secrets.token_urlsafe(32))


def _key(session_id: str) -> str:
    """Valkey's key for a session: a hash of the id, so whoever can list Valkey's keys
    still cannot use them as cookies."""
    return _KEY_PREFIX + hashlib.sha256(session_id.encode()).hexdigest()


def _valkey(app: Any) -> redis.Redis:
    client: redis.Redis = app.state.valkey
    return client


async def _save(valkey: redis.Redis, session: WebSession) -> None:
    await valkey.set(_key(session.id), session._dump(), ex=SESSION_IDLE_SECONDS)
    session.stored, session.changed = True, False


async def _save_or_unavailable(request: Request, session: WebSession) -> None:
    try:
        await _save(_valkey(request.app), session)
    except redis.RedisError as exc:
        raise DependencyUnavailable("valkey", f"sessions cannot be saved: {exc}") from exc


async def _fetch(valkey: redis.Redis, session_id: str) -> WebSession | None:
    # GETEX reads and restarts the idle timeout in one round trip.
    raw = await valkey.getex(_key(session_id), ex=SESSION_IDLE_SECONDS)
    return WebSession._load(session_id, raw) if raw is not None else None


async def current_session(request: Request) -> WebSession:
    """This request's session: the cookie's, or a new anonymous one (not stored yet).
    Loaded once per request; an expired access token is refreshed on the way."""
    loaded: WebSession | None = getattr(request.state, "web_session", None)
    if loaded is not None:
        return loaded
    session = None
    cookie = request.cookies.get(COOKIE_NAME)
    if cookie and _SESSION_ID.match(cookie):
        try:
            session = await _fetch(_valkey(request.app), cookie)
        except redis.RedisError as exc:
            # Browsing goes on without sessions; logging in says Valkey is away.
            logger.warning("web sessions cannot be read, Valkey is away: %s", exc)
    if session is None:
        session = _new_session()
    request.state.web_session = session
    if session._needs_refresh():
        await _refresh_tokens(request, session)
    return session


async def _refresh_tokens(request: Request, session: WebSession) -> None:
    """Trade the refresh token for new tokens. Refresh tokens work once, and a browser
    sends several requests at a time: one request refreshes (under a lock in Valkey),
    the others wait for its result."""
    valkey = _valkey(request.app)
    lock = _key(session.id) + ":refreshing"
    try:
        if not await valkey.set(lock, "1", nx=True, ex=_REFRESH_LOCK_SECONDS):
            await _wait_for_refresh(valkey, session)
            return
    except redis.RedisError as exc:
        raise DependencyUnavailable("valkey", f"sessions cannot be refreshed: {exc}") from exc
    try:
        answer = await request.app.state.identity.request(
            "POST", "/auth/refresh", json={"refresh_token": session.refresh_token})
        if answer.status_code != 200:
            logger.info("a web session's refresh token was refused (%s): logged out",
                        answer.status_code)
            session.forget_user()
        else:
            tokens = answer.json()
            user = await request.app.state.tokens.verify(tokens["access_token"])
            session._take_tokens(tokens, user_id=user.user_id, email=user.email,
                                 name=user.name, role=user.role)
        await _save_or_unavailable(request, session)
    finally:
        with contextlib.suppress(redis.RedisError):  # else it expires by itself
            await valkey.delete(lock)


async def _wait_for_refresh(valkey: redis.Redis, session: WebSession) -> None:
    """Another request is refreshing this session's tokens: take them when they come."""
    try:
        for _ in range(_REFRESH_LOCK_SECONDS * 10):
            await asyncio.sleep(0.1)
            fresh = await _fetch(valkey, session.id)
            if fresh is None or not fresh.logged_in:
                session.forget_user()
                return
            if fresh.access_expires_at > session.access_expires_at:
                session._adopt_tokens(fresh)
                return
    except redis.RedisError as exc:
        raise DependencyUnavailable("valkey", f"sessions cannot be refreshed: {exc}") from exc
    session.forget_user()


# --- logging in and out ---------------------------------------------------------------

class LoginRefused(Exception):
    """Identity said no; `message` says why, in words for the login form."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


async def log_in(request: Request, email: str, password: str) -> WebSession:
    """Log in with identity and start a new session for the user (a new id: an id seen
    before logging in is worth nothing after). Raises `LoginRefused` for wrong
    credentials, `DependencyUnavailable` when identity or Valkey is away."""
    answer = await request.app.state.identity.request(
        "POST", "/auth/login", json={"email": email, "password": password})
    if answer.status_code in (401, 422):
        raise LoginRefused("The e-mail address or password is wrong.")
    if answer.status_code != 200:
        raise DependencyUnavailable("identity", f"it answered HTTP {answer.status_code}")
    tokens = answer.json()
    user = await request.app.state.tokens.verify(tokens["access_token"])
    previous = await current_session(request)
    session = _new_session()
    session._take_tokens(tokens, user_id=user.user_id, email=user.email, name=user.name,
                         role=user.role)
    await _save_or_unavailable(request, session)
    if previous.stored:
        await _delete_quietly(request, previous)
    request.state.web_session = session
    _name_the_user(session)
    return session


async def log_out(request: Request) -> None:
    """End the session: forgotten in Valkey, the cookie cleared."""
    session = await current_session(request)
    if session.stored:
        await _delete_quietly(request, session)
    session.forget_user()
    session.changed, session.ended = False, True


async def _delete_quietly(request: Request, session: WebSession) -> None:
    try:
        await _valkey(request.app).delete(_key(session.id))
    except redis.RedisError as exc:
        logger.warning("an ended web session stays in Valkey until it expires: %s", exc)
    session.stored = False


def _name_the_user(session: WebSession) -> None:
    """Put the user id on this request's server span, as `CurrentUser` does for the API."""
    if session.user_id is not None:
        trace.get_current_span().set_attribute(semconv.ENDUSER_ID, session.user_id)


# --- dependencies ---------------------------------------------------------------------

class LoginRequired(Exception):
    """Send the browser to a login page (a 303), which returns it to `next` after."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


def return_path(request: Request) -> str:
    """Where to come back to after logging in: this page, or for a form post the page
    the form was on."""
    if request.method in ("GET", "HEAD"):
        query = f"?{request.url.query}" if request.url.query else ""
        return request.url.path + query
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc == request.url.netloc and referer.path:
        return referer.path + (f"?{referer.query}" if referer.query else "")
    return "/"


def safe_next(target: str | None, default: str = "/") -> str:
    """`target` if it is a path on this site, else `default`: a login form must not be
    usable to send people to another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


async def _web_session(request: Request) -> AsyncIterator[WebSession]:
    session = await current_session(request)
    if not session.logged_in or session.user_id is None:
        yield session
        return
    # Like kit.auth's CurrentUser: the user on the server span, and in baggage for
    # every later span and log line of this request, here and in the services called.
    _name_the_user(session)
    attached = context.attach(baggage.set_baggage(semconv.BAGGAGE_USER_ID, session.user_id))
    try:
        yield session
    finally:
        context.detach(attached)


WebSessionDep = Annotated[WebSession, Depends(_web_session, scope="function")]


async def _customer(request: Request, session: WebSessionDep) -> WebSession:
    if not session.logged_in:
        raise LoginRequired(f"/login?next={quote(return_path(request), safe='/')}")
    return session


async def _admin(request: Request, session: WebSessionDep) -> WebSession:
    if not session.logged_in:
        raise LoginRequired(f"/admin/login?next={quote(return_path(request), safe='/')}")
    if not session.is_admin:
        raise Problem(403, "forbidden", "This page is for the shop's administrators. You "
                      "are logged in as a customer.", title="Not allowed")
    return session


CustomerDep = Annotated[WebSession, Depends(_customer)]
AdminDep = Annotated[WebSession, Depends(_admin)]

CSRF_FAILED: Final = "This form has expired or was not sent by this site."


async def _csrf_checked(request: Request, session: WebSessionDep) -> WebSession:
    form = await request.form()
    sent = form.get("csrf_token")
    if (isinstance(sent, str) and session.stored
            and secrets.compare_digest(sent.encode(), session.csrf_token.encode())):
        return session
    detail = f"{CSRF_FAILED} Go back, reload the page and send it again."
    if COOKIE_NAME not in request.cookies and not _cookies_can_travel(request):
        # The usual reason on a plain-HTTP address other than this machine's: browsers
        # drop Secure cookies there.
        detail += (" Your browser did not send this site's session cookie: the shop's "
                   "cookies need https://, or http://127.0.0.1 / http://localhost.")
    raise Problem(403, "csrf-failed", detail, title="Form expired")


def _cookies_can_travel(request: Request) -> bool:
    host = request.url.hostname or ""
    return request.url.scheme == "https" or host in ("localhost", "127.0.0.1", "::1")


CsrfChecked = Annotated[WebSession, Depends(_csrf_checked)]


# --- rendering ------------------------------------------------------------------------

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


def format_money(amount: Any, currency: str | None = "USD") -> str:
    """"$1,299.99" for dollars, "1,299.99 EUR" for others; the amount as the API gives
    it (a decimal string)."""
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        return str(amount)
    text = f"{value:,.2f}"
    if currency in (None, "USD"):
        return f"${text}"
    return f"{text} {currency}"


templates.env.filters["money"] = format_money


def route_template(scope: Mapping[str, Any]) -> str:
    """The route that served the request, as its template (`/products/{product_id}`):
    what RUM groups page measurements by."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "(unmatched)"


def _messages_for(request: Request, session: WebSession) -> list[str]:
    """The one-time notices for this page. Only a page the browser navigates to uses them
    up: a script's fetch that followed a form post's redirect (rum.js does, then
    navigates there itself) shows them without taking them from the page that follows."""
    if request.headers.get("sec-fetch-mode", "navigate") == "navigate":
        return session.take_messages()
    return list(session.messages)


def _page_context(request: Request, session: WebSession, extra: Mapping[str, Any] | None
                  ) -> dict[str, Any]:
    return {
        "request": request,
        "session": session,
        "csrf_token": _FormToken(session),
        "explorer_url": request.app.state.settings.explorer_url,
        "route": route_template(request.scope),
        "current_path": request.url.path,
        "messages": _messages_for(request, session),
        **(extra or {}),
    }


def render(request: Request, template_name: str, context: Mapping[str, Any] | None = None,
           *, status_code: int = 200, headers: Mapping[str, str] | None = None
           ) -> HTMLResponse:
    """Answer with a page. The context gets `session`, `csrf_token`, `explorer_url`,
    `route` (the route's template), `current_path` and `messages` (one-time notices).
    The route must have asked for the session (`WebSessionDep`, `CustomerDep`,
    `AdminDep` or `CsrfChecked`)."""
    session: WebSession | None = getattr(request.state, "web_session", None)
    if session is None:
        raise RuntimeError(f"{request.url.path}: render() needs the route to take the "
                           "session (WebSessionDep, CustomerDep, AdminDep or CsrfChecked)")
    html = templates.get_template(template_name).render(
        _page_context(request, session, context))
    return HTMLResponse(html, status_code=status_code,
                        headers={**PAGE_SECURITY_HEADERS, **(headers or {})})


def see_other(location: str) -> RedirectResponse:
    """A 303 to `location`: after a form post, the browser GETs the next page (so a
    reload does not send the form again)."""
    return RedirectResponse(location, status_code=303)


# --- the HTML problem pages -----------------------------------------------------------

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


_PROBLEM_HEADINGS: Final = {
    400: "That request was not understood",
    401: "Please log in",
    403: "Not allowed",
    404: "Page not found",
    405: "Not available that way",
    409: "That did not work",
    422: "Something in the request is not right",
    429: "Too many requests",
}


def problem_page(request: Request, session: WebSession, problem: Mapping[str, Any],
                 status: int) -> str:
    """The HTML of the problem page for `problem` (a problem+json body)."""
    code = str(problem.get("type", "")).rsplit("/", 1)[-1]
    unavailable = status == 503 and code == "dependency-unavailable"
    heading = _PROBLEM_HEADINGS.get(status) or (
        "Something went wrong on our side" if status >= 500 else "That did not work")
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
    return templates.get_template(name).render(_page_context(request, session, values))


class HtmlProblemPages:
    """Problems answered to a browser's page request become the HTML problem page.

    Errors are answered as problem+json (kit/errors.py's handlers); this layer, outside
    those handlers, swaps the body for a page with the same look for 404, 403, 429 and
    5xx, keeping the status and headers (Retry-After). An exception no handler took
    becomes the 500 page here, recorded on the span and logged with its traceback as
    the request middleware would. API clients, and scripts that do not ask for HTML,
    keep the problem+json.
    """

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
            problem = {"detail": "Something went wrong on our side. The request id leads "
                                 "to the details.", "request_id": current_request_id()}
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
            session = _new_session()
        return problem_page(request, session, problem, status).encode()


class SessionCookies:
    """Saves a changed session and sets (or clears) the cookie before the response
    starts, whatever the response is: a page, a redirect, a problem page."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                session = scope.get("state", {}).get("web_session")
                cookie = await self._settle(scope, session) if session is not None else None
                if cookie is not None:
                    message = {**message, "headers": [*message.get("headers", []),
                                                      (b"set-cookie", cookie.encode())]}
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    @staticmethod
    async def _settle(scope: Scope, session: WebSession) -> str | None:
        if session.ended:
            return f"{COOKIE_NAME}=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Lax"
        saved = False
        if session.changed:
            try:
                saved = await _save_unless_overtaken(_valkey(scope["app"]), session)
            except redis.RedisError as exc:
                logger.warning("a web session could not be saved, Valkey is away: %s", exc)
        if not session.stored:
            return None
        if not saved and Request(scope).cookies.get(COOKIE_NAME) == session.id:
            return None  # the browser has it; each save (a token refresh at least every
            # few minutes while in use) sends it again, with its lifetime renewed
        return (f"{COOKIE_NAME}={session.id}; Max-Age={SESSION_IDLE_SECONDS}; Path=/; "
                "HttpOnly; Secure; SameSite=Lax")


async def _save_unless_overtaken(valkey: redis.Redis, session: WebSession) -> bool:
    """Save a session changed in this request (a notice added or shown, a lazy CSRF
    token), minding the browser's other requests meanwhile: one that logged out is not
    undone, and tokens one refreshed are kept (each refresh token works once)."""
    if session.stored:
        current = await _fetch(valkey, session.id)
        if current is None:
            session.stored = False
            return False
        if current.access_expires_at > session.access_expires_at:
            session._adopt_tokens(current)
    await _save(valkey, session)
    return True


async def _redirect_to_login(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    return see_other(exc.location)


def install(app: FastAPI) -> None:
    """Wire web sessions into `app` (needs `app.state.valkey`, `identity`, `tokens` and
    `settings.explorer_url`): the session cookie, the redirect to a login page, and the
    HTML problem pages."""
    app.add_exception_handler(LoginRequired, _redirect_to_login)
    # Innermost layers, just outside the exception handlers and inside the request
    # middleware: their Valkey calls and the pages they render belong to the request's
    # server span. The cookies sit outside the problem pages, so a problem page's
    # response carries the cookie too.
    app.user_middleware.append(Middleware(SessionCookies))
    app.user_middleware.append(Middleware(HtmlProblemPages))
