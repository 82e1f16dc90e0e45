"""The gateway's clients: one per service behind it (`Clients`), from
`kansoku.contracts.clients` — the same typed clients orders and the worker use, with
the same convention for who a call is for and what it can end in
(`kansoku.contracts.calls`) — plus the explorer's.

The gateway's callers are `ANONYMOUS`, the public API's `Bearer` (the request's own
`Authorization` header) and a web session (`web.sessions.WebSession`), which logs out
and sends the browser to a login page when a service no longer accepts its token.

The explorer is asked through its Jaeger API (`ExplorerClient`), untraced and with a
short timeout: the explorer does not trace itself, and the admin dashboard must not
wait for a slow backend.
"""

from __future__ import annotations

import json as jsonlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlencode

import httpx
from opentelemetry import metrics

from kansoku.contracts.calls import Json
from kansoku.contracts.clients import (
    CartClient,
    CatalogClient,
    IdentityClient,
    InventoryClient,
    LabClient,
    OrdersClient,
    WorkerClient,
)
from kansoku.kit.http import BreakerPolicy, CircuitBreakers, ServiceClient, Timeouts
from kansoku.kit.telemetry import Telemetry
from kansoku.services.gateway.settings import Settings
from kansoku.topology import explorer_headers

logger = logging.getLogger(__name__)

#: How long the gateway waits for the lab's answer: longer than the lab lets any one
#: statement run (`KANSOKU_LAB_STATEMENT_TIMEOUT_SECONDS`, 15 s), so a slow query ends
#: as the lab's own answer, never as the gateway giving up first.
LAB_READ_TIMEOUT: Final = 30.0
#: How long the admin dashboard waits for the explorer's list of failed traces.
EXPLORER_TIMEOUT: Final = 1.5


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
    #: The circuit breakers, one per service.
    breakers: CircuitBreakers

    @classmethod
    def connect(cls, settings: Settings, telemetry: Telemetry) -> Clients:
        """Clients with the settings' addresses and timeouts, traced by `telemetry`."""
        breakers = CircuitBreakers(BreakerPolicy(), meter=metrics.get_meter(
            "kansoku.gateway", meter_provider=telemetry.meter_provider))
        timeouts = Timeouts(connect=settings.connect_timeout, read=settings.read_timeout)

        def client(service: str, url: str, read_timeout: float | None = None
                   ) -> ServiceClient:
            return ServiceClient(service, url, breakers, telemetry=telemetry,
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
            lab=LabClient(client("lab", settings.lab_url, read_timeout=LAB_READ_TIMEOUT)),
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
