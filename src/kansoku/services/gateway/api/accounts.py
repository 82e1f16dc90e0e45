"""Accounts: registering, logging in, refreshing tokens, and one's own profile."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from kansoku.kit.auth import CurrentUser
from kansoku.kit.openapi import PROBLEM
from kansoku.services.gateway.api.common import ApiCaller
from kansoku.services.gateway.api.schemas import (
    Credentials,
    ProfileChange,
    RefreshRequest,
    Registration,
    Tokens,
    User,
)
from kansoku.services.gateway.state import GatewayDep, client_address

router = APIRouter(tags=["accounts"])


@router.post("/users", status_code=201, response_model=User, responses={409: PROBLEM,
                                                                         422: PROBLEM})
async def register(registration: Registration, gateway: GatewayDep) -> Any:
    """Create a customer account."""
    return await gateway.clients.identity.register(registration.model_dump(mode="json"))


@router.post("/auth/login", response_model=Tokens, responses={401: PROBLEM})
async def login(credentials: Credentials, gateway: GatewayDep, request: Request) -> Any:
    """Exchange e-mail and password for an access token (send it as
    `Authorization: Bearer …`) and a refresh token. Failed logins in a row lock the
    account, or the address they come from, for a while: 429 with `Retry-After`."""
    return await gateway.clients.identity.log_in(credentials.email, credentials.password,
                                                 client_address(request))


@router.post("/auth/refresh", response_model=Tokens, responses={401: PROBLEM})
async def refresh(body: RefreshRequest, gateway: GatewayDep) -> Any:
    """Exchange a refresh token (each works once) for new tokens."""
    return await gateway.clients.identity.refresh(body.refresh_token)


@router.get("/users/me", response_model=User, responses={401: PROBLEM})
async def me(user: CurrentUser, caller: ApiCaller, gateway: GatewayDep) -> Any:
    """Your profile."""
    return await gateway.clients.identity.me(caller)


@router.patch("/users/me", response_model=User,
              responses={401: PROBLEM, 403: PROBLEM, 409: PROBLEM, 422: PROBLEM})
async def change_me(change: ProfileChange, user: CurrentUser, caller: ApiCaller,
                    gateway: GatewayDep, request: Request) -> Any:
    """Change your name, e-mail address or password. A new e-mail address or password
    needs `current_password` (422 without it, 403 when it is wrong; wrong ones count
    towards the login lock). A new password logs out your other sessions."""
    return await gateway.clients.identity.change_me(
        caller, change.model_dump(mode="json", exclude_unset=True), client_address(request))
