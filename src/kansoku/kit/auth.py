"""Who is calling: access tokens issued by the identity service, verified everywhere.

Identity signs short-lived JWTs (RS256) and publishes its public keys as a JWKS. Every
service verifies tokens itself with those keys — no call to identity per request — and
gets a `Principal`. Verifying also puts the user id in baggage and on the server span
(`enduser.id`), so every later span and log line of the request, in every service,
names the user.

Work a service does on its own — the worker storing a thumbnail, or reading stock for a
report — carries a *service token* instead: `ServiceCredentials` asks identity for one
with the stack's service secret and keeps it until shortly before it expires.

Who may call what is declared on each route with `allow(...)`: named services, admins,
customers (whose ownership of what they touch the service then checks). A service
checks this itself, whatever sits in front of it: in compose and Kubernetes every pod
can reach every service's port, so "only the gateway calls it" protects nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Final

import httpx
import jwt
from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from opentelemetry import baggage, context, propagate, trace

from kansoku.kit import approaches, semconv
from kansoku.kit.errors import DependencyUnavailable, Problem
from kansoku.kit.http import ServiceClient
from kansoku.kit.i18n import _

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

    @property
    def service_name(self) -> str | None:
        """The service a service token was issued to (`orders`), else None."""
        if not self.is_service or not self.user_id.startswith(SERVICE_SUBJECT_PREFIX):
            return None
        return self.user_id.removeprefix(SERVICE_SUBJECT_PREFIX)


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
            raise unauthorized(_("The token was signed with an unknown key."))
        async with self._lock:
            if key_id not in self._keys and time.monotonic() - self._fetched_at > (
                _MIN_REFETCH_SECONDS if self._keys else 0
            ):
                await self._fetch()
        if key_id not in self._keys:
            raise unauthorized(_("The token was signed with an unknown key."))
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
                          _("Tokens cannot be checked right now: the identity service's "
                            "keys are out of reach. Please try again shortly.")) from exc
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
            raise unauthorized(_("The access token is malformed.")) from exc
        key_id = header.get("kid")
        if not isinstance(key_id, str) or not key_id:
            raise unauthorized(_("The access token names no signing key."))
        key = await self._key(key_id)
        try:
            claims = jwt.decode(token, key=key, algorithms=[ALGORITHM], audience=AUDIENCE,
                                issuer=ISSUER, options={"require": ["exp", "sub", "iat"]})
        except jwt.ExpiredSignatureError as exc:
            raise unauthorized(_("The access token has expired: refresh it or log in "
                                 "again.")) from exc
        except jwt.PyJWTError as exc:
            raise unauthorized(_("The access token is not valid.")) from exc
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
        raise unauthorized(_("Log in first: send 'Authorization: Bearer <access token>'."))
    token = credentials.credentials.strip()
    verifier: TokenVerifier = request.app.state.tokens
    principal = await verifier.verify(token)
    if principal.is_service:
        # A service is not an end user: keep whatever user the trace already names.
        yield principal
        return
    trace.get_current_span().set_attribute(semconv.ENDUSER_ID, principal.user_id)
    approaches.user_identified(principal.user_id)  # a vendor's agent names them its way
    attached = context.attach(baggage.set_baggage(semconv.BAGGAGE_USER_ID, principal.user_id))
    try:
        yield principal
    finally:
        context.detach(attached)


@dataclass(frozen=True)
class Access:
    """Who may call one operation: the services named, admins, and/or customers.

    A customer admitted here is only half the check: the service then makes sure the
    order, payment or cart is theirs (and answers 404 when it is not, so that nobody
    learns what exists). Admins are users too: an operation open to customers is open
    to them.
    """

    services: frozenset[str] = frozenset()
    admin: bool = False
    customers: bool = False

    def admits(self, principal: Principal) -> bool:
        if principal.is_service:
            return principal.service_name in self.services
        if principal.is_admin:
            return self.admin or self.customers
        return self.customers

    @property
    def scopes(self) -> list[str]:
        """The roles as the OpenAPI document names them (`service:orders`, `admin`,
        `customer`), in the route's security requirement."""
        return ([f"{SERVICE_SUBJECT_PREFIX}{name}" for name in sorted(self.services)]
                + ([ROLE_ADMIN] if self.admin else [])
                + ([ROLE_CUSTOMER] if self.customers else []))

    def describe(self) -> str:
        """Who may call, as a sentence part in the reader's language: "the orders
        service or an admin"."""
        names = [_("the {name} service").format(name=name) for name in sorted(self.services)]
        if self.admin:
            names.append(_("an admin"))
        if self.customers:
            names.append(_("a customer"))
        if not names:
            return _("nobody")
        described = names[0]
        for name in names[1:]:
            described = _("{one} or {other}").format(one=described, other=name)
        return described

    def refusal(self, principal: Principal) -> Problem:
        who = (_("the {name} service").format(name=principal.service_name)
               if principal.is_service else _("an admin") if principal.is_admin
               else _("a customer"))
        return Problem(403, "forbidden", _("Only {allowed} may do this, and this token is "
                                           "{who}'s.").format(allowed=self.describe(),
                                                              who=who))


#: The attribute of an `allow(...)` check that holds its `Access`, for whoever walks
#: the routes (the OpenAPI document, tests/security/test_authorization.py).
ACCESS_ATTRIBUTE: Final = "kansoku_access"


def allow(*, services: Iterable[str] = (), admin: bool = False, customers: bool = False
          ) -> Any:
    """A route parameter's marker that admits only these callers: 401 without a valid
    token, 403 for anyone else. A service names its rules once, as types:
    `OrdersOrAdmin = Annotated[Principal, allow(services=["orders"], admin=True)]`, then
    `caller: OrdersOrAdmin` on the route."""
    access = Access(frozenset(services), admin, customers)
    assert access.services or access.admin or access.customers, "allow() admits nobody"

    async def check(principal: Annotated[Principal, Depends(_authenticated, scope="function")]
                    ) -> Principal:
        if not access.admits(principal):
            raise access.refusal(principal)
        return principal

    setattr(check, ACCESS_ATTRIBUTE, access)
    return Security(check, scopes=access.scopes)


def route_access(dependant: Any) -> Access | None:
    """The `Access` an endpoint declares (FastAPI's `route.dependant`), searching its
    dependencies; None when it declares none (public, or any authenticated caller)."""
    pending = list(dependant.dependencies)
    while pending:
        dependency = pending.pop()
        access = getattr(dependency.call, ACCESS_ATTRIBUTE, None)
        if isinstance(access, Access):
            return access
        pending.extend(dependency.dependencies)
    return None


#: Route parameter types: `user: CurrentUser` (any valid token: 401 without one),
#: `admin: AdminUser` (403 for anyone but an admin), and `allow(...)` for everything
#: else. The app needs `app.state.tokens`. The roles are named in the OpenAPI
#: document's security requirement of each route (`{"HTTPBearer": ["admin"]}`), where
#: `kit.openapi` documents the 403.
CurrentUser = Annotated[Principal, Depends(_authenticated, scope="function")]
AdminUser = Annotated[Principal, allow(admin=True)]

#: Ask for a new service token this long before the current one expires, so a call
#: never leaves with a token that expires on the way.
_RENEW_BEFORE_SECONDS = 60.0


#: Where a service token comes from: an awaitable giving the token and its lifetime in
#: seconds. By default identity's `/auth/service-token`; tests sign their own.
TokenSource = Callable[[], Awaitable[tuple[str, float]]]


class ServiceCredentials:
    """A service's own token, from identity's `/auth/service-token`, kept until shortly
    before it expires. `await credentials.headers()` gives the Authorization header.

    `source` is where tokens come from (identity, unless given): tests that sign their
    own tokens give theirs."""

    def __init__(self, service: str, identity: ServiceClient | None, secret: str | None,
                 *, source: TokenSource | None = None) -> None:
        self.service = service
        self._identity = identity
        self._secret = secret
        self.source: TokenSource = source or self._from_identity
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = asyncio.Lock()

    async def headers(self) -> dict[str, str]:
        """Raises `DependencyUnavailable` when no token can be had (no secret configured,
        or identity refuses or cannot be reached)."""
        async with self._lock:
            if self._token is None or time.monotonic() >= self._renew_at:
                self._token, lifetime = await self.source()
                self._renew_at = time.monotonic() + max(lifetime - _RENEW_BEFORE_SECONDS,
                                                        lifetime / 2)
        return {"Authorization": f"Bearer {self._token}"}

    def forget(self) -> None:
        """A service refused the token (401: identity's keys changed, say): the next
        call asks for a new one."""
        self._token = None

    async def _from_identity(self) -> tuple[str, float]:
        if not self._secret or self._identity is None:
            raise DependencyUnavailable(
                "identity", "no service secret configured: set KANSOKU_SERVICE_SECRET")
        response = await self._identity.request(
            "POST", "/auth/service-token",
            json={"service": self.service, "secret": self._secret})
        if response.status_code != 200:
            raise DependencyUnavailable(
                "identity", f"it refused a service token (HTTP {response.status_code})")
        answer = response.json()
        return str(answer["access_token"]), float(answer["expires_in"])
