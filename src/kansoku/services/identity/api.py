"""The identity service's routes (internal: the gateway's public API fronts them)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from kansoku.kit.auth import CurrentUser
from kansoku.kit.db import DbSession
from kansoku.kit.openapi import PROBLEM
from kansoku.services.identity import service
from kansoku.services.identity.schemas import (
    Credentials,
    ProfileChange,
    RefreshRequest,
    Registration,
    ServiceToken,
    ServiceTokenRequest,
    Tokens,
    UserOut,
)

router = APIRouter(tags=["identity"])


def _token_lifetimes(request: Request) -> dict[str, int]:
    settings = request.app.state.settings
    return {"access_seconds": settings.access_token_seconds,
            "refresh_days": settings.refresh_token_days}


def _client_address(request: Request) -> str:
    """The client's address: the connecting one, or what the gateway forwards
    (kit.serve's trusted proxies)."""
    return request.client.host if request.client else "unknown"


@router.post("/users", status_code=201, responses={409: PROBLEM})
async def register(registration: Registration, session: DbSession) -> UserOut:
    """Create a customer account."""
    return await service.register(session, registration)


@router.post("/auth/login", responses={401: PROBLEM, 429: PROBLEM})
async def login(credentials: Credentials, session: DbSession, request: Request) -> Tokens:
    """Exchange e-mail and password for an access token and a refresh token. Failures
    in a row lock logins to the account, or from the address, for a while (429 with
    Retry-After)."""
    state = request.app.state
    return await service.login(session, credentials, state.signer,
                               access_seconds=state.settings.access_token_seconds,
                               refresh_days=state.settings.refresh_token_days,
                               address=_client_address(request),
                               throttle=state.login_throttle, clock=state.clock)


@router.post("/auth/refresh", responses={401: PROBLEM})
async def refresh(body: RefreshRequest, session: DbSession, request: Request) -> Tokens:
    """Exchange a refresh token (used up) for new tokens."""
    return await service.refresh(session, body.refresh_token.get_secret_value(),
                                 request.app.state.signer, **_token_lifetimes(request))


@router.post("/auth/service-token", responses={401: PROBLEM})
async def service_token(ask: ServiceTokenRequest, request: Request) -> ServiceToken:
    """A token with the service role, for a service that shows the stack's service
    secret (internal: the gateway does not expose this)."""
    settings = request.app.state.settings
    secret = settings.service_secret.get_secret_value() if settings.service_secret else None
    return service.issue_service_token(ask, secret, request.app.state.signer,
                                       access_seconds=settings.access_token_seconds)


@router.get("/users/me", responses={404: PROBLEM})
async def me(user: CurrentUser, session: DbSession) -> UserOut:
    """The caller's profile."""
    return await service.profile(session, user)


@router.patch("/users/me", responses={403: PROBLEM, 404: PROBLEM, 409: PROBLEM,
                                      429: PROBLEM})
async def change_me(change: ProfileChange, user: CurrentUser, session: DbSession,
                    request: Request) -> UserOut:
    """Change the caller's name, e-mail address or password; the last two need
    `current_password` (a new password ends other sessions)."""
    return await service.change_profile(session, user, change,
                                        address=_client_address(request),
                                        throttle=request.app.state.login_throttle,
                                        clock=request.app.state.clock)


@router.get("/.well-known/jwks.json")
async def jwks(request: Request) -> dict[str, Any]:
    """The public keys that verify access tokens."""
    keys: dict[str, Any] = request.app.state.signer.jwks()
    return keys
