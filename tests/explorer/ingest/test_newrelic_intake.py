"""The explorer's New Relic intake: the collector calls an agent makes, over the real
TLS port, in the shapes agent 14.1 sends them (read from its audit log), into the
explorer's spans, metric points and logs; and what it refuses."""

from __future__ import annotations

import gzip
import json
import time
from typing import Any

import httpx

from kansoku.explorer.ingest.newrelic import COLLECTOR_PATH
from kansoku.kit import semconv
from tests.support import eventually

TRACE_ID = "40188b457e83c3e8f6f0572c8539ed3c"
EVENT_TRACE_ID = "5e5e8b457e83c3e8f6f0572c8539ed3c"


def _collector(explorer_app: Any) -> str:
    return f"https://127.0.0.1:{explorer_app.state.settings.newrelic_port}{COLLECTOR_PATH}"


async def _call(http: httpx.AsyncClient, url: str, method: str, payload: Any,
                run_id: str | None = None, *, compress: bool = False) -> httpx.Response:
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json",
               "Content-Encoding": "gzip" if compress else "Identity"}
    params = {"method": method, "protocol_version": "17", "marshal_format": "json",
              "license_key": "kansoku-local-collector-not-a-real-key00",
              **({"run_id": run_id} if run_id else {})}
    return await http.post(url, params=params, headers=headers,
                           content=gzip.compress(body) if compress else body)


def _span(guid: str, parent: str | None, name: str, start_ms: int, intrinsics: dict[str, Any],
          user: dict[str, Any], agent: dict[str, Any], trace_id: str = TRACE_ID
          ) -> list[dict[str, Any]]:
    return [{"type": "Span", "guid": guid, "traceId": trace_id, "name": name,
             "timestamp": start_ms, "duration": 0.0125, "priority": 1.5, "sampled": True,
             "transactionId": TRACE_ID[:16], **({"parentId": parent} if parent else {}),
             **intrinsics}, user, agent]


async def test_an_agents_harvest_becomes_spans_metrics_and_logs(
        intakes_explorer: tuple[str, Any]) -> None:
    explorer_url, explorer_app = intakes_explorer
    url = _collector(explorer_app)
    now_ms = int(time.time() * 1000)
    async with httpx.AsyncClient(verify=False, timeout=10) as http:
        preconnect = await _call(http, url, "preconnect", [])
        assert preconnect.json() == {"return_value": {"redirect_host": "127.0.0.1"}}
        connect = (await _call(http, url, "connect", [
            {"app_name": ["orders"], "pid": 42, "language": "python"}])).json()["return_value"]
        run_id = connect["agent_run_id"]
        # Events and spans every five seconds, as New Relic's collector asks.
        assert connect["event_harvest_config"]["report_period_ms"] == 5000
        spans = ["orders", {"events_seen": 3, "reservoir_size": 2000}, [
            _span("18118fb16cd31ffb", "00f067aa0ba902b7",
                  "Function/kansoku.services.orders.api:checkout", now_ms,
                  {"category": "generic", "nr.entryPoint": True,
                   "transaction.name": "WebTransaction/Function/orders.api:checkout"},
                  {"userId": "u-7", semconv.TRACE_BREAK: "traceparent"},
                  {"request.method": "POST", "request.uri": "/orders",
                   "http.statusCode": 500, "response.status": "500",
                   "error.class": "builtins:RuntimeError", "error.message": "boom"}),
            _span("ea6685cb85f50f2c", "18118fb16cd31ffb",
                  "Datastore/statement/Postgres/orders/insert", now_ms + 1,
                  {"category": "datastore", "component": "Postgres", "span.kind": "client"},
                  {},
                  {"db.statement": "INSERT INTO orders.orders VALUES (?)",
                   "db.instance": "kansoku", "peer.hostname": "db"}),
            _span("bf1889da27322f9f", "18118fb16cd31ffb", "External/payments/httpx/POST",
                  now_ms + 2, {"category": "http", "component": "httpx",
                               "span.kind": "client", "http.method": "POST",
                               "http.url": "http://payments:8006/charges"}, {},
                  {"http.statusCode": 201}),
        ]]
        assert (await _call(http, url, "span_event_data", spans, run_id,
                            compress=True)).status_code == 200
        assert (await _call(http, url, "metric_data", [
            run_id, now_ms / 1000 - 60, now_ms / 1000, [
                [{"name": "Custom/kansoku.orders.placed", "scope": ""}, [3, 3.0, 3.0, 1, 1, 3]],
                [{"name": "WebTransaction", "scope": ""}, [1, 0.1, 0.1, 0.1, 0.1, 0.01]],
            ]], run_id)).status_code == 200
        assert (await _call(http, url, "custom_event_data", [
            run_id, {"events_seen": 1, "reservoir_size": 2000}, [
                [{"type": "KansokuMeasurement", "timestamp": now_ms},
                 {"metric": "kansoku.orders.placed", "value": 1, "currency": "USD"}]]],
            run_id)).status_code == 200

    async with httpx.AsyncClient(base_url=explorer_url) as http:
        found: list[dict[str, Any]] = []

        async def arrived() -> bool:
            nonlocal found
            answer = await http.get(f"/api/spans/{TRACE_ID}")
            found = answer.json()["data"]["spans"] if answer.status_code == 200 else []
            return len(found) == 3

        await eventually(arrived, 10, "the harvested spans")
        metrics = (await http.get("/api/metrics")).json()["data"]
    by_id = {span["span_id"]: span for span in found}
    server = by_id["18118fb16cd31ffb"]
    assert (server["service"], server["kind"], server["name"]) == \
        ("orders", "server", "POST /orders")
    assert server["parent_span_id"] == "00f067aa0ba902b7"
    assert server["user_id"] == "u-7" and server["http_status"] == 500
    assert server["status"] == "error"
    assert server["attributes"][semconv.TRACE_BREAK] == "traceparent"
    sql = by_id["ea6685cb85f50f2c"]
    assert (sql["kind"], sql["db_system"]) == ("client", "postgresql")
    assert sql["db_statement"] == "INSERT INTO orders.orders VALUES (?)"
    call = by_id["bf1889da27322f9f"]
    assert call["kind"] == "client"
    assert call["attributes"][semconv.URL_FULL] == "http://payments:8006/charges"
    assert {span["attributes"][semconv.TELEMETRY_SOURCE] for span in found} == {"newrelic"}
    # The custom metric, without New Relic's prefix; the agent's own are not kept.
    names = {metric["name"] for metric in metrics}
    assert "kansoku.orders.placed" in names and "WebTransaction" not in names


async def test_an_events_publish_and_handling_are_producer_and_consumer_spans(
        intakes_explorer: tuple[str, Any]) -> None:
    """The spans of kansoku's event code on New Relic (kit/approaches/newrelic.py): the
    agent's `MessageTrace` for a publish, its `MessageTransaction` for a handling."""
    explorer_url, explorer_app = intakes_explorer
    url = _collector(explorer_app)
    now_ms = int(time.time() * 1000)
    async with httpx.AsyncClient(verify=False, timeout=10) as http:
        orders = (await _call(http, url, "connect", [{"app_name": ["orders"]}])).json()
        worker = (await _call(http, url, "connect", [{"app_name": ["worker"]}])).json()
        published = ["orders", {"events_seen": 1, "reservoir_size": 2000}, [
            _span("a1a1a1a1a1a1a1a1", "18118fb16cd31ffb",
                  "MessageBroker/NATS/Topic/Produce/Named/order.paid", now_ms,
                  {"category": "generic", "span.kind": "producer"}, {}, {}, EVENT_TRACE_ID)]]
        handled = ["worker", {"events_seen": 1, "reservoir_size": 2000}, [
            _span("b2b2b2b2b2b2b2b2", "a1a1a1a1a1a1a1a1",
                  "OtherTransaction/Message/NATS/Topic/Named/order.paid", now_ms + 5,
                  {"category": "generic", "nr.entryPoint": True,
                   "transaction.name": "OtherTransaction/Message/NATS/Topic/Named/order.paid"},
                  {semconv.MESSAGING_CONSUMER: "worker-order-paid", "userId": "u-7"}, {},
                  EVENT_TRACE_ID)]]
        for payload, answer in ((published, orders), (handled, worker)):
            run_id = answer["return_value"]["agent_run_id"]
            assert (await _call(http, url, "span_event_data", payload, run_id)).status_code == 200

    async with httpx.AsyncClient(base_url=explorer_url) as http:
        found: list[dict[str, Any]] = []

        async def arrived() -> bool:
            nonlocal found
            answer = await http.get(f"/api/spans/{EVENT_TRACE_ID}")
            found = answer.json()["data"]["spans"] if answer.status_code == 200 else []
            return {"a1a1a1a1a1a1a1a1", "b2b2b2b2b2b2b2b2"} <= {
                span["span_id"] for span in found}

        await eventually(arrived, 10, "the event's spans")
    by_id = {span["span_id"]: span for span in found}
    publish, process = by_id["a1a1a1a1a1a1a1a1"], by_id["b2b2b2b2b2b2b2b2"]
    assert (publish["service"], publish["kind"], publish["name"]) == \
        ("orders", "producer", "order.paid publish")
    assert (process["service"], process["kind"], process["name"]) == \
        ("worker", "consumer", "order.paid process")
    for span in (publish, process):
        assert span["attributes"][semconv.MESSAGING_DESTINATION] == "order.paid"
        assert span["attributes"][semconv.MESSAGING_SYSTEM] == "nats"
    assert process["attributes"]["newrelic.name"] == \
        "OtherTransaction/Message/NATS/Topic/Named/order.paid"
    assert process["parent_span_id"] == "a1a1a1a1a1a1a1a1" and process["user_id"] == "u-7"


async def test_an_unknown_run_is_told_to_connect_again_and_a_bad_body_is_refused(
        intakes_explorer: tuple[str, Any]) -> None:
    _, explorer_app = intakes_explorer
    url = _collector(explorer_app)
    async with httpx.AsyncClient(verify=False, timeout=10) as http:
        unknown = await _call(http, url, "span_event_data", ["gone-1", {}, []], "gone-1")
        assert unknown.status_code == 409
        assert "ForceRestartException" in unknown.json()["exception"]["error_type"]
        connect = (await _call(http, url, "connect", [{"app_name": ["cart"]}])).json()
        run_id = connect["return_value"]["agent_run_id"]
        bad = await _call(http, url, "span_event_data", {"not": "a list"}, run_id)
        assert bad.status_code == 400
        not_json = await http.post(url, params={"method": "metric_data", "run_id": run_id},
                                   content=b"{")
        assert not_json.status_code == 400
        no_method = await http.post(url, content=b"[]")
        assert no_method.status_code == 400
    rejected = explorer_app.state.intakes.newrelic.collector.rejected
    assert rejected["span_event_data is not [run id, sampling, events]"] == 1
    assert rejected["body is not JSON (JSONDecodeError)"] == 1
