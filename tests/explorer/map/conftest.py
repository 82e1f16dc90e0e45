"""The service map's tests' traffic: the shop's calls as its spans tell them — a browser
and the synthetic monitors through the gateway to the services, events through NATS,
PostgreSQL and Valkey behind them — for an explorer holding them."""

from __future__ import annotations

import itertools
import json
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from kansoku.explorer.app import create_app
from kansoku.explorer.settings import Settings
from kansoku.kit import semconv
from tests.browser import served

#: OTLP's span kinds.
SERVER, CLIENT, PRODUCER, CONSUMER = 2, 3, 4, 5


@dataclass(frozen=True)
class Call:
    """`count` calls from `caller` to `callee`, `errors` of them failed. A call to a
    datastore names its system (`db.system`) as the callee; a call through NATS has its
    subject; an HTTP call from a kansoku service says whom it called (peer.service), one
    from the browser does not."""

    caller: str
    callee: str
    count: int
    errors: int = 0
    subject: str | None = None
    datastore: bool = False
    names_callee: bool = True


#: Thirteen nodes, twenty-six calls: the shop's own shape, with one call made once and
#: payments failing.
SHOP_CALLS: tuple[Call, ...] = (
    Call("storefront-web", "gateway", 40, names_callee=False),
    Call("synthetics", "gateway", 12),
    Call("gateway", "identity", 25),
    Call("gateway", "catalog", 30),
    Call("gateway", "cart", 18),
    Call("gateway", "orders", 9),
    Call("gateway", "lab", 1),
    Call("gateway", "redis", 40, datastore=True),
    Call("identity", "postgresql", 25, datastore=True),
    Call("catalog", "postgresql", 30, datastore=True),
    Call("catalog", "redis", 14, datastore=True),
    Call("cart", "redis", 36, datastore=True),
    Call("cart", "catalog", 18),
    Call("cart", "inventory", 6),
    Call("orders", "inventory", 9),
    Call("orders", "payments", 9, errors=3),
    Call("orders", "cart", 9),
    Call("orders", "postgresql", 27, datastore=True),
    Call("orders", "worker", 9, subject="orders.placed"),
    Call("payments", "postgresql", 9, datastore=True),
    Call("payments", "orders", 6, subject="payments.settled"),
    Call("inventory", "postgresql", 15, datastore=True),
    Call("worker", "catalog", 4),
    Call("worker", "postgresql", 9, datastore=True),
    Call("lab", "postgresql", 1, datastore=True),
    Call("lab", "catalog", 1),
)


def _span(trace: int, number: int, parent: int | None, name: str, kind: int, *,
          failed: bool = False, attributes: dict[str, str] | None = None) -> dict[str, Any]:
    """One span in OTLP/JSON, ended a few seconds ago."""
    end = time.time_ns() - 3_000_000_000
    return {"traceId": f"{trace:032x}", "spanId": f"{number:016x}",
            "parentSpanId": f"{parent:016x}" if parent is not None else "",
            "name": name, "kind": kind,
            "startTimeUnixNano": str(end - 8_000_000), "endTimeUnixNano": str(end),
            "status": {"code": 2 if failed else 0},
            "attributes": [{"key": key, "value": {"stringValue": value}}
                           for key, value in (attributes or {}).items()]}


def shop_spans(calls: tuple[Call, ...] = SHOP_CALLS) -> bytes:
    """An OTLP/JSON export holding `calls`: each call a trace of its own, the caller's
    span the parent of the callee's."""
    by_service: dict[str, list[dict[str, Any]]] = defaultdict(list)
    numbers = itertools.count(1)
    each = ((call, i < call.errors) for call in calls for i in range(call.count))
    for trace, (call, failed) in enumerate(each, start=1):
        caller = next(numbers)
        if call.datastore:
            by_service[call.caller].append(_span(
                trace, caller, None, "SELECT", CLIENT, failed=failed,
                attributes={semconv.DB_SYSTEM: call.callee}))
            continue
        if call.subject:
            messaging = {semconv.MESSAGING_SYSTEM: "nats",
                         semconv.MESSAGING_DESTINATION: call.subject}
            by_service[call.caller].append(_span(
                trace, caller, None, f"{call.subject} publish", PRODUCER,
                attributes=messaging))
            by_service[call.callee].append(_span(
                trace, next(numbers), caller, f"{call.subject} process", CONSUMER, failed=failed,
                attributes=messaging))
            continue
        named = {semconv.PEER_SERVICE: call.callee} if call.names_callee else {}
        by_service[call.caller].append(_span(trace, caller, None, "GET", CLIENT,
                                             attributes=named))
        by_service[call.callee].append(_span(trace, next(numbers), caller, "GET /things",
                                             SERVER, failed=failed))
    return json.dumps({"resourceSpans": [
        {"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": name}}]},
         "scopeSpans": [{"spans": spans}]}
        for name, spans in by_service.items()]}).encode()


@pytest.fixture
def shop_calls() -> tuple[Call, ...]:
    """The calls `shop_explorer` holds."""
    return SHOP_CALLS


@pytest.fixture
async def shop_explorer() -> AsyncIterator[str]:
    """An explorer, served over HTTP, holding the shop's calls (`SHOP_CALLS`); yields
    its base URL."""
    app = create_app(Settings(db_path=":memory:"))
    async with served(app) as base:
        async with httpx.AsyncClient(base_url=base) as http:
            answer = await http.post("/v1/traces", content=shop_spans(),
                                     headers={"Content-Type": "application/json"})
            assert answer.status_code == 200, answer.text
        yield base
    app.state.store.close()
