"""The gateway's clients of the services behind it: one typed method per call, and one
convention for what a call can end in.

A method answers with the service's data (its JSON) or raises:

- `Refused` — the service said no (4xx). The service's problem is kept whole, so the
  public API hands it on exactly as the service wrote it (its request id, the field it
  names, a validation error's list) and a page can show its sentence next to the field;
- `DependencyUnavailable` (from `kit.http`) — the service could not be reached, did not
  answer in time, answered 5xx, or its circuit is open: the 503 problem (or page) names
  the service.

Every call is made for a `Caller`, whose token goes along for the service to check
itself: `ANONYMOUS`, the public API's `Bearer` (the request's own `Authorization`
header), or a web session (`web.sessions.WebSession`). When a service no longer accepts
the token (401), the caller decides what that means: the API hands the 401 on, a web
session logs out and sends the browser to a login page.

The explorer is asked through its Jaeger API (`ExplorerClient`), untraced and with a
short timeout: the explorer does not trace itself, and the admin dashboard must not
wait for a slow backend.
"""

from __future__ import annotations

import dataclasses
import json as jsonlib
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol, cast
from urllib.parse import urlencode

import httpx
from fastapi import Request
from opentelemetry import metrics

from kansoku.kit.errors import DependencyUnavailable, Problem
from kansoku.kit.http import BreakerPolicy, CircuitBreakers, ServiceClient, Timeouts
from kansoku.kit.telemetry import Telemetry
from kansoku.services.gateway.settings import Settings
from kansoku.topology import explorer_headers

logger = logging.getLogger(__name__)

#: A JSON object as a service answers it.
Json = dict[str, Any]

#: How long the gateway waits for the lab's answer: longer than the lab lets any one
#: statement run (`KANSOKU_LAB_STATEMENT_TIMEOUT_SECONDS`, 15 s), so a slow query ends
#: as the lab's own answer, never as the gateway giving up first.
LAB_READ_TIMEOUT: Final = 30.0
#: The lab's deliberate SQL errors are 500s, which a circuit breaker counts as failures:
#: the lab's circuit opens only after this many in a row, not after five clicks on
#: "database error".
LAB_BREAKER: Final = BreakerPolicy(failure_threshold=20, open_seconds=5.0)
#: How long the admin dashboard waits for the explorer's list of failed traces.
EXPLORER_TIMEOUT: Final = 1.5


# --- who a call is for ------------------------------------------------------------------

class Caller(Protocol):
    """Who a call is made for."""

    def auth_headers(self) -> dict[str, str]:
        """The headers that say so (`Authorization: Bearer …`), or none."""
        ...

    def token_rejected(self) -> None:
        """A service answered 401 to a call that carried this caller's token. May raise
        instead of the `Refused` that follows (a web session sends the browser to log
        in again)."""
        ...


class _Anonymous:
    """Calls that need no user (the catalog is public)."""

    def auth_headers(self) -> dict[str, str]:
        return {}

    def token_rejected(self) -> None:  # no token was sent
        return None


ANONYMOUS: Final[Caller] = _Anonymous()


@dataclass(frozen=True)
class Bearer:
    """A public API request's caller: its `Authorization` header goes along unchanged,
    and a service's 401 is handed back to it as it is."""

    authorization: str | None = dataclasses.field(default=None, repr=False)

    @classmethod
    def of(cls, request: Request) -> Bearer:
        return cls(request.headers.get("authorization"))

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": self.authorization} if self.authorization else {}

    def token_rejected(self) -> None:
        return None


# --- what a call can end in -------------------------------------------------------------

class Refused(Problem):
    """A service said no (4xx). `detail` is its sentence for a person; `field` the
    request field it is about, when it names one; `body` its whole problem, which the
    gateway answers with unchanged wherever no page puts the sentence next to a field."""

    def __init__(self, status: int, code: str, detail: str, *, field: str | None = None,
                 body: Json | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, code, detail, headers=headers)
        self.field = field
        self.body: Json = body if body is not None else {}

    @classmethod
    def from_response(cls, response: httpx.Response) -> Refused:
        try:
            body = response.json()
        except ValueError:
            body = None
        problem: Json = body if isinstance(body, dict) else {}
        field = problem.get("field")
        errors = problem.get("errors") or []
        if field is None and errors and isinstance(errors[0], dict):
            field = errors[0].get("field")  # a validation error: name its first field
        headers = {name: response.headers[name] for name in ("retry-after",)
                   if name in response.headers}
        return cls(response.status_code, str(problem.get("type", "error")).rsplit("/", 1)[-1],
                   str(problem.get("detail")
                       or f"The request was refused (HTTP {response.status_code})."),
                   field=str(field) if field else None, body=problem or None, headers=headers)


@dataclass(frozen=True)
class Download:
    """A non-JSON answer to pass on as it is — an image, a CSV file — or `304` (no
    content) when the caller's copy is current."""

    status_code: int
    content: bytes | None
    headers: dict[str, str]


#: What a passed-on download keeps of the service's response headers.
_DOWNLOAD_HEADERS: Final = ("content-type", "content-disposition", "etag", "cache-control",
                            "content-security-policy", "x-content-type-options",
                            "retry-after")


def _present(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Query parameters without the ones not given."""
    return {key: value for key, value in (params or {}).items() if value is not None}


class _Service:
    """One downstream service, called the gateway's one way."""

    def __init__(self, client: ServiceClient) -> None:
        self.client = client

    async def _call(self, method: str, path: str, caller: Caller = ANONYMOUS, *,
                    json: Any = None, params: Mapping[str, Any] | None = None,
                    headers: Mapping[str, str] | None = None,
                    content: bytes | None = None) -> Any:
        """The answer's JSON (None for 204), or `Refused`."""
        sent = {**caller.auth_headers(), **(headers or {})}
        answer = await self.client.request(method, path, headers=sent, json=json,
                                           params=_present(params), content=content)
        if answer.status_code >= 400:
            if answer.status_code == 401 and "Authorization" in sent:
                caller.token_rejected()
            raise Refused.from_response(answer)
        return None if answer.status_code == 204 else answer.json()

    async def _object(self, method: str, path: str, caller: Caller = ANONYMOUS,
                      **kwargs: Any) -> Json:
        return cast(Json, await self._call(method, path, caller, **kwargs))

    async def _list(self, method: str, path: str, caller: Caller = ANONYMOUS,
                    **kwargs: Any) -> list[Json]:
        return cast(list[Json], await self._call(method, path, caller, **kwargs))

    async def _download(self, path: str, caller: Caller = ANONYMOUS, *,
                        if_none_match: str | None = None) -> Download:
        """A non-JSON answer; a browser's `If-None-Match` goes along, so an unchanged
        picture costs a 304."""
        headers = caller.auth_headers()
        if if_none_match:
            headers["If-None-Match"] = if_none_match
        answer = await self.client.request("GET", path, headers=headers)
        if answer.status_code >= 400:
            raise Refused.from_response(answer)
        return Download(answer.status_code,
                        answer.content if answer.status_code == 200 else None,
                        {name: answer.headers[name] for name in _DOWNLOAD_HEADERS
                         if name in answer.headers})

    async def aclose(self) -> None:
        await self.client.aclose()


class IdentityClient(_Service):
    """Accounts and tokens."""

    async def register(self, registration: Json) -> Json:
        return await self._object("POST", "/users", json=registration)

    async def log_in(self, email: str, password: str, client_address: str) -> Json:
        """Tokens for these credentials (`Refused` 401 when they are wrong, 429 while
        logins are locked). `client_address` is who is logging in, for identity's
        per-address throttle (it believes the header from the gateway only)."""
        return await self._object("POST", "/auth/login",
                                  json={"email": email, "password": password},
                                  headers={"X-Forwarded-For": client_address})

    async def refresh(self, refresh_token: str) -> Json:
        """New tokens for a refresh token (each works once)."""
        return await self._object("POST", "/auth/refresh",
                                  json={"refresh_token": refresh_token})

    async def me(self, caller: Caller) -> Json:
        return await self._object("GET", "/users/me", caller)

    async def change_me(self, caller: Caller, change: Json, client_address: str) -> Json:
        return await self._object("PATCH", "/users/me", caller, json=change,
                                  headers={"X-Forwarded-For": client_address})


class CatalogClient(_Service):
    """Products, categories and their pictures."""

    async def products(self, *, limit: int, offset: int = 0, category: str | None = None,
                       search: str | None = None, sort: str | None = None) -> Json:
        """A page of products (`items`, `total`)."""
        return await self._object("GET", "/products", params={
            "limit": limit, "offset": offset, "category": category, "q": search,
            "sort": sort})

    async def products_by_id(self, product_ids: list[int]) -> dict[int, Json]:
        """The products with these ids (at most 100), by id; missing ones absent."""
        if not product_ids:
            return {}
        page = await self._object("GET", "/products", params={
            "ids": ",".join(map(str, product_ids)), "limit": 100})
        return {product["id"]: product for product in page["items"]}

    async def product(self, product_id: int) -> Json:
        return await self._object("GET", f"/products/{product_id}")

    async def categories(self) -> list[Json]:
        return await self._list("GET", "/categories")

    async def create_product(self, caller: Caller, product: Json) -> Json:
        return await self._object("POST", "/products", caller, json=product)

    async def replace_product(self, caller: Caller, product_id: int, product: Json) -> Json:
        return await self._object("PUT", f"/products/{product_id}", caller, json=product)

    async def delete_product(self, caller: Caller, product_id: int) -> None:
        await self._call("DELETE", f"/products/{product_id}", caller)

    async def upload_image(self, caller: Caller, product_id: int, data: bytes,
                           media_type: str) -> Json:
        """Send an uploaded picture; the catalog checks and keeps it."""
        return await self._object("PUT", f"/products/{product_id}/image", caller,
                                  headers={"Content-Type": media_type}, content=data)

    async def image(self, product_id: int, *, if_none_match: str | None = None
                    ) -> Download:
        return await self._download(f"/products/{product_id}/image",
                                    if_none_match=if_none_match)

    async def thumbnail(self, product_id: int, *, if_none_match: str | None = None
                        ) -> Download:
        return await self._download(f"/products/{product_id}/thumbnail",
                                    if_none_match=if_none_match)


class InventoryClient(_Service):
    """Stock levels and adjustments."""

    async def stock(self, product_id: int) -> Json:
        return await self._object("GET", f"/stock/{product_id}")

    async def stock_levels(self, product_ids: list[int]) -> dict[int, Json]:
        """Stock levels of these products (at most 100), by product id."""
        if not product_ids:
            return {}
        levels = await self._list("GET", "/stock",
                                  params={"product_ids": ",".join(map(str, product_ids))})
        return {level["product_id"]: level for level in levels}

    async def overview(self, caller: Caller, *, limit: int, offset: int, low_only: bool
                       ) -> Json:
        """A page of every product's stock (admin)."""
        return await self._object("GET", "/inventory", caller, params={
            "limit": limit, "offset": offset, "low_only": str(low_only).lower()})

    async def adjust(self, caller: Caller, product_id: int, delta: int, reason: str) -> Json:
        """Add (or with a negative `delta`, remove) units; the new level (admin)."""
        return await self._object("POST", f"/inventory/{product_id}/adjust", caller,
                                  json={"delta": delta, "reason": reason})

    async def adjustments(self, caller: Caller, product_id: int, *, limit: int
                          ) -> list[Json]:
        """The product's latest stock changes, with their reasons (admin)."""
        return await self._list("GET", f"/inventory/{product_id}/adjustments", caller,
                                params={"limit": limit})


class CartClient(_Service):
    """The caller's cart (its lines: product ids and quantities)."""

    async def lines(self, caller: Caller) -> list[Json]:
        return cast(list[Json], (await self._object("GET", "/cart", caller))["items"])

    async def add(self, caller: Caller, product_id: int, quantity: int) -> None:
        await self._call("POST", "/cart/items", caller,
                         json={"product_id": product_id, "quantity": quantity})

    async def set_quantity(self, caller: Caller, product_id: int, quantity: int) -> None:
        """Set a line's quantity (0 removes it)."""
        await self._call("PATCH", f"/cart/items/{product_id}", caller,
                         json={"quantity": quantity})

    async def remove(self, caller: Caller, product_id: int) -> None:
        await self._call("DELETE", f"/cart/items/{product_id}", caller)

    async def empty(self, caller: Caller) -> None:
        await self._call("DELETE", "/cart", caller)


class OrdersClient(_Service):
    """Orders, their payment, and the sales summary."""

    async def place(self, caller: Caller, order: Json, *, idempotency_key: str | None
                    ) -> Json:
        """Place an order (its stock is reserved). The same key gives back the same
        order: a request sent twice never orders twice."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return await self._object("POST", "/orders", caller, json=order, headers=headers)

    async def pay(self, caller: Caller, order_id: uuid.UUID | str, payment: Json) -> Json:
        """Pay the order (the saga's charge and commit). The card's number and security
        code go to orders and payments in the body, and nowhere else."""
        return await self._object("POST", f"/orders/{order_id}/payment", caller,
                                  json=payment)

    async def page(self, caller: Caller, *, limit: int, offset: int) -> Json:
        """The caller's orders, newest first (`items`, `total`)."""
        return await self._object("GET", "/orders", caller,
                                  params={"limit": limit, "offset": offset})

    async def order(self, caller: Caller, order_id: uuid.UUID | str) -> Json:
        return await self._object("GET", f"/orders/{order_id}", caller)

    async def sales_summary(self, caller: Caller, *, since: datetime | None = None) -> Json:
        return await self._object("GET", "/sales/summary", caller, params={
            "since": since.isoformat() if since else None})


class WorkerClient(_Service):
    """What the worker keeps: the mailbox, notifications, reports and dead letters."""

    async def mailbox(self, caller: Caller, *, limit: int) -> list[Json]:
        return await self._list("GET", "/mailbox", caller, params={"limit": limit})

    async def notifications(self, caller: Caller, *, limit: int,
                            channel: str | None = None) -> list[Json]:
        return await self._list("GET", "/notifications", caller,
                                params={"channel": channel, "limit": limit})

    async def dead_letters(self, caller: Caller, *, limit: int) -> list[Json]:
        return await self._list("GET", "/dead-letters", caller, params={"limit": limit})

    async def replay_dead_letter(self, caller: Caller, sequence: int) -> Json:
        return await self._object("POST", f"/dead-letters/{sequence}/replay", caller)

    async def reports(self, caller: Caller, *, limit: int) -> list[Json]:
        return await self._list("GET", "/reports", caller, params={"limit": limit})

    async def make_inventory_report(self, caller: Caller) -> Json:
        return await self._object("POST", "/reports/inventory", caller)

    async def report_file(self, caller: Caller, report_id: uuid.UUID, file_format: str
                          ) -> Download:
        return await self._download(f"/reports/{report_id}.{file_format}", caller)


@dataclass(frozen=True)
class LabAnswer:
    """What the lab answered to one operation: its status and JSON. A deliberate SQL
    error is the lab's 500 with `"status": "error"`: an answer to show, not a failure."""

    status_code: int
    body: Json


class LabClient(_Service):
    """The performance lab, with a breaker and a read timeout of its own."""

    async def run(self, caller: Caller, path: str, request: Json) -> LabAnswer:
        """Run one operation (`path`, e.g. `/scenarios/n-plus-one/fixed`) with the seeds'
        request. The lab's refusals are `Refused`; its error answers are answers.
        Raises `DependencyUnavailable` when the lab cannot be reached or does not
        answer."""
        try:
            answer = await self.client.request("POST", path, json=request,
                                               headers=caller.auth_headers())
        except DependencyUnavailable as exc:
            shown = _lab_error_answer(exc)
            if shown is None:
                raise
            return shown
        if answer.status_code >= 400:
            raise Refused.from_response(answer)
        try:
            body = answer.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise DependencyUnavailable("lab", "its answer was not a JSON object")
        return LabAnswer(answer.status_code, body)


def _lab_error_answer(exc: DependencyUnavailable) -> LabAnswer | None:
    """The lab's own answer inside a "lab unavailable", if it is one of the lab's error
    answers, else None. (`kit.http` reports any 5xx as the dependency being
    unavailable, with the answer as its `response`.)"""
    response = exc.response
    if not isinstance(response, httpx.Response):
        return None
    if not response.headers.get("content-type", "").startswith("application/json"):
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("status") != "error":
        return None
    return LabAnswer(response.status_code, body)


# --- the explorer ---------------------------------------------------------------------

@dataclass(frozen=True)
class FailedTrace:
    """A recent trace in which the shop failed, as the admin dashboard lists it."""

    trace_id: str
    url: str
    started_at: datetime
    service: str
    operation: str
    duration_ms: float
    message: str


@dataclass(frozen=True)
class RecentFailures:
    """Traces in which the shop failed, found in the explorer; `unavailable` says why
    there are none to show when the explorer could not be asked (then `traces` is
    empty)."""

    traces: list[FailedTrace]
    search_url: str
    unavailable: str | None = None


#: Span kinds that stand for work a service of the shop was given: a request it
#: answered (server), an event it handled (consumer).
_WORK_SPAN_KINDS: Final = frozenset({"server", "consumer"})
#: Traces with an error asked of the explorer per failure shown: some of them are only
#: callers' client spans (see `_failed_trace`), which the dashboard leaves out.
_CANDIDATES_PER_FAILURE: Final = 5


def _tag(span: Json, key: str) -> Any:
    return next((tag.get("value") for tag in span.get("tags", []) if tag.get("key") == key),
                None)


def _failed(span: Json) -> bool:
    return _tag(span, "error") in (True, "true")


def _parent_id(span: Json) -> str | None:
    return next((reference["spanID"] for reference in span.get("references") or []
                 if reference.get("refType", "CHILD_OF") == "CHILD_OF"), None)


def _failed_trace(explorer_url: str, trace: Json) -> FailedTrace | None:
    """One Jaeger-shaped trace as a dashboard line — its root, and what went wrong —
    or None when the shop did not fail in it.

    The shop failed when one of its services failed at the work it was given: a server
    span (a request it answered) or a consumer span (an event it handled) with error
    status. Services mark a server span so for a 5xx answer or an exception, never for
    a 4xx. A client span with error status does not count by itself: by the HTTP
    conventions a client span is an error for any 4xx answer, which is often what the
    caller expected (the synthetic checkout's login that answers 401 before it
    registers the account, a mistyped password), and a failed attempt may have been
    retried; the service that answered says on its own server span whether it failed.
    """
    spans: list[Json] = trace["spans"]
    failures = {span["spanID"]: span for span in spans if _failed(span)}
    work_failed = {span_id for span_id, span in failures.items()
                   if _tag(span, "span.kind") in _WORK_SPAN_KINDS}
    if not work_failed:
        return None
    parent_of = {span["spanID"]: _parent_id(span) for span in spans}

    def within_failed_work(span_id: str) -> bool:
        seen: set[str] = set()
        ancestor: str | None = span_id
        while ancestor is not None and ancestor not in seen:
            if ancestor in work_failed:
                return True
            seen.add(ancestor)
            ancestor = parent_of.get(ancestor)
        return False

    # Where it went wrong first: among the failed spans inside a failed request or
    # event, one none of whose children failed (its parents usually only report the
    # failure they were handed) — the callers' own expected errors left aside.
    relevant = [span for span_id, span in failures.items() if within_failed_work(span_id)]
    failed_parents = {parent_of[span["spanID"]] for span in relevant}
    origins = [span for span in relevant if span["spanID"] not in failed_parents]
    failed = min(origins, key=lambda span: span["startTime"])
    root = min(spans, key=lambda span: (bool(span.get("references")), span["startTime"]))
    processes = trace.get("processes", {})
    message = (_tag(failed, "otel.status_description") or _tag(failed, "exception.message")
               or f"{failed['operationName']} failed")
    return FailedTrace(
        trace_id=trace["traceID"], url=f"{explorer_url}/traces/{trace['traceID']}",
        started_at=datetime.fromtimestamp(root["startTime"] / 1e6, UTC),
        service=processes.get(failed.get("processID"), {}).get("serviceName", "?"),
        operation=root["operationName"], duration_ms=root["duration"] / 1000,
        message=str(message)[:300])


class ExplorerClient:
    """The telemetry backend's Jaeger query API (the explorer, or in a distributed setup
    another backend that speaks it)."""

    def __init__(self, explorer_url: str, *, public_url: str | None = None,
                 timeout: float = EXPLORER_TIMEOUT,
                 transport: httpx.AsyncBaseTransport | None = None,
                 token: str | None = None) -> None:
        """`explorer_url` is where the API is asked; `public_url`, if the browser finds
        the explorer elsewhere, is what the answer's links point at; `token`, the
        explorer's bearer credential when it requires a login."""
        self.headers = explorer_headers(token)
        self.url = explorer_url.rstrip("/")
        self.public_url = (public_url or explorer_url).rstrip("/")
        self.timeout = timeout
        self.transport = transport

    async def recent_failures(self, *, service: str = "gateway", lookback: str = "1h",
                              limit: int = 10) -> RecentFailures:
        """The newest `limit` traces through `service` in which the shop failed (see
        `_failed_trace`), from the newest traces with any error. The backend may be
        away: then the answer says so instead of failing the page."""
        search_url = f"{self.public_url}/traces?{urlencode({'service': service, 'error': 'true'})}"
        params: dict[str, str | int] = {"service": service,
                                        "tags": jsonlib.dumps({"error": "true"}),
                                        "lookback": lookback,
                                        "limit": limit * _CANDIDATES_PER_FAILURE}
        try:
            async with httpx.AsyncClient(timeout=self.timeout, transport=self.transport,
                                         headers=self.headers) as client:
                answer = await client.get(f"{self.url}/api/traces", params=params)
            answer.raise_for_status()
            found = answer.json()["data"]
            traces = [failed for failed in (_failed_trace(self.public_url, trace)
                                            for trace in found if trace.get("spans"))
                      if failed is not None]
        except httpx.HTTPStatusError as exc:
            return RecentFailures([], search_url, f"the explorer answered HTTP "
                                                  f"{exc.response.status_code}")
        except httpx.HTTPError as exc:
            return RecentFailures([], search_url, f"the explorer at {self.url} did not "
                                                  f"answer ({type(exc).__name__})")
        except (ValueError, KeyError, TypeError) as exc:
            return RecentFailures([], search_url, f"the explorer's answer was not "
                                                  f"understood ({type(exc).__name__})")
        traces.sort(key=lambda failed: failed.started_at, reverse=True)
        return RecentFailures(traces[:limit], search_url)


# --- all of them ------------------------------------------------------------------------

@dataclass(frozen=True)
class Clients:
    """The gateway's clients, one per service behind it."""

    identity: IdentityClient
    catalog: CatalogClient
    inventory: InventoryClient
    cart: CartClient
    orders: OrdersClient
    worker: WorkerClient
    lab: LabClient
    explorer: ExplorerClient
    #: The circuit breakers of every service but the lab (whose own are more patient).
    breakers: CircuitBreakers

    @classmethod
    def connect(cls, settings: Settings, telemetry: Telemetry) -> Clients:
        """Clients with the settings' addresses and timeouts, traced by `telemetry`."""
        breakers = CircuitBreakers(BreakerPolicy(), meter=metrics.get_meter(
            "kansoku.gateway", meter_provider=telemetry.meter_provider))
        timeouts = Timeouts(connect=settings.connect_timeout, read=settings.read_timeout)

        def client(service: str, url: str, read_timeout: float | None = None,
                   service_breakers: CircuitBreakers = breakers) -> ServiceClient:
            return ServiceClient(service, url, service_breakers, telemetry=telemetry,
                                 timeouts=timeouts if read_timeout is None else Timeouts(
                                     connect=settings.connect_timeout, read=read_timeout))

        return cls(
            identity=IdentityClient(client("identity", settings.identity_url)),
            catalog=CatalogClient(client("catalog", settings.catalog_url)),
            inventory=InventoryClient(client("inventory", settings.inventory_url)),
            cart=CartClient(client("cart", settings.cart_url)),
            # Checkout calls several services in turn, each with its own read timeout,
            # and queues behind other buyers in a rush: the gateway waits longer than
            # any one of those, so it never answers 503 for an order still being placed.
            orders=OrdersClient(client("orders", settings.orders_url,
                                       read_timeout=settings.checkout_timeout)),
            worker=WorkerClient(client("worker", settings.worker_url)),
            lab=LabClient(client("lab", settings.lab_url, read_timeout=LAB_READ_TIMEOUT,
                                 service_breakers=CircuitBreakers(LAB_BREAKER))),
            explorer=ExplorerClient(settings.explorer_url,
                                    public_url=settings.explorer_link_url,
                                    token=settings.explorer_token.get_secret_value()
                                    if settings.explorer_token else None),
            breakers=breakers,
        )

    async def aclose(self) -> None:
        for service in (self.identity, self.catalog, self.inventory, self.cart,
                        self.orders, self.worker, self.lab):
            await service.aclose()
