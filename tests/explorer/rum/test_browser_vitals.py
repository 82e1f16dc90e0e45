"""Real-user monitoring in the explorer: Web Vitals at p75 per page, rated by
web-vitals' thresholds, and JavaScript errors — from the log records the storefront's
script sends (`event.name` = browser.web_vital / browser.error)."""

from __future__ import annotations

import time

import httpx
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from kansoku.explorer.app import create_app
from kansoku.explorer.rum import queries
from kansoku.explorer.settings import Settings
from tests.browser import BrowserPage, served


def _record(now: int, **attributes: str | float) -> LogRecord:
    values = [KeyValue(key=key.replace("__", "."), value=(
        AnyValue(double_value=value) if isinstance(value, float)
        else AnyValue(string_value=value))) for key, value in attributes.items()]
    return LogRecord(time_unix_nano=now, attributes=values,
                     body=AnyValue(string_value=str(attributes.get("event__name"))))


def rum_export() -> bytes:
    now = time.time_ns() - 5_000_000_000
    records = [
        # LCP on the home page: p75 of 1000, 2000, 3000, 5000 is 3500 -> needs improvement.
        *(_record(now, event__name="browser.web_vital", web_vital__name="LCP",
                  web_vital__value=value, url__path="/")
          for value in (1000.0, 2000.0, 3000.0, 5000.0)),
        _record(now, event__name="browser.web_vital", web_vital__name="CLS",
                web_vital__value=0.02, url__path="/"),
        _record(now, event__name="browser.web_vital", web_vital__name="INP",
                web_vital__value=900.0, url__path="/cart"),
        # Two product pages, one route: grouped by the template the intake stamped.
        *(_record(now, event__name="browser.web_vital", web_vital__name="LCP",
                  web_vital__value=value, url__path=path, url__template="/products/{product_id}")
          for path, value in (("/products/1", 800.0), ("/products/42", 1600.0))),
        *(_record(now, event__name="browser.error", exception__type="TypeError",
                  exception__message="x is undefined", url__path="/cart") for _ in range(3)),
    ]
    request = ExportLogsServiceRequest(resource_logs=[ResourceLogs(
        resource=Resource(attributes=[KeyValue(
            key="service.name", value=AnyValue(string_value="storefront-web"))]),
        scope_logs=[ScopeLogs(log_records=records)])])
    return bytes(request.SerializeToString())


def test_ratings_follow_the_web_vitals_thresholds() -> None:
    assert queries.rating("LCP", 2500) == "good"
    assert queries.rating("LCP", 2501) == "needs-improvement"
    assert queries.rating("LCP", 4001) == "poor"
    assert queries.rating("CLS", 0.1) == "good" and queries.rating("CLS", 0.3) == "poor"


async def test_vitals_at_p75_per_page_and_errors(page: BrowserPage) -> None:
    app = create_app(Settings(db_path=":memory:"))
    async with served(app) as base:
        async with httpx.AsyncClient(base_url=base) as http:
            assert (await http.post("/v1/logs", content=rum_export(), headers={
                "Content-Type": "application/x-protobuf"})).status_code == 200
            data = (await http.get("/api/vitals", params={"lookback": "15m"})).json()["data"]
        vitals = {(v["page"], v["name"]): v for v in data["vitals"]}
        assert vitals[("/", "LCP")]["p75"] == 3500 and vitals[("/", "LCP")]["samples"] == 4
        assert vitals[("/", "LCP")]["rating"] == "needs-improvement"
        assert vitals[("/", "CLS")]["rating"] == "good"
        assert vitals[("/cart", "INP")]["rating"] == "poor"
        product = vitals[("/products/{product_id}", "LCP")]
        assert product["samples"] == 2 and product["p75"] == 1400
        assert not any(page_path.startswith("/products/") and "{" not in page_path
                       for page_path, _ in vitals)
        assert [(e["message"], e["page"], e["count"]) for e in data["errors"]] == [
            ("x is undefined", "/cart", 3)]

        await page.page.goto(f"{base}/browser?lookback=15m")
        poor = page.page.locator("td.rating.poor")
        await poor.first.wait_for()
        assert "900 ms" in await poor.first.inner_text()
        assert await page.page.get_by_role("cell", name="x is undefined").count() == 1
        await page.screenshot("explorer-browser")
    app.state.store.close()
    assert page.errors == []
