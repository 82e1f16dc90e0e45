"""The gateway's state: built once by `create_app`, read by every route.

`Gateway` is what the gateway's routes share — its settings, the clients of the
services behind it, the shop's read model, the rate limits, the web sessions and the
browser-telemetry pipeline — as one typed object on `app.state.gateway`. A route takes
it as a `GatewayDep` parameter; `limit_requests` counts a request against the rate
limits. (What every service has — settings, telemetry, fault flags, the token verifier —
stays where the kit puts it, on `app.state`.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import redis.asyncio as redis
from fastapi import Depends, Request
from starlette.applications import Starlette

from kansoku.kit.auth import TokenVerifier, bearer_token
from kansoku.kit.clock import WallClock, wall_time
from kansoku.kit.errors import Problem
from kansoku.kit.ratelimit import RateLimiter
from kansoku.kit.telemetry import Telemetry
from kansoku.services.gateway.clients import Clients
from kansoku.services.gateway.rum.pipeline import BrowserTelemetry, KnownRoutes
from kansoku.services.gateway.settings import Settings
from kansoku.services.gateway.shop import Shop
from kansoku.services.gateway.web.sessions import COOKIE_NAME, SessionStore, is_session_id


@dataclass
class Gateway:
    """Everything the gateway's routes share."""

    settings: Settings
    clients: Clients
    shop: Shop
    #: The public API's (and the pages' form posts') limits per address and per user.
    limits: RateLimiter
    sessions: SessionStore
    #: Browser telemetry: its own limits, the gateway's route templates, and the
    #: pipeline that forwards it (None while the gateway's telemetry is off).
    rum_limits: RateLimiter
    rum_routes: KnownRoutes
    rum: BrowserTelemetry | None

    @classmethod
    def build(cls, settings: Settings, telemetry: Telemetry, valkey: redis.Redis, *,
              clock: WallClock = wall_time) -> Gateway:
        """The gateway's state for `settings`: clients traced by `telemetry`, sessions
        and rate limits in `valkey`, time by `clock` (the wall clock, in seconds)."""
        clients = Clients.connect(settings, telemetry)
        return cls(
            settings=settings,
            clients=clients,
            shop=Shop(clients),
            limits=RateLimiter(valkey, clock=clock),
            sessions=SessionStore(valkey, clock=clock),
            rum_limits=RateLimiter(valkey, prefix="ratelimit:rum", clock=clock),
            rum_routes=KnownRoutes(),
            # With the gateway's telemetry off (tests, OTEL_SDK_DISABLED), the intake
            # still checks what it is sent, and drops it.
            rum=BrowserTelemetry.for_environment() if telemetry.enabled else None,
        )


def gateway_of(app: Starlette) -> Gateway:
    """The gateway's state of `app` (made by `create_app`)."""
    gateway: Gateway = app.state.gateway
    return gateway


def tokens_of(app: Starlette) -> TokenVerifier:
    """The verifier of access tokens every service has (`kit.app`)."""
    verifier: TokenVerifier = app.state.tokens
    return verifier


async def _gateway(request: Request) -> Gateway:
    # async: FastAPI runs a plain function dependency in a thread pool, costing far
    # more than the lookup.
    return gateway_of(request.app)


#: A route parameter: the gateway's state.
GatewayDep = Annotated[Gateway, Depends(_gateway)]


def client_address(request: Request) -> str:
    """Who is calling: the connecting address, or what a trusted proxy says it is
    (kit.serve: KANSOKU_TRUSTED_PROXIES), never what a client claims."""
    return request.client.host if request.client else "unknown"


async def limit_requests(request: Request) -> None:
    """Count the request against its caller's limit: a logged-in user's (a valid access
    token, or a logged-in web session) when there is one, else its address's.

    Keyed so that no client can spend another's allowance: a user's requests never
    count against the address they come from (a flood of anonymous or forged requests
    from one address, a laptop's 127.0.0.1 included, leaves the users there alone), and
    an address is the connecting one, or what a trusted proxy says it is (kit.serve:
    KANSOKU_TRUSTED_PROXIES), never what a client claims. A token that does not verify
    is anonymous: a forged token spends its sender's address, never the user it names.
    See docs/security.md.
    """
    gateway = gateway_of(request.app)
    settings = gateway.settings
    user_id = await _logged_in_user(request, gateway)
    if user_id is not None:
        await gateway.limits.check("user", user_id, settings.rate_limit_per_user)
        return
    await gateway.limits.check("address", client_address(request), settings.rate_limit_per_ip)


async def _logged_in_user(request: Request, gateway: Gateway) -> str | None:
    """Who is calling, if anyone: the access token's user, or the web session's."""
    token = bearer_token(request)
    if token:
        try:
            return (await tokens_of(request.app).verify(token)).user_id
        except Problem:
            return None  # the route's own check answers 401
    cookie = request.cookies.get(COOKIE_NAME)
    if not is_session_id(cookie):
        return None
    assert cookie is not None
    try:
        session = await gateway.sessions.fetch(cookie)
    except redis.RedisError:
        return None  # the page says Valkey is away, if it needs the session
    return session.user_id if session is not None and session.logged_in else None
