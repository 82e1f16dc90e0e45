"""The layers the pages put around every request: the session cookie, the HTML problem
pages, and the redirect to a login page (`install`, called once by `create_app`)."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware import Middleware

from kansoku.services.gateway.web.auth import redirect_to_login
from kansoku.services.gateway.web.problem_pages import HtmlProblemPages
from kansoku.services.gateway.web.sessions import LoginRequired, SessionCookies, SessionStore


def install(app: FastAPI, sessions: SessionStore) -> None:
    """Wire the pages' layers into `app`: the session cookie (sessions kept in
    `sessions`), the HTML problem pages, and the redirect to a login page.

    They are the innermost layers, just outside the exception handlers and inside the
    request middleware, so their Valkey calls and the pages they render belong to the
    request's server span. The cookies sit outside the problem pages, so a problem
    page's response carries the cookie too.
    """
    app.user_middleware.append(Middleware(SessionCookies, store=sessions))
    app.user_middleware.append(Middleware(HtmlProblemPages))
    app.add_exception_handler(LoginRequired, redirect_to_login)
