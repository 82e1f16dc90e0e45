"""Who is calling: access tokens issued by the identity service, verified everywhere.

Identity signs short-lived JWTs (RS256) and publishes its public keys as a JWKS. Every
service verifies tokens itself with those keys — no call to identity per request — and
gets a `Principal`. Verifying also puts the user id in baggage and on the server span
(`enduser.id`), so every later span and log line of the request, in every service,
names the user.

Work a service does on its own — the worker storing a thumbnail, or reading stock for a
report — carries a *service token* instead: `ServiceCredentials` asks identity for one
with the stack's service secret and keeps it until shortly before it expires.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
import jwt
from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from opentelemetry import baggage, context, propagate, trace

from kansoku.kit import semconv
from kansoku.kit.errors import DependencyUnavailable, Problem
from kansoku.kit.http import ServiceClient

ISSUER = "kansoku-identity"
AUDIENCE = "kansoku"
ALGORITHM = "RS256"
ROLE_ADMIN = "admin"
ROLE_CUSTOMER = "customer"
#: Services acting on their own; their subject is `service:<name>`.
ROLE_SERVICE = "service"
SERVICE_SUBJECT_PREFIX = "service:"

#: An unknown key id makes the verifier fetch the JWKS again, but not more often than
#: this: a flood of forged tokens must not become a flood of requests to identity.
_MIN_REFETCH_SECONDS = 10.0


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    user_id: str
    email: str
    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == ROLE_ADMIN

    @property
    def is_service(self) -> bool:
        return self.role == ROLE_SERVICE


def unauthorized(detail: str) -> Problem:
    return Problem(401, "unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


class TokenVerifier:
    """Verifies access tokens against identity's JWKS (fetched once, refreshed when a
    token names a key it has not seen)."""

    def __init__(self, jwks_url: str | None = None, *, jwks: dict[str, Any] | None = None,
                 client: httpx.AsyncClient | None = None) -> None:
        self.jwks_url = jwks_url
        self._keys: dict[str, Any] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()
        self._client = client
        if jwks is not None:
            self._load(jwks)

    def _load(self, jwks: dict[str, Any]) -> None:
        key_set = jwt.PyJWKSet.from_dict(jwks)
        self._keys = {key.key_id: key for key in key_set.keys if key.key_id}

    async def _key(self, key_id: str) -> Any:
        if key_id in self._keys:
            return self._keys[key_id]
        if self.jwks_url is None:
            raise unauthorized("The token was signed with an unknown key.")
        async with self._lock:
            if key_id not in self._keys and time.monotonic() - self._fetched_at > (
                _MIN_REFETCH_SECONDS if self._keys else 0
            ):
                await self._fetch()
        if key_id not in self._keys:
            raise unauthorized("The token was signed with an unknown key.")
        return self._keys[key_id]

    async def _fetch(self) -> None:
        assert self.jwks_url is not None
        self._fetched_at = time.monotonic()
        client = self._client or httpx.AsyncClient(timeout=3.0)
        # The request that met the unknown key is the parent of identity's span, rather
        # than identity's span a trace of its own.
        headers: dict[str, str] = {}
        propagate.inject(headers)
        try:
            response = await client.get(self.jwks_url, headers=headers)
            response.raise_for_status()
            self._load(response.json())
        except (httpx.HTTPError, ValueError, jwt.PyJWKSetError) as exc:
            raise Problem(503, "identity-unavailable",
                          "Tokens cannot be checked right now: the identity service's keys "
                          "are out of reach. Please try again shortly.") from exc
        finally:
            if self._client is None:
                await client.aclose()

    async def verify(self, token: str) -> Principal:
        """The caller a token names. Whatever is wrong with the token — malformed, a
        header PyJWT refuses (a `kid` that is not a string, an unknown `crit`), a bad
        signature, wrong claims — is the caller's mistake and a 401, never a 500:
        every PyJWT error is caught (`jwt.PyJWTError`, their common base), not a list
        of the ones seen so far."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise unauthorized("The access token is malformed.") from exc
        key_id = header.get("kid")
        if not isinstance(key_id, str) or not key_id:
            raise unauthorized("The access token names no signing key.")
        key = await self._key(key_id)
        try:
            claims = jwt.decode(token, key=key, algorithms=[ALGORITHM], audience=AUDIENCE,
                                issuer=ISSUER, options={"require": ["exp", "sub", "iat"]})
        except jwt.ExpiredSignatureError as exc:
            raise unauthorized("The access token has expired: refresh it or log in again."
                               ) from exc
        except jwt.PyJWTError as exc:
            raise unauthorized("The access token is not valid.") from exc
        return Principal(user_id=str(claims["sub"]), email=str(claims.get("email", "")),
                         name=str(claims.get("name", "")),
                         role=str(claims.get("role", ROLE_CUSTOMER)))


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


#: The `Authorization: Bearer <access token>` scheme, as the OpenAPI document names it.
#: It does not answer by itself (`auto_error=False`): a missing token is our 401 problem.
_BEARER = HTTPBearer(auto_error=False, bearerFormat="JWT",
                     description="An access token from `POST /auth/login`")


async def _authenticated(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
) -> AsyncIterator[Principal]:
    if credentials is None or not credentials.credentials.strip():
        raise unauthorized("Log in first: send 'Authorization: Bearer <access token>'.")
    token = credentials.credentials.strip()
    verifier: TokenVerifier = request.app.state.tokens
    principal = await verifier.verify(token)
    if principal.is_service:
        # A service is not an end user: keep whatever user the trace already names.
        yield principal
        return
    trace.get_current_span().set_attribute(semconv.ENDUSER_ID, principal.user_id)
    attached = context.attach(baggage.set_baggage(semconv.BAGGAGE_USER_ID, principal.user_id))
    try:
        yield principal
    finally:
        context.detach(attached)


async def _admin(principal: Annotated[Principal, Depends(_authenticated, scope="function")]
                 ) -> Principal:
    if not principal.is_admin:
        raise Problem(403, "forbidden", "This needs the admin role.")
    return principal


async def _admin_or_service(
        principal: Annotated[Principal, Depends(_authenticated, scope="function")]
) -> Principal:
    if not (principal.is_admin or principal.is_service):
        raise Problem(403, "forbidden", "This needs the admin role or a service token.")
    return principal


#: Route parameter types: `user: CurrentUser` (401 without a valid token),
#: `admin: AdminUser` (403 for anyone but an admin) and `caller: AdminOrService` (an
#: admin, or a service acting on its own). The app needs `app.state.tokens`.
#: The roles are named in the OpenAPI document's security requirement of each route
#: (`{"HTTPBearer": ["admin"]}`), where `kit.openapi` documents the 403.
CurrentUser = Annotated[Principal, Depends(_authenticated, scope="function")]
AdminUser = Annotated[Principal, Security(_admin, scopes=[ROLE_ADMIN])]
AdminOrService = Annotated[Principal, Security(_admin_or_service,
                                               scopes=[ROLE_ADMIN, ROLE_SERVICE])]

#: Ask for a new service token this long before the current one expires, so a call
#: never leaves with a token that expires on the way.
_RENEW_BEFORE_SECONDS = 60.0


class ServiceCredentials:
    """A service's own token, from identity's `/auth/service-token`, kept until shortly
    before it expires. `await credentials.headers()` gives the Authorization header."""

    def __init__(self, service: str, identity: ServiceClient, secret: str | None) -> None:
        self.service = service
        self._identity = identity
        self._secret = secret
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = asyncio.Lock()

    async def headers(self) -> dict[str, str]:
        """Raises `DependencyUnavailable` when no token can be had (no secret configured,
        or identity refuses or cannot be reached)."""
        async with self._lock:
            if self._token is None or time.monotonic() >= self._renew_at:
                await self._fetch()
        return {"Authorization": f"Bearer {self._token}"}

    async def _fetch(self) -> None:
        if not self._secret:
            raise DependencyUnavailable(
                "identity", "no service secret configured: set KANSOKU_SERVICE_SECRET")
        response = await self._identity.request(
            "POST", "/auth/service-token",
            json={"service": self.service, "secret": self._secret})
        if response.status_code != 200:
            raise DependencyUnavailable(
                "identity", f"it refused a service token (HTTP {response.status_code})")
        answer = response.json()
        self._token = str(answer["access_token"])
        lifetime = float(answer["expires_in"])
        self._renew_at = time.monotonic() + max(lifetime - _RENEW_BEFORE_SECONDS,
                                                lifetime / 2)
