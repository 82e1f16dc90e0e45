"""The catalog on the New Relic approach (`KANSOKU_INSTRUMENTATION=newrelic`), end to end:
the service runs in a process of its own (the agent patches libraries process-wide) on
real PostgreSQL, Valkey and NATS, with the real New Relic agent reporting to an
explorer's New Relic intake (its collector endpoint). What arrives is what a learner
sees of the approach in the explorer."""

from __future__ import annotations

import json
from typing import Any

import httpx

from kansoku.kit import semconv
from tests.services.catalog.conftest import TOKENS
from tests.support import (
    CATALOG_PROCESS,
    ServiceProcesses,
    eventually,
    free_ports,
    intake_environment,
    migrate,
    relayed_event,
    small_png,
)

ADMIN_ID = "admin-on-newrelic"


async def test_a_request_on_new_relic_arrives_as_a_trace_with_its_user_sql_and_metric(
        postgres_url: str, valkey_url: str, nats_url: str,
        intakes_explorer: tuple[str, Any], service_processes: ServiceProcesses) -> None:
    explorer_url, explorer_app = intakes_explorer
    await migrate(postgres_url, "catalog")
    (port,) = free_ports(1)
    environment = {**intake_environment(explorer_url, explorer_app),
                   "KANSOKU_CATALOG_INSTRUMENTATION": "newrelic",
                   "KANSOKU_DATABASE_URL": postgres_url, "KANSOKU_REDIS_URL": valkey_url,
                   "KANSOKU_NATS_URL": nats_url,
                   "TEST_JWKS": json.dumps(TOKENS.signer.jwks())}
    service_processes.start("catalog", CATALOG_PROCESS, str(port), environment=environment)
    catalog = f"http://127.0.0.1:{port}"
    await service_processes.wait_until_answering("catalog", f"{catalog}/health/live")
    # Ready means connected: the service waited for its agent at start-up.
    assert "catalog" in explorer_app.state.intakes.newrelic.collector.runs.values()
    caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    async with httpx.AsyncClient(base_url=catalog, timeout=30) as http:
        # An OpenTelemetry caller's traceparent: the agent continues it.
        created = await http.post(
            "/products", headers={**TOKENS.headers("admin", user_id=ADMIN_ID),
                                  "traceparent": f"00-{caller_trace}-00f067aa0ba902b7-01"},
            json={"name": "Relic Telescope", "description": "Sees the past",
                  "price": "99.00", "currency": "USD"})
        assert created.status_code == 201, created.text
        viewed = await http.get(f"/products/{created.json()['id']}")
        assert viewed.status_code == 200
        # An X-Ray caller's header: the agent cannot continue it, and says so.
        xray_root = "1-5759e988-bd862e3fe1be46a994272793"
        listed = await http.get("/products", headers={
            "X-Amzn-Trace-Id": f"Root={xray_root};Parent=53995c3f42cd8ad8;Sampled=1"})
        assert listed.status_code == 200
        # An event written in a request continued from a caller's trace, published later
        # by the outbox relay: it carries the agent's headers, naming that trace.
        product_id = created.json()["id"]
        upload_trace = "5e5e2f3577b34da6a3ce929d0e0e4736"
        uploaded = await http.put(
            f"/products/{product_id}/image", content=small_png(),
            headers={**TOKENS.headers("admin", user_id=ADMIN_ID), "Content-Type": "image/png",
                     "traceparent": f"00-{upload_trace}-00f067aa0ba902b7-01"})
        assert uploaded.status_code == 200, uploaded.text
    event = await relayed_event(nats_url, "product.image_uploaded",
                                lambda payload: payload["product_id"] == product_id)
    assert event["traceparent"].startswith(f"00-{upload_trace}-")
    assert event["tracestate"].startswith("1@nr=")
    # Agent 14.1 no longer writes its older `newrelic` header (exclude_newrelic_header).
    assert "newrelic" not in event
    # The agent harvests what it has left as it stops.
    service_processes.stop_all()
    output = service_processes.log("catalog") + json.dumps(
        explorer_app.state.intakes.newrelic.collector.calls)

    spans: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=explorer_url) as explorer_http:
        async def trace_arrived() -> bool:
            nonlocal spans
            answer = await explorer_http.get(f"/api/spans/{caller_trace}")
            spans = answer.json()["data"]["spans"] if answer.status_code == 200 else []
            return bool(spans)

        await eventually(trace_arrived, 60, f"the POST's trace in the explorer\n{output}")

        async def metric_arrived() -> bool:
            names = (await explorer_http.get("/api/metrics")).json()["data"]
            return any(metric["name"] == semconv.METRIC_PRODUCT_VIEWS for metric in names)

        await eventually(metric_arrived, 60, "the product view's custom metric")
        # The request that came with an X-Ray header: found by the break's attribute.
        broken = (await explorer_http.get("/api/traces", params={
            "service": "catalog", "tags": json.dumps({semconv.TRACE_BREAK: "X-Amzn-Trace-Id"}),
            "minSpans": 1})).json()["data"]
    server = next(span for span in spans if span["kind"] == "server")
    assert server["service"] == "catalog" and server["name"] == "POST /products"
    assert server["parent_span_id"] == "00f067aa0ba902b7"
    assert server["http_status"] == 201 and server["user_id"] == ADMIN_ID
    assert server["attributes"]["userId"] == ADMIN_ID
    assert {span["attributes"]["telemetry.source"] for span in spans} == {"newrelic"}
    statements = [span["db_statement"] for span in spans if span["db_statement"]]
    assert any(statement.lstrip().upper().startswith("INSERT") for statement in statements), \
        statements
    # Redis through redis.asyncio: the agent has its hook.
    assert any(span["db_system"] == "redis" for span in spans), spans
    (trace,) = broken
    entry = next(span for span in trace["spans"]
                 if any(tag["key"] == "newrelic.nr.entryPoint" for tag in span["tags"]))
    tags = {tag["key"]: tag["value"] for tag in entry["tags"]}
    assert tags[semconv.TRACE_BREAK_CALLER_TRACE_ID] == "5759e988bd862e3fe1be46a994272793"
    assert trace["traceID"] != "5759e988bd862e3fe1be46a994272793"
