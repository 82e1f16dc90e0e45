"""Who may see a page: the request's web session, logging in and out, and CSRF.

Route parameters (FastAPI dependencies):

- `session: WebSessionDep` — anyone; an anonymous session is stored only once a page
  shows it a form (so crawlers and load tests do not fill Valkey);
- `customer: CustomerDep` — logged in, else a 303 to `/login?next=<this page>`;
- `admin: AdminDep` — the admin role; anonymous: a 303 to `/admin/login?next=…`;
  logged in without the role: the 403 page;
- `session: CsrfChecked` — on every form POST: the form's `csrf_token` must be the
  session's, else the 403 page "This form has expired or was not sent by this site";
- `caller: ScriptCaller` — a page's script: logged in (else 401 as JSON: a script cannot
  follow a login page), the session's CSRF token in the `X-CSRF-Token` header.

A logged-in session names its user on the request's server span and in baggage
(`enduser.id`), as `kit.auth`'s `CurrentUser` does for the API, so every later span and
log line of the request, here and in the services called, carries it.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from typing import Annotated, Final
from urllib.parse import quote, urlsplit

import redis.asyncio as redis
from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from opentelemetry import baggage, context, trace

from kansoku.contracts.calls import Refused
from kansoku.kit import semconv
from kansoku.kit.errors import DependencyUnavailable, Problem
from kansoku.kit.i18n import _, lazy_gettext
from kansoku.services.gateway.state import client_address, gateway_of, tokens_of
from kansoku.services.gateway.web.sessions import (
    COOKIE_NAME,
    LoginRequired,
    WebSession,
    is_session_id,
)

logger = logging.getLogger(__name__)

#: The header the pages' scripts send the session's CSRF token in.
CSRF_HEADER: Final = "X-CSRF-Token"
CSRF_FAILED: Final = lazy_gettext("This form has expired or was not sent by this site.")


async def current_session(request: Request) -> WebSession:
    """This request's session: the cookie's, or a new anonymous one (not stored yet).
    Loaded once per request; an access token about to expire is refreshed on the way."""
    loaded: WebSession | None = getattr(request.state, "web_session", None)
    if loaded is not None:
        return loaded
    store = gateway_of(request.app).sessions
    session = None
    cookie = request.cookies.get(COOKIE_NAME)
    if is_session_id(cookie):
        assert cookie is not None
        try:
            session = await store.fetch(cookie)
        except redis.RedisError as exc:
            # Browsing goes on without sessions; logging in says Valkey is away.
            logger.warning("web sessions cannot be read, Valkey is away: %s", exc)
    if session is None:
        session = WebSession.new()
    request.state.web_session = session
    if session.needs_refresh(store.clock()):
        await store.refresh(session, gateway_of(request.app).clients.identity,
                            tokens_of(request.app))
    return session


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
    gateway = gateway_of(request.app)
    try:
        tokens = await gateway.clients.identity.log_in(email, password,
                                                       client_address(request))
    except Refused as refused:
        if refused.status in (401, 422):
            raise LoginRefused(_("The e-mail address or password is wrong.")) from refused
        if refused.status == 429:  # logins locked for a while: the 429 page says so
            raise Problem(429, "login-locked", refused.detail,
                          headers=refused.headers) from refused
        raise DependencyUnavailable("identity",
                                    f"it answered HTTP {refused.status}") from refused
    previous = await current_session(request)
    session = WebSession.new()
    await gateway.sessions.log_in(session, tokens, tokens_of(request.app))
    if previous.stored:
        await gateway.sessions.delete_quietly(previous)
    request.state.web_session = session
    _name_the_user(session)
    return session


async def log_out(request: Request) -> None:
    """End the session: forgotten in Valkey, the cookie cleared."""
    session = await current_session(request)
    if session.stored:
        await gateway_of(request.app).sessions.delete_quietly(session)
    session.forget_user()
    session.changed, session.ended = False, True


def _name_the_user(session: WebSession) -> None:
    """Put the user id on this request's server span, as `CurrentUser` does for the API."""
    if session.user_id is not None:
        trace.get_current_span().set_attribute(semconv.ENDUSER_ID, session.user_id)


# --- where to go after logging in -----------------------------------------------------

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


def see_other(location: str) -> RedirectResponse:
    """A 303 to `location`: after a form post, the browser GETs the next page (so a
    reload does not send the form again)."""
    return RedirectResponse(location, status_code=303)


async def redirect_to_login(request: Request, exc: Exception) -> Response:
    """The exception handler for `LoginRequired`."""
    assert isinstance(exc, LoginRequired)
    return see_other(exc.location)


# --- the dependencies -----------------------------------------------------------------

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
        raise Problem(403, "forbidden", _("This page is for the shop's administrators. You "
                                          "are logged in as a customer."), title="Not allowed")
    return session


CustomerDep = Annotated[WebSession, Depends(_customer)]
AdminDep = Annotated[WebSession, Depends(_admin)]


def _token_matches(session: WebSession, sent: object) -> bool:
    return (isinstance(sent, str) and session.stored
            and secrets.compare_digest(sent.encode(), session.csrf_token.encode()))


async def _csrf_checked(request: Request, session: WebSessionDep) -> WebSession:
    form = await request.form()
    if _token_matches(session, form.get("csrf_token")):
        return session
    detail = f"{CSRF_FAILED} " + _("Go back, reload the page and send it again.")
    if COOKIE_NAME not in request.cookies and not _cookies_can_travel(request):
        # The usual reason on a plain-HTTP address other than this machine's: browsers
        # drop Secure cookies there.
        detail += " " + _("Your browser did not send this site's session cookie: the "
                          "shop's cookies need https://, or http://127.0.0.1 / "
                          "http://localhost.")
    raise Problem(403, "csrf-failed", detail, title="Form expired")


def _cookies_can_travel(request: Request) -> bool:
    host = request.url.hostname or ""
    return request.url.scheme == "https" or host in ("localhost", "127.0.0.1", "::1")


CsrfChecked = Annotated[WebSession, Depends(_csrf_checked)]


async def _admin_post(admin: AdminDep, checked: CsrfChecked) -> WebSession:
    """An admin's form post, with the form's CSRF token checked."""
    return admin


#: Route parameter type for every admin form post.
AdminPost = Annotated[WebSession, Depends(_admin_post)]


async def _script_caller(request: Request, session: WebSessionDep) -> WebSession:
    if not session.logged_in:
        raise Problem(401, "login-required",
                      _("You are not logged in any more: reload the page and log in."))
    if not _token_matches(session, request.headers.get(CSRF_HEADER, "")):
        raise Problem(403, "csrf-failed",
                      f"{CSRF_FAILED} " + _("Reload the page and try again."),
                      title="Form expired")
    return session


ScriptCaller = Annotated[WebSession, Depends(_script_caller)]
