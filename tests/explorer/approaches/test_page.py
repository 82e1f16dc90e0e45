"""The Approaches page: `/api/approaches` answers the benchmark's figures (as
benchmarks/approaches.py writes them), the spans by the approach that made them and each
approach's latest checkout; in Chromium the page shows all three, linking to the traces."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from kansoku.explorer.app import create_app
from kansoku.explorer.approaches.models import (
    Machine,
    MatrixShare,
    Measured,
    MeasuredApproach,
    RoleCount,
    SpanRole,
)
from kansoku.explorer.settings import Settings
from kansoku.kit import semconv
from kansoku.kit.approaches import Instrumentation
from tests.browser import BrowserPage, served

#: OTLP's span kinds.
SERVER, CLIENT = 2, 3
#: Each approach's checkout: (trace, its source, how long ago it ended in seconds).
OLD_OTEL, NEW_OTEL, XRAY = 0xA1, 0xA2, 0xB1


def _span(trace: int, number: int, parent: int | None, name: str, kind: int,
          ago: float, attributes: dict[str, str]) -> dict[str, Any]:
    end = time.time_ns() - int(ago * 1e9)
    return {"traceId": f"{trace:032x}", "spanId": f"{number:016x}",
            "parentSpanId": f"{parent:016x}" if parent is not None else "",
            "name": name, "kind": kind, "startTimeUnixNano": str(end - 50_000_000),
            "endTimeUnixNano": str(end), "status": {"code": 0},
            "attributes": [{"key": key, "value": {"stringValue": value}}
                           for key, value in attributes.items()]}


def checkout(trace: int, source: str, ago: float, statements: int) -> bytes:
    """One checkout's trace as `source` would have made it: the gateway's request, its
    call to orders, orders' request and `statements` SQL statements."""
    tag = {semconv.TELEMETRY_SOURCE: source}
    sql = {**tag, semconv.DB_SYSTEM: "postgresql"}
    gateway = [_span(trace, 1, None, "POST /api/v1/orders", SERVER, ago, tag),
               _span(trace, 2, 1, "POST", CLIENT, ago, tag)]
    orders = [_span(trace, 3, 2, "POST /orders", SERVER, ago, tag),
              *(_span(trace, 10 + n, 3, "INSERT", CLIENT, ago, sql) for n in range(statements))]
    return json.dumps({"resourceSpans": [
        {"resource": {"attributes": [{"key": "service.name",
                                      "value": {"stringValue": service}}]},
         "scopeSpans": [{"spans": spans}]}
        for service, spans in (("gateway", gateway), ("orders", orders))]}).encode()


def measured() -> Measured:
    """A run of the benchmark, as it writes one."""
    def figures(approach: Instrumentation, rate: float, spans: int | None) -> MeasuredApproach:
        return MeasuredApproach(
            approach=approach, checkouts_per_second=rate, rounds=[rate], of_none=rate / 20,
            cpu_ms_per_checkout=100, cpu_ms_by_service={"gateway": 40},
            memory_mib_per_service=80, memory_mib_by_service={"gateway": 80}, p50_ms=200,
            p99_ms=400, added_p50_ms=20, added_p99_ms=40, spans_per_checkout=spans,
            spans_received_per_checkout=spans, early_untraced=0 if spans else None,
            matrix_share=MatrixShare(traces=0.9, metrics=0.8, logs=1, all=0.9)
            if spans else None, early_requests=10, wiring_lines=321,
            wiring_modules={"kit/telemetry.py": 321}, not_paid=0,
            sees_alone=["orders publish"] if approach == Instrumentation.OTEL else [],
            misses=[] if approach == Instrumentation.OTEL else ["orders publish"])
    return Measured(
        measured_at=datetime(2026, 12, 8, 3, 0, tzinfo=UTC),
        machine=Machine(cpu="Test CPU", cores=2, memory_gib=24, system="Linux", python="3.13"),
        load_average_before=[1.0, 1.0, 1.0], load_average_after=[2.0, 1.5, 1.0], rounds=3,
        seconds_per_round=12, concurrency=6,
        approaches=[figures(Instrumentation.OTEL, 17.5, 42),
                    figures(Instrumentation.XRAY, 18.25, 30),
                    figures(Instrumentation.NONE, 20, None)],
        checkout=[RoleCount(service="orders", role=SpanRole.PUBLISH,
                            counts={"otel": 1, "xray": 0})])


@pytest.fixture
async def explorer(tmp_path: Path) -> AsyncIterator[tuple[FastAPI, Path]]:
    """An explorer holding two OpenTelemetry checkouts and an X-Ray one, and showing the
    figures of a file of this test's own."""
    # The vendors' intakes off: their fixed ports are not this test's to take.
    app = create_app(Settings(db_path=":memory:", xray_port=None, emf_port=None,
                              newrelic_port=None))
    figures = tmp_path / "measured.json"
    figures.write_text(measured().model_dump_json())
    app.state.approaches_file = figures
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://explorer") as http:
        for body in (checkout(OLD_OTEL, "otel", 30, 1), checkout(NEW_OTEL, "otel", 5, 3),
                     checkout(XRAY, "xray", 10, 6)):
            assert (await http.post("/v1/traces", content=body, headers={
                "Content-Type": "application/json"})).status_code == 200
    yield app, figures
    app.state.store.close()


async def test_the_api_answers_the_figures_the_sources_and_each_latest_checkout(
        explorer: tuple[FastAPI, Path]) -> None:
    app, figures = explorer
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://explorer") as http:
        answer = (await http.get("/api/approaches")).raise_for_status().json()["data"]
        figures.write_text("{not json")
        unreadable = (await http.get("/api/approaches")).raise_for_status().json()["data"]
        figures.unlink()
        missing = (await http.get("/api/approaches")).raise_for_status().json()["data"]

    assert [a["approach"] for a in answer["measured"]["approaches"]] == ["otel", "xray", "none"]
    assert answer["measured"]["machine"]["cpu"] == "Test CPU"
    assert {s["source"]: (s["spans"], s["traces"]) for s in answer["sources"]} == {
        "otel": (3 + 1 + 3 + 3, 2), "xray": (3 + 6, 1)}
    checkouts = {c["source"]: c for c in answer["checkouts"]}
    assert checkouts["otel"]["trace_id"] == f"{NEW_OTEL:032x}", "the newest of its two"
    assert checkouts["xray"]["trace_id"] == f"{XRAY:032x}"
    assert checkouts["xray"]["operation"] == "POST /api/v1/orders"
    assert {(r["service"], r["role"]): r["counts"] for r in checkouts["xray"]["roles"]} == {
        ("gateway", "request"): {"xray": 1}, ("gateway", "call"): {"xray": 1},
        ("orders", "request"): {"xray": 1}, ("orders", "sql"): {"xray": 6}}
    assert checkouts["xray"]["spans"] == 9 and checkouts["xray"]["services"] == [
        "gateway", "orders"]
    # The figures cannot be read or are not there: the rest of the page still is.
    assert unreadable["measured"] is None and missing["measured"] is None
    assert len(unreadable["checkouts"]) == len(missing["checkouts"]) == 2


async def test_the_page_shows_the_figures_the_checkouts_side_by_side_and_the_sources(
        explorer: tuple[FastAPI, Path], page: BrowserPage) -> None:
    app, _figures = explorer
    async with served(app) as base:
        browser = page.page
        await browser.goto(f"{base}/approaches")
        figures = browser.locator("table.approaches")
        await figures.get_by_role("rowheader", name="OpenTelemetry").wait_for()
        assert "18.3" in await figures.inner_text()  # X-Ray's checkouts per second
        assert "Test CPU" in await browser.locator("#content").inner_text()
        await page.screenshot("explorer-approaches")

        # The latest checkouts side by side: a column each, linking to its trace.
        side_by_side = browser.locator("table.approach-roles").last
        assert "6" in await side_by_side.get_by_role("row", name="orders").filter(
            has_text="SQL").inner_text()
        await side_by_side.get_by_role("link").first.wait_for()
        links = await side_by_side.get_by_role("link").evaluate_all(
            "links => links.map((a) => a.getAttribute('href'))")
        assert sorted(links) == sorted([f"/traces/{NEW_OTEL:032x}", f"/traces/{XRAY:032x}"])
        sources = browser.locator("table.approach-sources")
        assert "AWS X-Ray SDK + CloudWatch EMF" in await sources.inner_text()
        assert await browser.locator("dl.trade-offs dt").count() == 4

        await browser.get_by_role("link", name="POST /api/v1/orders").first.click()
        await browser.wait_for_url(f"{base}/traces/*")
        await browser.locator("ol.waterfall").wait_for()
    assert page.errors == []
