"""The Jaeger-compatible query API as Grafana and scripts use it: searches newest first,
Jaeger's parameters (compound durations, limit 0, `otel.status_code`), answers bounded
whatever the traces hold, the all-zero trace id refused, gzip bodies of several members
read whole."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from kansoku.explorer.app import create_app
from kansoku.explorer.settings import Settings

NOW = time.time_ns()
S = 1_000_000_000
JSON = {"Content-Type": "application/json"}


def span(trace: int, number: int, *, parent: int | None = None, name: str = "GET /products",
         ago_s: float = 10, duration_s: float = 0.05, status: int = 0,
         attributes: dict[str, str] | None = None) -> dict[str, Any]:
    """One span in OTLP/JSON: trace `trace`, span `number` (both as hex ids)."""
    start = NOW - int(ago_s * S)
    return {"traceId": f"{trace:032x}", "spanId": f"{number:016x}",
            "parentSpanId": f"{parent:016x}" if parent is not None else "",
            "name": name, "kind": 2, "startTimeUnixNano": str(start),
            "endTimeUnixNano": str(start + int(duration_s * S)), "status": {"code": status},
            "attributes": [{"key": key, "value": {"stringValue": value}}
                           for key, value in (attributes or {}).items()]}


def export(spans: list[dict[str, Any]], service: str = "gateway") -> bytes:
    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name",
                                     "value": {"stringValue": service}}]},
        "scopeSpans": [{"spans": spans}]}]}).encode()


@asynccontextmanager
async def explorer(**settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(db_path=":memory:", **settings))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://explorer") as http:
            yield http
    finally:
        app.state.store.close()


async def send(http: httpx.AsyncClient, spans: list[dict[str, Any]], **headers: str
               ) -> httpx.Response:
    answer = await http.post("/v1/traces", content=export(spans), headers={**JSON, **headers})
    assert answer.status_code == 200, answer.text
    return answer


async def search(http: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    answer = await http.get("/api/traces", params=params)
    assert answer.status_code == 200, answer.text
    traces: list[dict[str, Any]] = answer.json()["data"]
    return traces


def ids(traces: list[dict[str, Any]]) -> list[str]:
    return [trace["traceID"] for trace in traces]


async def test_a_search_lists_the_newest_traces_first() -> None:
    async with explorer() as http:
        await send(http, [span(1, 1, ago_s=30), span(2, 2, ago_s=10), span(3, 3, ago_s=20)])
        assert ids(await search(http)) == [f"{2:032x}", f"{3:032x}", f"{1:032x}"]


async def test_compound_durations_in_lookback_and_duration_bounds() -> None:
    async with explorer() as http:
        await send(http, [span(1, 1, ago_s=80 * 60, duration_s=100),
                          span(2, 2, ago_s=100 * 60, duration_s=100),
                          span(3, 3, ago_s=60, duration_s=80)])
        assert ids(await search(http, lookback="1h30m")) == [f"{3:032x}", f"{1:032x}"]
        assert ids(await search(http, lookback="2h", minDuration="1m30s")) == [
            f"{1:032x}", f"{2:032x}"]
        assert ids(await search(http, lookback="2h", maxDuration="1m30s")) == [f"{3:032x}"]


async def test_limit_zero_is_the_default_and_a_negative_limit_is_refused() -> None:
    async with explorer() as http:
        await send(http, [span(trace, trace, ago_s=trace) for trace in range(1, 26)])
        assert len(await search(http, limit=0)) == 20
        assert len(await search(http, limit=3)) == 3
        refused = await http.get("/api/traces", params={"limit": -1})
    assert refused.status_code == 422
    assert "limit" in refused.json()["detail"]


async def test_otel_status_code_is_a_tag_to_search_and_to_read() -> None:
    async with explorer() as http:
        await send(http, [span(1, 1, status=2), span(2, 2, status=1), span(3, 3)])
        failed = await search(http, tags='{"otel.status_code": "ERROR"}')
        assert ids(failed) == [f"{1:032x}"]
        assert ids(await search(http, tags='{"otel.status_code": "OK"}')) == [f"{2:032x}"]
        assert ids(await search(http, tags='{"error": "true"}')) == [f"{1:032x}"]
        by_id = {trace["traceID"]: trace["spans"][0] for trace in await search(http)}

    def tags(number: int) -> dict[str, Any]:
        return {tag["key"]: tag["value"] for tag in by_id[f"{number:032x}"]["tags"]}

    assert tags(1)["otel.status_code"] == "ERROR" and tags(1)["error"] is True
    assert tags(2)["otel.status_code"] == "OK" and "error" not in tags(2)
    assert "otel.status_code" not in tags(3)  # unset: no tag, as Jaeger writes it


async def test_any_tag_key_is_searchable() -> None:
    """A key with a backslash or a quote was written into a JSON path: a 500."""
    async with explorer() as http:
        await send(http, [span(1, 1, attributes={'odd\\"key': "v", "a/b": "w"})])
        assert ids(await search(http, tags=json.dumps({'odd\\"key': "v"}))) == [f"{1:032x}"]
        assert ids(await search(http, tags=json.dumps({"a/b": "w"}))) == [f"{1:032x}"]
        assert await search(http, tags=json.dumps({"odd\\": "v"})) == []


async def test_traces_of_some_root_operations_can_be_left_out() -> None:
    """The storefront's images are a trace each: a search can leave them out."""
    async with explorer() as http:
        await send(http, [
            span(1, 1, name="GET /products"),
            span(2, 2, name="GET /api/v1/products/{product_id}/thumbnail"),
            span(3, 3, name="GET /api/v1/products/{product_id}/image"),
            span(4, 4, name="GET /products/{product_id}"),
            # a thumbnail call inside a page's trace does not hide the page
            span(4, 5, parent=4, name="GET /api/v1/products/{product_id}/thumbnail")])
        found = await search(http, exclude=["GET */thumbnail", "GET */image"])
    assert sorted(ids(found)) == [f"{1:032x}", f"{4:032x}"]


async def test_one_span_traces_can_be_left_out() -> None:
    """minSpans counts a trace's spans in the range, not those matching the search: a
    two-span trace found by its root's name still has two."""
    async with explorer() as http:
        await send(http, [
            span(1, 1, name="GET /.well-known/jwks.json"),
            span(2, 2, name="GET /products"), span(2, 3, parent=2, name="SELECT"),
            span(3, 4, name="POST /orders"), span(3, 5, parent=4, name="INSERT"),
            span(3, 6, parent=4, name="POST /charges")])
        assert sorted(ids(await search(http, minSpans=2))) == [f"{2:032x}", f"{3:032x}"]
        assert ids(await search(http, minSpans=3)) == [f"{3:032x}"]
        assert ids(await search(http, minSpans=2, operation="GET /products")) == [
            f"{2:032x}"]
        assert len(await search(http)) == 3
        refused = await http.get("/api/traces", params={"minSpans": 0})
    assert refused.status_code == 422 and "minSpans" in refused.text


async def test_the_all_zero_trace_id_is_refused_in_and_out() -> None:
    zero = "0" * 32
    async with explorer() as http:
        answer = await http.post("/v1/traces", headers=JSON, content=export(
            [{**span(1, 1), "traceId": zero}, {**span(2, 2), "spanId": "0" * 16},
             span(3, 3)]))
        stored = await search(http)
        by_id = await http.get(f"/api/traces/{zero}")
        flat = await http.get(f"/api/spans/{zero}")
    assert answer.status_code == 200
    assert answer.json()["partialSuccess"]["rejectedSpans"] == "2"
    assert "all zeros" in answer.json()["partialSuccess"]["errorMessage"]
    assert ids(stored) == [f"{3:032x}"]
    for refused in (by_id, flat):
        assert refused.status_code == 404
        assert "all-zero trace id" in refused.json()["detail"]
        assert refused.json()["request_id"]


async def test_a_gzip_body_of_several_members_is_read_whole() -> None:
    """`cat a.gz b.gz` is one gzip file (RFC 1952); only its first member was read."""
    body = export([span(1, 1), span(2, 2)])
    middle = len(body) // 2
    async with explorer() as http:
        answer = await http.post("/v1/traces", headers={**JSON, "Content-Encoding": "gzip"},
                                 content=gzip.compress(body[:middle])
                                 + gzip.compress(body[middle:]))
        stored = await search(http)
    assert answer.status_code == 200, answer.text
    assert len(stored) == 2


async def test_a_gzip_body_unzipping_past_the_limit_is_refused_unread() -> None:
    member = gzip.compress(b" " * 40_000)
    async with explorer(max_body_bytes=100_000) as http:
        answer = await http.post("/v1/traces", headers={**JSON, "Content-Encoding": "gzip"},
                                 content=member * 3)
        truncated = await http.post("/v1/traces",
                                    headers={**JSON, "Content-Encoding": "gzip"},
                                    content=member + member[:-4])
    assert answer.status_code == 413
    assert truncated.status_code == 400 and "truncated" in truncated.json()["detail"]


# --- bounded answers ---------------------------------------------------------------------

#: The answer bound in these tests (the default is 16 MiB).
BOUND = 256 * 1024


#: A kansoku server span's attributes (13, short).
SERVER_ATTRIBUTES = {
    "http.request.method": "GET", "http.route": "/api/v1/products/{product_id}",
    "url.path": "/api/v1/products/42", "url.scheme": "http", "server.address": "127.0.0.1",
    "server.port": "8002", "network.protocol.version": "1.1",
    "http.response.status_code": "200", "client.address": "127.0.0.1",
    "user_agent.original": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120",
    "enduser.id": "1234", "kansoku.synthetic": "load",
    "http.request.id": "c227c3fd79634c3996db8412e5f91cf1"}
#: ... and a database span's, with a long statement.
LONG_STATEMENT = {"db.system": "postgresql", "db.statement": "SELECT " + "x, " * 700 + "y"}


def big_trace(trace: int, spans: int, *, ago_s: float = 60,
              attributes: dict[str, str] = LONG_STATEMENT) -> list[dict[str, Any]]:
    """A root and `spans - 1` children with these attributes."""
    return [span(trace, trace * 10_000, ago_s=ago_s, duration_s=5,
                 attributes=SERVER_ATTRIBUTES)] + [
        span(trace, trace * 10_000 + n, parent=trace * 10_000, ago_s=ago_s - n / 1000,
             name="SELECT", attributes=attributes) for n in range(1, spans)]


@pytest.mark.parametrize("attributes", [LONG_STATEMENT, SERVER_ATTRIBUTES],
                         ids=["long statements", "short attributes"])
async def test_a_search_answer_stays_bounded_and_says_what_it_left_out(
        attributes: dict[str, str]) -> None:
    async with explorer(max_answer_bytes=BOUND) as http:
        for trace in range(1, 6):  # 5 traces of 300 spans: 1.5 to 3 MB
            await send(http, big_trace(trace, 300, ago_s=60 + trace, attributes=attributes))
        answer = await http.get("/api/traces", params={"limit": 20})
    assert answer.status_code == 200
    # The bound counts stored bytes, and what Jaeger's JSON adds to each span.
    assert len(answer.content) <= BOUND
    traces = answer.json()["data"]
    assert len(traces) == 5
    for trace in traces:
        kept = len(trace["spans"])
        assert 1 <= kept < 300
        assert trace["spans"][0]["operationName"] == "GET /products"  # the root comes first
        assert trace["warnings"] == [
            f"This answer holds the first {kept:,} of the trace's 300 spans: a search's "
            "answer holds 256 KiB of span data, shared by its 5 traces; open the trace "
            "alone for more."]


async def test_one_trace_is_bounded_too_and_so_is_one_huge_span() -> None:
    async with explorer(max_answer_bytes=BOUND) as http:
        await send(http, big_trace(1, 400))
        huge = span(2, 2, attributes={"payload": "p" * 100_000, "http.route": "/big"})
        await send(http, [huge, span(2, 3, parent=2, name="small")])
        cut = (await http.get(f"/api/traces/{1:032x}")).json()["data"][0]
        flat = (await http.get(f"/api/spans/{1:032x}")).json()["data"]
        (with_huge,) = (await http.get(f"/api/traces/{2:032x}")).json()["data"]
    assert 1 < len(cut["spans"]) < 400
    assert cut["warnings"][0].startswith(f"This answer holds the first {len(cut['spans'])} "
                                         "of the trace's 400 spans: one trace's answer "
                                         "holds 256 KiB of span data")
    assert len(flat["spans"]) == len(cut["spans"]) and flat["span_count"] == 400
    assert flat["warnings"] == cut["warnings"]

    whole, small = with_huge["spans"]
    # (Its stored attributes include the `"telemetry.source":"otel"` the explorer adds.)
    assert whole["operationName"] == "GET /products" and whole["warnings"] == [
        "This span's details (100,099 bytes of attributes, resource, events, links, status "
        "message and name) are more than the 65,536 a span may carry in this answer: they "
        "are left out, its name cut to 200 characters."]
    assert {tag["key"] for tag in whole["tags"]} == {"span.kind"}
    assert small["warnings"] is None and with_huge["warnings"] is None


@pytest.mark.parametrize("path", ["/api/traces/" + "f" * 32, "/api/spans/" + "f" * 32])
async def test_an_unknown_trace_is_404(path: str) -> None:
    async with explorer() as http:
        answer = await http.get(path)
    assert answer.status_code == 404 and answer.json()["request_id"]
