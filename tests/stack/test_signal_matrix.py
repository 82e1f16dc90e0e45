"""The signal matrix: every service of a running stack sends traces, metrics and logs,
each carrying the attributes the explorer's questions rely on.

`MATRIX` (`tests/stack/signal_matrix.py`, which `benchmarks/approaches.py` reads too) is
the single source of truth: one row per service, one cell per signal, each cell naming
what must arrive and the attributes it must carry (names from `kit.semconv`). The
test drives real traffic through the gateway — an admin adds a product with a picture
and reads the mailbox; a customer registers, looks at their account and the product,
fills the cart, checks out, pays, has a second order declined, asks for too much, and
runs a lab operation; a page is viewed and the page's browser
telemetry posted — and then asks the explorer's API what arrived, until every cell is
there or the time is up. Each missing cell fails the test with a message naming the
service, the signal and the attribute.

Spans and log records are read from the traces of this test's own requests (found by
their request ids), so other traffic on the shared stack (synthetic monitors, the
browser journeys) cannot stand in for them. Metric points are read by name and service
(`/api/metrics`); the explorer's API does not answer which attributes a metric's points
carry, so those (`http.route` on the request-duration histogram) are read from the same
instrument on the service's own Prometheus endpoint, which every service serves beside
its OTLP export.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from kansoku.kit import semconv
from tests.stack.signal_matrix import (
    LOG_SPAN_ID,
    LOG_TRACE_ID,
    MATRIX,
    Evidence,
    gaps,
)
from tests.stack.test_up import RunningStack
from tests.support import eventually, new_customer

pytestmark = pytest.mark.stack


# --- Traffic -----------------------------------------------------------------------------

ADMIN_EMAIL, ADMIN_PASSWORD = "admin@example.com", "admin-pass-1234"
ADDRESS = {"street": "1 Observatory Road", "city": "Flagstaff", "state": "AZ",
           "zip": "86001", "country": "US"}
CARD = {"card_number": "4111111111111111", "expiry_month": 12, "expiry_year": 2099,
        "cvv": "123"}
DECLINED_CARD = {**CARD, "card_number": "4000000000007775"}


@dataclass
class Traffic:
    """What the test sent: the request ids of its calls, the customer, and the browser's
    session and trace."""

    customer_id: str = ""
    request_ids: list[str] = field(default_factory=list)
    browser_session: str = field(default_factory=lambda: uuid.uuid4().hex)
    browser_trace: str = field(default_factory=lambda: uuid.uuid4().hex)


class Gateway:
    """Calls to the gateway that remember their request ids."""

    def __init__(self, client: httpx.AsyncClient, traffic: Traffic) -> None:
        self.client, self.traffic = client, traffic

    async def call(self, method: str, path: str, token: str | None = None,
                   expect: int = 200, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        answer = await self.client.request(method, path, headers=headers, **kwargs)
        assert answer.status_code == expect, f"{method} {path}: {answer.text}"
        self.traffic.request_ids.append(answer.headers[semconv.REQUEST_ID_HEADER])
        return answer

    async def login(self, email: str, password: str) -> str:
        answer = await self.call("POST", "/api/v1/auth/login",
                                 json={"email": email, "password": password})
        return str(answer.json()["access_token"])


def photo() -> bytes:
    image = Image.new("RGB", (640, 400), "#1b2a4a")
    output = io.BytesIO()
    image.save(output, format="PNG")
    return output.getvalue()


async def drive_traffic(stack: RunningStack) -> Traffic:
    traffic = Traffic()
    async with httpx.AsyncClient(base_url=stack.url("gateway"), timeout=60) as client:
        gateway = Gateway(client, traffic)
        # The admin: a product with little stock (the customer's order makes it low),
        # and a picture (catalog announces it, the worker makes the thumbnail).
        admin = await gateway.login(ADMIN_EMAIL, ADMIN_PASSWORD)
        product = (await gateway.call("POST", "/api/v1/products", admin, expect=201, json={
            "name": f"Signal Lamp {uuid.uuid4().hex[:6]}", "price": "19.00",
            "currency": "USD", "inventory": 7, "category": "telescopes"})).json()["id"]
        await gateway.call("POST", f"/api/v1/products/{product}/image", admin,
                           files={"image": ("lamp.png", photo(), "image/png")})
        await gateway.call("GET", "/api/v1/admin/mailbox", admin, params={"limit": 1})

        # The customer.
        email, password = await new_customer(stack.url("gateway"), "Signal Matrix")
        token = await gateway.login(email, password)
        traffic.customer_id = (await gateway.call("GET", "/api/v1/users/me", token)
                               ).json()["id"]
        await gateway.call("GET", f"/api/v1/products/{product}", token)
        await gateway.call("POST", "/api/v1/cart/items", token,
                           json={"product_id": product, "quantity": 2})
        order = (await gateway.call("POST", "/api/v1/orders", token, expect=201,
                                    json={"shipping_address": ADDRESS})).json()
        await gateway.call("POST", "/api/v1/payments", token, expect=201, json={
            "order_id": order["id"], "payment_method": "credit_card",
            "payment_details": CARD})
        declined = (await gateway.call("POST", "/api/v1/orders", token, expect=201, json={
            "items": [{"product_id": product, "quantity": 1}],
            "shipping_address": ADDRESS})).json()
        await gateway.call("POST", "/api/v1/payments", token, expect=402, json={
            "order_id": declined["id"], "payment_method": "credit_card",
            "payment_details": DECLINED_CARD})
        await gateway.call("POST", "/api/v1/orders", token, expect=409, json={
            "items": [{"product_id": product, "quantity": 50}],
            "shipping_address": ADDRESS})
        await gateway.call("POST", "/api/v1/lab/n-plus-one/fixed", token, json={})

        # A page, and what its script would post about it.
        await gateway.call("GET", "/", headers={"Accept": "text/html"})
        now_ms = time.time() * 1000
        await gateway.call("POST", "/rum", expect=204, json={
            "session_id": traffic.browser_session, "page_view_id": uuid.uuid4().hex[:16],
            "path": "/", "sent_at": now_ms, "events": [
                {"kind": "page_view", "time": now_ms - 900, "navigation_type": "navigate"},
                {"kind": "web_vital", "time": now_ms - 500, "name": "LCP", "value": 900.0,
                 "rating": "good"},
                {"kind": "span", "trace_id": traffic.browser_trace,
                 "span_id": uuid.uuid4().hex[:16], "name": "add-to-cart",
                 "start": now_ms - 400, "end": now_ms - 150, "method": "POST",
                 "url": "/cart/items", "status_code": 303, "action": "add-to-cart"}]})
    return traffic


# --- Asking the explorer -----------------------------------------------------------------

async def gather(stack: RunningStack, traffic: Traffic, since_us: int) -> Evidence:
    """Everything the explorer and the services' metric endpoints hold of `traffic`."""
    evidence = Evidence(traffic.customer_id)
    async with httpx.AsyncClient(base_url=stack.url("explorer"), timeout=30) as explorer:
        trace_ids = {traffic.browser_trace}
        for request_id in traffic.request_ids:
            found = (await explorer.get("/api/traces", params={
                "tags": json.dumps({semconv.REQUEST_ID: request_id}), "start": since_us,
                "limit": 10})).raise_for_status().json()["data"]
            trace_ids.update(found_trace["traceID"] for found_trace in found)
        for trace_id in sorted(trace_ids):
            answer = await explorer.get(f"/api/spans/{trace_id}")
            if answer.status_code == 404:
                continue  # not arrived yet
            whole = answer.raise_for_status().json()["data"]
            evidence.spans += whole["spans"]
            evidence.records += [
                {LOG_TRACE_ID: trace_id, **({LOG_SPAN_ID: record["span_id"]}
                                            if record["span_id"] else {}),
                 **record["attributes"], "service": record["service"]}
                for record in whole["logs"]]
        browser_events = (await explorer.get("/api/logs", params={
            "service": semconv.RUM_SERVICE, "lookback": "15m", "limit": 1000})
                          ).raise_for_status().json()["data"]
        evidence.records += [{**record["attributes"], "service": record["service"]}
                             for record in browser_events
                             if record["attributes"].get(semconv.SESSION_ID)
                             == traffic.browser_session]
        for metric in (await explorer.get("/api/metrics", params={"lookback": "15m"})
                       ).raise_for_status().json()["data"]:
            evidence.metric_senders.setdefault(metric["name"], set()).update(
                metric["services"])
    async with httpx.AsyncClient(timeout=30) as client:
        for service, row in MATRIX.items():
            labelled = [metric for metric in row.metrics if metric.attributes]
            if labelled:
                exposition = (await client.get(f"{stack.url(service)}/metrics")).text
                evidence.metric_attributes[service] = {
                    metric.name: _labels(exposition, metric.name) for metric in labelled}
    return evidence


def _labels(exposition: str, name: str) -> set[str]:
    """The attributes (as OpenTelemetry names) on the points of metric `name` in a
    Prometheus exposition, where dots are underscores and the unit is a suffix."""
    prefix = name.replace(".", "_")
    found: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        if family.name.startswith(prefix):
            found.update(label for sample in family.samples for label in sample.labels)
    return _as_attributes(found)


def _as_attributes(labels: Iterable[str]) -> set[str]:
    """Prometheus label names back to the attribute names they came from (those this
    matrix asks about)."""
    wanted = {attribute.replace(".", "_"): attribute
              for row in MATRIX.values() for metric in row.metrics
              for attribute in metric.attributes}
    return {wanted[label] for label in labels if label in wanted}


# --- The test ----------------------------------------------------------------------------

async def test_every_service_sends_every_signal_with_its_attributes(
        web_shop: RunningStack) -> None:
    since_us = int(time.time() * 1_000_000) - 1_000_000
    traffic = await drive_traffic(web_shop)

    missing: list[str] = []
    closed: list[str] = []

    async def complete() -> bool:
        nonlocal missing, closed
        missing, closed = gaps(await gather(web_shop, traffic, since_us))
        return not missing

    # Metrics leave every 10 s, spans and logs within a second; events take a hop more.
    with contextlib.suppress(AssertionError):
        await eventually(complete, 90, "every cell of the signal matrix")
    assert not missing, "missing from the signal matrix after 90 s:\n" + "\n".join(missing)
    assert not closed, ("known gaps that are gaps no more (remove them from MATRIX):\n"
                        + "\n".join(closed))


def test_a_missing_cell_names_the_service_the_signal_and_the_attribute() -> None:
    """How a failure reads (no stack needed): one database span of catalog's without
    its statement, and nothing else."""
    evidence = Evidence("customer-1", spans=[{
        "service": "catalog", "kind": "client", "name": "SELECT",
        "attributes": {semconv.DB_SYSTEM: "postgresql"},
        "resource": {semconv.SERVICE_NAME: "catalog"}}])

    missing, _ = gaps(evidence)

    assert "catalog traces: database spans: db.statement (on SELECT)" in missing
    assert "catalog traces: server spans: none arrived" in missing
    assert f"orders metrics: {semconv.METRIC_ORDERS}: none arrived" in missing
    assert f"{semconv.RUM_SERVICE} logs: browser events: none arrived" in missing
    assert not any(cell.startswith("catalog traces: database spans: db.system")
                   for cell in missing)
