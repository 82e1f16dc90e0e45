"""The catalog on the AWS approach (`KANSOKU_INSTRUMENTATION=xray`), end to end: the
service runs in a process of its own (the X-Ray SDK patches libraries process-wide) on
real PostgreSQL, Valkey and NATS, and sends to an explorer's X-Ray and EMF intakes.
What arrives is what a learner sees of the approach in the explorer."""

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

ADMIN_ID = "admin-on-xray"


async def test_a_request_on_xray_arrives_as_a_trace_with_its_user_and_its_metric(
        postgres_url: str, valkey_url: str, nats_url: str,
        intakes_explorer: tuple[str, Any], service_processes: ServiceProcesses) -> None:
    explorer_url, explorer_app = intakes_explorer
    await migrate(postgres_url, "catalog")
    (port,) = free_ports(1)
    environment = {**intake_environment(explorer_url, explorer_app),
                   "KANSOKU_CATALOG_INSTRUMENTATION": "xray",
                   "KANSOKU_DATABASE_URL": postgres_url, "KANSOKU_REDIS_URL": valkey_url,
                   "KANSOKU_NATS_URL": nats_url,
                   "TEST_JWKS": json.dumps(TOKENS.signer.jwks())}
    service_processes.start("catalog", CATALOG_PROCESS, str(port), environment=environment)
    catalog = f"http://127.0.0.1:{port}"
    await service_processes.wait_until_answering("catalog", f"{catalog}/health/live")
    async with httpx.AsyncClient(base_url=catalog, timeout=30) as http:
        created = await http.post(
            "/products", headers=TOKENS.headers("admin", user_id=ADMIN_ID),
            json={"name": "X-Ray Telescope", "description": "Sees through things",
                  "price": "99.00", "currency": "USD"})
        assert created.status_code == 201, created.text
        trace_header = created.headers["x-amzn-trace-id"]
        viewed = await http.get(f"/products/{created.json()['id']}")
        assert viewed.status_code == 200
        # An event written in a request, published later by the outbox relay.
        product_id = created.json()["id"]
        uploaded = await http.put(f"/products/{product_id}/image", content=small_png(),
                                  headers={**TOKENS.headers("admin", user_id=ADMIN_ID),
                                           "Content-Type": "image/png"})
        assert uploaded.status_code == 200, uploaded.text
    event = await relayed_event(nats_url, "product.image_uploaded",
                                lambda payload: payload["product_id"] == product_id)
    service_processes.stop_all()
    # The event names the upload's trace in X-Ray's header, and in W3C's with the same
    # ids, for consumers of any approach.
    upload_root = dict(part.split("=", 1) for part in
                       uploaded.headers["x-amzn-trace-id"].split(";"))["Root"]
    event_header = dict(part.split("=", 1) for part in event["X-Amzn-Trace-Id"].split(";"))
    assert event_header["Root"] == upload_root and event_header["Sampled"] == "1"
    assert event["traceparent"] == \
        f"00-{upload_root[2:10]}{upload_root[11:]}-{event_header['Parent']}-01"

    # The answer's X-Amzn-Trace-Id names the trace: Root=1-xxxxxxxx-yyyy…
    root = dict(part.split("=", 1) for part in trace_header.split(";"))["Root"]
    trace_id = root[2:10] + root[11:]
    spans: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=explorer_url) as explorer_http:
        async def trace_arrived() -> bool:
            nonlocal spans
            answer = await explorer_http.get(f"/api/spans/{trace_id}")
            spans = answer.json()["data"]["spans"] if answer.status_code == 200 else []
            return bool(spans)

        await eventually(trace_arrived, 20, "the POST's trace in the explorer")

        async def metric_arrived() -> bool:
            names = (await explorer_http.get("/api/metrics")).json()["data"]
            return any(metric["name"] == semconv.METRIC_PRODUCT_VIEWS for metric in names)

        await eventually(metric_arrived, 20, "the product view's EMF metric")
        metrics = (await explorer_http.get("/api/metrics")).json()["data"]
    server = next(span for span in spans if span["kind"] == "server")
    assert server["service"] == "catalog" and server["name"] == "POST /products"
    assert server["http_status"] == 201 and server["user_id"] == ADMIN_ID
    assert server["attributes"]["user_id"] == ADMIN_ID
    assert {span["attributes"]["telemetry.source"] for span in spans} == {"xray"}
    # What the SDK's SQLAlchemy patch sees through the async engine (asyncpg): measured
    # and kept here, for docs/approaches.md.
    statements = [span["db_statement"] for span in spans if span["db_statement"]]
    assert any(statement.lstrip().upper().startswith("INSERT") for statement in statements), \
        statements
    view = next(metric for metric in metrics if metric["name"] == semconv.METRIC_PRODUCT_VIEWS)
    assert "catalog" in json.dumps(view)
