"""The gateway's home page when the catalog is missing: a 503, never a hang or a trace."""

from __future__ import annotations

import httpx
from opentelemetry.processor.baggage import BaggageSpanProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from kansoku.kit.clock import wall_time
from kansoku.kit.telemetry import Telemetry
from kansoku.services.gateway.app import create_app
from kansoku.services.gateway.settings import Settings
from tests.support import ManualClock, free_ports
from tests.tokens import TokenIssuer

TOKENS = TokenIssuer()


def gateway_without_catalog(valkey_url: str, rate_limit_per_ip: int = 6000,
                            rate_limit_per_user: int = 1200,
                            clock: ManualClock | None = None) -> httpx.AsyncClient:
    (closed,) = free_ports(1)
    app = create_app(Settings(catalog_url=f"http://127.0.0.1:{closed}", redis_url=valkey_url,
                              rate_limit_per_ip=rate_limit_per_ip,
                              rate_limit_per_user=rate_limit_per_user), Telemetry("gateway"),
                     clock=clock.time if clock else wall_time)
    app.state.tokens = TOKENS.verifier
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")


async def test_browsers_get_a_friendly_page(valkey_url: str) -> None:
    async with gateway_without_catalog(valkey_url) as client:
        response = await client.get("/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert "We\u2019ll be right back" in response.text
    assert "catalog" in response.text
    assert "Traceback" not in response.text


async def test_scripts_get_problem_json(valkey_url: str) -> None:
    async with gateway_without_catalog(valkey_url) as client:
        response = await client.get("/", headers={"Accept": "application/json"})
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["dependency"] == "catalog"
    assert "cannot connect" in body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]


def traced_gateway(valkey_url: str, trust_incoming_user: bool
                   ) -> tuple[httpx.AsyncClient, InMemorySpanExporter]:
    """The gateway with real tracing into memory, and the catalog absent."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(BaggageSpanProcessor(lambda key: key == "enduser.id"))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry = Telemetry("gateway", tracer_provider=provider,
                          meter_provider=MeterProvider())
    (closed,) = free_ports(1)
    app = create_app(Settings(catalog_url=f"http://127.0.0.1:{closed}", redis_url=valkey_url,
                              trust_incoming_user=trust_incoming_user), telemetry)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")
    return client, exporter


async def test_a_clients_claimed_user_id_is_dropped_at_the_edge(valkey_url: str) -> None:
    client, exporter = traced_gateway(valkey_url, trust_incoming_user=False)
    async with client:
        await client.get("/", headers={"baggage": "enduser.id=mallory,synthetic=true"})
    spans = exporter.get_finished_spans()
    assert spans, "the request was traced"
    assert all("enduser.id" not in (span.attributes or {}) for span in spans)


async def test_a_trusted_proxys_user_id_is_kept(valkey_url: str) -> None:
    client, exporter = traced_gateway(valkey_url, trust_incoming_user=True)
    async with client:
        await client.get("/", headers={"baggage": "enduser.id=alice"})
    server = next(s for s in exporter.get_finished_spans() if s.name == "GET /")
    assert (server.attributes or {})["enduser.id"] == "alice"


async def test_the_server_span_carries_the_request_id(valkey_url: str) -> None:
    client, exporter = traced_gateway(valkey_url, trust_incoming_user=False)
    async with client:
        response = await client.get("/", headers={"X-Request-ID": "trace-me-1"})
    server = next(s for s in exporter.get_finished_spans() if s.name == "GET /")
    assert response.headers["x-request-id"] == "trace-me-1"
    assert (server.attributes or {})["kansoku.request_id"] == "trace-me-1"


async def test_rate_limits_per_address_and_per_user(valkey_url: str) -> None:
    clock = ManualClock()  # stands still: no window turns in the middle of the test
    async with gateway_without_catalog(valkey_url, rate_limit_per_ip=1000,
                                       rate_limit_per_user=2, clock=clock) as client:
        user = TOKENS.headers(user_id=f"limited-{free_ports(1)[0]}")
        answers = [await client.get("/api/v1/categories", headers=user) for _ in range(3)]
        other = await client.get("/api/v1/categories", headers=TOKENS.headers())
    assert [a.status_code for a in answers[:2]] == [503, 503]  # the catalog is absent
    assert answers[2].status_code == 429
    assert answers[2].headers["content-type"] == "application/problem+json"
    assert 1 <= int(answers[2].headers["retry-after"]) <= 60
    assert "user" in answers[2].json()["detail"]
    assert other.status_code == 503, "another user has their own allowance"
    async with gateway_without_catalog(valkey_url, rate_limit_per_ip=1, clock=clock) as client:
        await client.get("/api/v1/categories")
        await client.get("/api/v1/categories")
        limited = await client.get("/api/v1/categories")
    assert limited.status_code == 429 and "address" in limited.json()["detail"]


async def test_server_spans_are_named_by_the_whole_route(valkey_url: str) -> None:
    """The alert rules' and SLOs' operations name the gateway's routes as callers see
    them (`POST /api/v1/orders`, `GET /products/{product_id}`), whatever router holds
    them."""
    client, exporter = traced_gateway(valkey_url, trust_incoming_user=False)
    async with client:
        await client.get("/api/v1/products/7")
        await client.post("/api/v1/orders", json={})
        await client.post("/api/v1/lab/slow-query/fixed")
        await client.get("/products/7")
        await client.get("/admin/inventory/7")
    names = {span.name for span in exporter.get_finished_spans()
             if span.kind == SpanKind.SERVER}
    assert names == {"GET /api/v1/products/{product_id}", "POST /api/v1/orders",
                     "POST /api/v1/lab/slow-query/fixed", "GET /products/{product_id}",
                     "GET /admin/inventory/{product_id}"}
