"""The signal matrix: every service of a running stack sends traces, metrics and logs,
each carrying the attributes the explorer's questions rely on.

`MATRIX` is the single source of truth: one row per service, one cell per signal, each
cell naming what must arrive and the attributes it must carry (names from
`kit.semconv`). The test drives real traffic through the gateway — an admin adds a
product with a picture and reads the mailbox; a customer registers, looks at their
account and the product, fills the cart, checks out, pays, has a second order declined,
asks for too much, and runs a lab operation; a page is viewed and the page's browser
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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from kansoku.kit import semconv
from tests.stack.test_up import RunningStack
from tests.support import eventually, new_customer

pytestmark = pytest.mark.stack

TRACES, METRICS, LOGS = "traces", "metrics", "logs"
#: The fields kit/logging.py writes on every log record that knows them (no semconv
#: names: they are the JSON log line's own field names, and the OTLP record's attributes).
LOG_REQUEST_ID, LOG_USER_ID = "request_id", "user_id"
#: Every log record found through its trace carries that trace's id; its span's id is a
#: column of its own.
LOG_TRACE_ID, LOG_SPAN_ID = "trace_id", "span_id"


@dataclass(frozen=True)
class Spans:
    """Spans a service must send: of these `kinds`, and (if `marker` is set) carrying
    it, at least one must carry every attribute of `attributes` (`service.name` is
    checked on every span's resource)."""

    what: str
    kinds: frozenset[str]
    attributes: tuple[str, ...]
    marker: str | None = None
    #: Only spans carrying the customer's own user id as `enduser.id` count.
    of_the_customer: bool = False


@dataclass(frozen=True)
class Records:
    """Log records a service must write: at least one with every field of `fields`."""

    what: str
    fields: tuple[str, ...]
    #: Only records carrying the customer's own user id as `user_id` count.
    of_the_customer: bool = False


@dataclass(frozen=True)
class Metric:
    """A metric the service must export, and the attributes its points carry."""

    name: str
    attributes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Row:
    """What one service must send, per signal."""

    traces: tuple[Spans, ...]
    metrics: tuple[Metric, ...]
    logs: tuple[Records, ...]
    #: Cells not emitted today (`"<signal>: <what>: <attribute>"`, as a failure names
    #: them), each with the reason. A gap that closes fails the test, so the table
    #: never claims less than is true.
    known_gaps: Mapping[str, str] = field(default_factory=dict)


_HTTP_SERVER = (semconv.HTTP_REQUEST_METHOD, semconv.HTTP_ROUTE,
                semconv.HTTP_RESPONSE_STATUS_CODE, semconv.URL_PATH, semconv.URL_SCHEME,
                semconv.REQUEST_ID)
SERVER = Spans("server spans", frozenset({"server"}), _HTTP_SERVER)
CUSTOMERS_REQUESTS = Spans("the customer's server spans", frozenset({"server"}),
                           (semconv.ENDUSER_ID,), of_the_customer=True)
CUSTOMERS_EVENTS = Spans("the customer's event spans", frozenset({"consumer"}),
                         (semconv.ENDUSER_ID,), of_the_customer=True)
DATABASE = Spans("database spans", frozenset({"client"}),
                 (semconv.DB_SYSTEM, semconv.DB_STATEMENT), marker=semconv.DB_SYSTEM)
PUBLISH = Spans("messaging spans (publish)", frozenset({"producer"}),
                (semconv.MESSAGING_SYSTEM, semconv.MESSAGING_DESTINATION))
PROCESS = Spans("messaging spans (process)", frozenset({"consumer"}),
                (semconv.MESSAGING_SYSTEM, semconv.MESSAGING_DESTINATION))

REQUEST_DURATION = Metric(semconv.METRIC_HTTP_SERVER_DURATION, (semconv.HTTP_ROUTE,))
PROCESS_METRICS = tuple(Metric(name) for name in semconv.RUNTIME_METRICS)

LOG_RECORDS = Records("log records", (LOG_TRACE_ID, LOG_SPAN_ID, LOG_REQUEST_ID))
CUSTOMERS_LOG_RECORDS = Records("the customer's log records",
                                (LOG_TRACE_ID, LOG_SPAN_ID, LOG_USER_ID), of_the_customer=True)


def _service(*traces: Spans, metric: str | None,
             known_gaps: Mapping[str, str] | None = None) -> Row:
    """A service's row: its spans, the metrics every service exports plus its own
    (`metric`), and log records tied to their trace, request and user."""
    own = (Metric(metric),) if metric else ()
    return Row(traces=(SERVER, *traces, DATABASE),
               metrics=(REQUEST_DURATION, *PROCESS_METRICS, *own),
               logs=(LOG_RECORDS, CUSTOMERS_LOG_RECORDS), known_gaps=known_gaps or {})


MATRIX: dict[str, Row] = {
    # The gateway's own metric counts only refusals (rate limits); its calls to the
    # services are what it does.
    "gateway": _service(CUSTOMERS_REQUESTS, metric=semconv.METRIC_HTTP_CLIENT_DURATION),
    "identity": _service(CUSTOMERS_REQUESTS, metric=semconv.METRIC_USERS_REGISTERED),
    "catalog": _service(CUSTOMERS_REQUESTS, PUBLISH, metric=semconv.METRIC_PRODUCT_VIEWS),
    "inventory": _service(CUSTOMERS_REQUESTS, PUBLISH, metric=semconv.METRIC_OUT_OF_STOCK),
    "cart": _service(CUSTOMERS_REQUESTS, metric=semconv.METRIC_CART_ADDS),
    "orders": _service(CUSTOMERS_REQUESTS, PUBLISH, metric=semconv.METRIC_ORDERS),
    "payments": _service(CUSTOMERS_REQUESTS, PROCESS, metric=semconv.METRIC_PAYMENTS),
    "worker": _service(CUSTOMERS_EVENTS, PROCESS,
                       metric=semconv.METRIC_FUNCTION_INVOCATIONS),
    "lab": _service(CUSTOMERS_REQUESTS, metric=semconv.METRIC_LAB_RUNS),
    # The pages' browser telemetry, forwarded by the gateway's intake as a service of
    # its own: key actions as client spans, events as log records, and metrics by route
    # template (no process of its own, so no process metrics).
    semconv.RUM_SERVICE: Row(
        traces=(Spans("browser spans", frozenset({"client"}),
                      (semconv.HTTP_REQUEST_METHOD, semconv.URL_PATH,
                       semconv.HTTP_RESPONSE_STATUS_CODE, semconv.RUM_ACTION,
                       semconv.SESSION_ID)),),
        metrics=(Metric(semconv.METRIC_PAGE_VIEWS),
                 Metric(semconv.METRIC_WEB_VITALS["LCP"])),
        logs=(Records("browser events", (semconv.EVENT_NAME, semconv.SESSION_ID,
                                         semconv.URL_PATH, semconv.RUM_PAGE_VIEW_ID)),),
    ),
}


# --- What arrived ------------------------------------------------------------------------

@dataclass
class Evidence:
    """What the explorer holds of this test's traffic."""

    customer_id: str
    #: Spans of this test's traces (the explorer's flat form: kind, attributes, resource).
    spans: list[dict[str, Any]] = field(default_factory=list)
    #: Log records: each a dict of the record's fields and attributes, with its service.
    records: list[dict[str, Any]] = field(default_factory=list)
    #: Metric name → services that exported it.
    metric_senders: dict[str, set[str]] = field(default_factory=dict)
    #: Service → metric name → attribute names its points carry (Prometheus endpoint).
    metric_attributes: dict[str, dict[str, set[str]]] = field(default_factory=dict)


def _missing_spans(service: str, rule: Spans, evidence: Evidence) -> list[str]:
    candidates = [
        span for span in evidence.spans
        if span["service"] == service and span["kind"] in rule.kinds
        and (rule.marker is None or rule.marker in span["attributes"])]
    if not candidates:
        return [f"{rule.what}: none arrived"]
    if rule.of_the_customer:
        candidates = [span for span in candidates
                      if span["attributes"].get(semconv.ENDUSER_ID) == evidence.customer_id]
        if not candidates:
            return [f"{rule.what}: {semconv.ENDUSER_ID} (none has the customer's id)"]
    unnamed = [span for span in candidates
               if span["resource"].get(semconv.SERVICE_NAME) != service]
    if unnamed:
        return [f"{rule.what}: {semconv.SERVICE_NAME} (on {unnamed[0]['name']})"]
    best = max(candidates, key=lambda span: sum(a in span["attributes"]
                                                for a in rule.attributes))
    return [f"{rule.what}: {attribute} (on {best['name']})" for attribute in rule.attributes
            if attribute not in best["attributes"]]


def _missing_records(service: str, rule: Records, evidence: Evidence) -> list[str]:
    candidates = [record for record in evidence.records if record["service"] == service]
    if not candidates:
        return [f"{rule.what}: none arrived"]
    if rule.of_the_customer:
        candidates = [record for record in candidates
                      if record.get(LOG_USER_ID) == evidence.customer_id]
        if not candidates:
            return [f"{rule.what}: {LOG_USER_ID} (none has the customer's id)"]
    best = max(candidates, key=lambda record: sum(f in record for f in rule.fields))
    return [f"{rule.what}: {name}" for name in rule.fields if name not in best]


def _missing_metric(service: str, rule: Metric, evidence: Evidence) -> list[str]:
    if service not in evidence.metric_senders.get(rule.name, set()):
        return [f"{rule.name}: none arrived"]
    carried = evidence.metric_attributes.get(service, {}).get(rule.name, set())
    return [f"{rule.name}: {attribute}" for attribute in rule.attributes
            if attribute not in carried]


def gaps(evidence: Evidence) -> tuple[list[str], list[str]]:
    """(cells missing, known gaps that are no longer missing), each as
    `"<service> <signal>: <what>: <attribute>"`."""
    missing, closed = [], []
    for service, row in MATRIX.items():
        cells = [
            *((TRACES, gap) for rule in row.traces
              for gap in _missing_spans(service, rule, evidence)),
            *((METRICS, gap) for rule in row.metrics
              for gap in _missing_metric(service, rule, evidence)),
            *((LOGS, gap) for rule in row.logs
              for gap in _missing_records(service, rule, evidence)),
        ]
        found = {f"{signal}: {gap}" for signal, gap in cells}
        missing += [f"{service} {cell}" for cell in sorted(found)
                    if cell not in row.known_gaps]
        closed += [f"{service} {cell}" for cell in row.known_gaps if cell not in found]
    return missing, closed


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
