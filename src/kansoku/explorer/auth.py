"""The explorer's login: off on a laptop, on in compose and in Kubernetes.

Telemetry names customers (their user ids), shows what they did, and holds the shop's
errors; on a network, not everyone who can reach port 8800 should read it. With
`KANSOKU_EXPLORER_AUTH=true`:

- people get a login page (`/login`) and, with the right password
  (`KANSOKU_EXPLORER_PASSWORD`), a cookie session: HttpOnly, Secure, SameSite=Lax,
  signed with a key derived from the explorer's secrets, valid for `SESSION_SECONDS`.
  Nothing is stored on the server; changing either secret ends every session.
- programs (the gateway's admin dashboard, `kansoku alerts list`, the chaos probes, a
  script or Grafana) send `Authorization: Bearer <KANSOKU_EXPLORER_TOKEN>`.
- OTLP ingest (`/v1/…`, on both ports, as before) and `/health` stay open: every
  service sends telemetry without a credential, and in a cluster a NetworkPolicy decides
  who reaches the OTLP port.

Anything else without a credential: a browser asking for a page is sent to the login
page; a program gets a 401 problem. `install` is the one hook `explorer.app` calls.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import time
from typing import Final
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from kansoku.kit.errors import problem_response
from kansoku.kit.i18n import current_language, gettext
from kansoku.kit.settings import ConfigurationError

#: The session cookie, and how long a login lasts.
COOKIE_NAME: Final = "kansoku_explorer"
SESSION_SECONDS: Final = 12 * 3600
#: Open without a credential: OTLP ingest, health probes and scrapes, the login itself.
OPEN_PREFIXES: Final = ("/v1/", "/health", "/metrics", "/login", "/logout", "/static/")


class ExplorerCredentials:
    """The explorer's two secrets, and the cookie sessions signed with a key derived
    from both."""

    def __init__(self, password: str, token: str) -> None:
        self._password = password.encode()
        self._token = token.encode()
        self._signing_key = hashlib.sha256(b"kansoku explorer session\0" + self._password
                                           + b"\0" + self._token).digest()

    def password_matches(self, offered: str) -> bool:
        return hmac.compare_digest(offered.encode(), self._password)

    def token_matches(self, offered: str) -> bool:
        return hmac.compare_digest(offered.encode(), self._token)

    def _signature(self, expires: int) -> str:
        return hmac.new(self._signing_key, f"v1.{expires}".encode(), hashlib.sha256).hexdigest()

    def new_session(self, now: float) -> str:
        expires = int(now) + SESSION_SECONDS
        return f"v1.{expires}.{self._signature(expires)}"

    def session_is_valid(self, cookie: str, now: float) -> bool:
        version, _, rest = cookie.partition(".")
        expires, _, signature = rest.partition(".")
        if version != "v1" or not expires.isdigit():
            return False
        return (hmac.compare_digest(signature, self._signature(int(expires)))
                and int(expires) > now)


def credentials_for(auth: bool, password: str | None, token: str | None
                    ) -> ExplorerCredentials | None:
    """The credentials to check when `auth` is on (None when off); a missing secret is a
    `ConfigurationError` naming its variable."""
    if not auth:
        return None
    missing = [name for name, value in (("KANSOKU_EXPLORER_PASSWORD", password),
                                        ("KANSOKU_EXPLORER_TOKEN", token)) if not value]
    if missing:
        raise ConfigurationError(
            f"{' and '.join(missing)} not set: KANSOKU_EXPLORER_AUTH=true needs a password "
            "for people and a token for programs (docs/security.md)")
    assert password is not None and token is not None
    return ExplorerCredentials(password, token)


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else None
    return None


def _cookie(request: Request) -> str | None:
    return request.cookies.get(COOKIE_NAME)


def _wants_a_page(request: Request) -> bool:
    return request.method in ("GET", "HEAD") and "text/html" in request.headers.get("accept", "")


def _local_path(value: str | None) -> str:
    """Where to go after logging in: a path on this site, never another site."""
    if value and value.startswith("/") and not value.startswith(("//", "/\\")):
        return value
    return "/"


class RequireLogin:
    """Lets a request through with a valid bearer token or session cookie, or to an
    open path; otherwise answers itself (login page redirect, or 401)."""

    def __init__(self, app: ASGIApp, credentials: ExplorerCredentials) -> None:
        self.app = app
        self.credentials = credentials

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(OPEN_PREFIXES):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        token = _bearer(scope)
        cookie = _cookie(request)
        if (token is not None and self.credentials.token_matches(token)) or (
                token is None and cookie is not None
                and self.credentials.session_is_valid(cookie, time.time())):
            await self.app(scope, receive, send)
            return
        response: Response
        if token is None and _wants_a_page(request):
            target = scope["path"] + (f"?{request.url.query}" if request.url.query else "")
            response = RedirectResponse(f"/login?next={quote(target)}", status_code=303)
        else:
            response = problem_response(
                401, "unauthorized", gettext(
                    "The explorer needs a login: send 'Authorization: Bearer <the "
                    "explorer's token>' (KANSOKU_EXPLORER_TOKEN), or log in at /login in "
                    "a browser."), title=gettext("Unauthorized"),
                instance=scope["path"], headers={"WWW-Authenticate": "Bearer"})
        await response(scope, receive, send)


_LOGIN_PAGE: Final = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><title>{title} · kansoku explorer</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;max-width:22rem;margin:4rem auto;padding:0 1rem}}
label,input,button{{display:block;width:100%;margin:.4rem 0;font-size:1rem}}
input{{padding:.4rem}}.error{{color:#b00020}}</style></head>
<body><h1>kansoku explorer</h1>
<p>{about}</p>{error}
<form method="post" action="/login"><input type="hidden" name="next" value="{next}">
<label for="password">{password}</label>
<input id="password" name="password" type="password" autocomplete="current-password"
 required autofocus><button type="submit">{title}</button></form></body></html>
"""


def _login_page(next_path: str, error: str | None = None, status: int = 200) -> HTMLResponse:
    """The login form, in the request's language (kit/i18n.py)."""
    shown = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    words = {name: html.escape(text) for name, text in (
        ("title", gettext("Log in")),
        ("about", gettext("The explorer holds the shop's telemetry: log in to read it.")),
        ("password", gettext("Password")))}
    return HTMLResponse(_LOGIN_PAGE.format(error=shown, next=html.escape(next_path),
                                           lang=current_language(), **words),
                        status_code=status)


def install(app: FastAPI, credentials: ExplorerCredentials | None) -> None:
    """Require a login on `app` (nothing, when `credentials` is None: auth is off)."""
    if credentials is None:
        return
    # Inside the kit's request middleware: a refusal is logged and has a request id.
    app.user_middleware.append(Middleware(RequireLogin, credentials=credentials))

    async def login_page(request: Request) -> Response:
        """The login form."""
        return _login_page(_local_path(request.query_params.get("next")))

    async def log_in(request: Request) -> Response:
        """Check the password; a session cookie and back to where the browser was."""
        form = await request.form()
        next_path = _local_path(str(form.get("next") or "/"))
        if not credentials.password_matches(str(form.get("password") or "")):
            return _login_page(next_path, gettext("That password is not the explorer's."), 401)
        response = RedirectResponse(next_path, status_code=303)
        response.set_cookie(COOKIE_NAME, credentials.new_session(time.time()),
                            max_age=SESSION_SECONDS, path="/", secure=True, httponly=True,
                            samesite="lax")
        return response

    async def log_out(request: Request) -> Response:
        """End this browser's session."""
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE_NAME, path="/", secure=True, httponly=True,
                               samesite="lax")
        return response

    app.add_api_route("/login", login_page, methods=["GET"], include_in_schema=False)
    app.add_api_route("/login", log_in, methods=["POST"], include_in_schema=False)
    app.add_api_route("/logout", log_out, methods=["POST"], include_in_schema=False)
