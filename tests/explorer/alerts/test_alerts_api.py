"""`GET /api/alerts`, `/api/alerts/history`, `/api/alerts/rules` and `/api/slos` on a
real explorer whose background evaluator runs every 0.2 s, fed over OTLP; their
OpenAPI description; and the Alerts and SLOs pages in Chromium."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kansoku.explorer.app import create_app
from kansoku.explorer.settings import Settings
from tests.browser import BrowserPage, served
from tests.explorer.problems.test_problems import PROTOBUF, TraceBuilder, export
from tests.support import serve_in_thread

RULES = """
rules:
  - name: HighErrorRate
    kind: error_rate
    window: 5m
    threshold: 0.05
    min_requests: 20
    labels: {severity: critical}
    summary: "{service} failed {value} of its requests over the last {window}."
  - name: ErrorBudgetBurn
    kind: slo_burn_rate
    pairs: [{long: 1h, short: 5m, factor: 14.4}]
slos:
  - name: checkout-availability
    description: Customers can place an order.
    service: gateway
    operations: ["POST /api/v1/orders"]
    kind: availability
    objective: 99
  - name: product-page-latency
    service: gateway
    operations: ["GET /api/v1/products/{product_id}"]
    kind: latency
    threshold: 500ms
    objective: 95
  - name: paid-checkout
    service: orders
    kind: journey
    operations: ["POST /orders/{order_id}/payment"]
    steps: ["POST /orders"]
    objective: 99
"""


def failing_checkouts(count: int) -> list[TraceBuilder]:
    traces = []
    for index in range(count):
        trace = TraceBuilder()
        root = trace.request("/api/v1/orders", service="gateway", method="POST", ms=40,
                             status=500 if index % 2 else 201)
        trace.request("/payments", service="payments", method="POST", parent=root, at=5,
                      ms=20, status=500)
        traces.append(trace)
    return traces


def settings(tmp_path: Path, check_seconds: float = 0.2) -> Settings:
    path = tmp_path / "alerts.yaml"
    path.write_text(RULES)
    return Settings(db_path=":memory:", alerts_file=str(path),
                    alerts_check_seconds=check_seconds, problems_enabled=False,
                    alerts_smtp_port=1)


def wait_for(http: httpx.Client, path: str, check: Any, timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        data = http.get(path).json()["data"]
        if check(data):
            return data
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never matched: {data}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def explorer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    app = create_app(settings(tmp_path_factory.mktemp("alerts")))
    with serve_in_thread(app, lifespan="on") as base, \
            httpx.Client(base_url=base, timeout=10) as http:
        answer = http.post("/v1/traces", content=export(*failing_checkouts(40)),
                           headers=PROTOBUF)
        assert answer.status_code == 200
        yield http


def test_firing_alerts_are_listed_with_name_state_service_value_since(
        explorer: httpx.Client) -> None:
    found = wait_for(explorer, "/api/alerts",
                     lambda data: {(a["name"], a["service"]) for a in data} >= {
                         ("HighErrorRate", "payments"), ("HighErrorRate", "gateway"),
                         ("ErrorBudgetBurn", "gateway")})
    by_key = {(a["name"], a["service"]): a for a in found}
    payments = by_key[("HighErrorRate", "payments")]
    assert payments["state"] == "firing"
    assert payments["value"] == 1.0 and payments["value_text"] == "100.0 %"
    assert payments["summary"] == "payments failed 100.0 % of its requests over the last 5m."
    assert time.time_ns() - payments["since_ns"] < 60 * 10**9
    assert payments["labels"] == {"severity": "critical", "service": "payments"}
    assert payments["links"]["traces"].startswith("/traces?service=payments")
    burn = by_key[("ErrorBudgetBurn", "gateway")]
    assert burn["labels"]["slo"] == "checkout-availability"
    assert burn["labels"]["window"] == "1h/5m" and burn["value"] == pytest.approx(50.0)
    assert [a["state"] for a in found] == sorted(
        (a["state"] for a in found), key=["firing", "pending", "resolved"].index)
    assert explorer.get("/api/alerts", params={"service": "payments"}).json()["data"] == [
        payments]
    assert explorer.get("/api/alerts", params={"state": "pending"}).json()["data"] == []


def test_the_history_lists_the_changes(explorer: httpx.Client) -> None:
    history = wait_for(explorer, "/api/alerts/history?rule=HighErrorRate",
                       lambda data: len(data) >= 2)
    assert {(h["labels"]["service"], h["from_state"], h["to_state"]) for h in history} >= {
        ("payments", "inactive", "firing"), ("gateway", "inactive", "firing")}
    answer = explorer.get("/api/alerts/history", params={"lookback": "later"})
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"


def test_slos_report_budget_and_burn_rates(explorer: httpx.Client) -> None:
    slos = {s["name"]: s for s in explorer.get("/api/slos", params={"lookback": "1h"}
                                               ).json()["data"]}
    checkout = slos["checkout-availability"]
    assert checkout["requests"] == 40 and checkout["bad"] == 20
    assert checkout["sli_percent"] == pytest.approx(50.0)
    assert checkout["budget_remaining"] == pytest.approx(1 - 0.5 / 0.01)
    assert {b["window"]: b["burn_rate"] for b in checkout["burn_rates"]}["5m"] == (
        pytest.approx(50.0))
    (step,) = [p for p in checkout["series"] if p["requests"]]
    assert step["bad"] == 20 and step["burn_rate"] == pytest.approx(50.0)
    latency = slos["product-page-latency"]
    assert latency["requests"] == 0 and latency["budget_remaining"] is None
    assert latency["threshold_ms"] == 500


def test_a_rules_files_own_words_stay_as_written_for_a_japanese_reader(
        explorer: httpx.Client) -> None:
    """Its summaries and SLO descriptions are its author's; what kansoku says around
    them (a rule's condition) is in the reader's language."""
    japanese = {"Accept-Language": "ja"}
    wait_for(explorer, "/api/alerts?service=payments", lambda data: len(data) == 1)
    (payments,) = explorer.get("/api/alerts", params={"service": "payments"},
                               headers=japanese).json()["data"]
    assert payments["summary"] == "payments failed 100.0 % of its requests over the last 5m."
    slos = explorer.get("/api/slos", headers=japanese).json()["data"]
    assert slos[0]["description"] == "Customers can place an order."
    rules = explorer.get("/api/alerts/rules", headers=japanese).json()["data"]
    assert rules["packaged"] is False
    assert rules["overview"][0]["condition"].startswith("サービスごとに、5m の間に")


def test_the_rules_in_use_and_the_openapi_document(explorer: httpx.Client) -> None:
    rules = explorer.get("/api/alerts/rules").json()["data"]
    assert rules["source"].endswith("alerts.yaml") and rules["load_error"] is None
    assert [r["name"] for r in rules["rules"]] == ["HighErrorRate", "ErrorBudgetBurn"]
    # Every rule with its state now and its condition in words.
    listed = wait_for(explorer, "/api/alerts/rules", lambda data: all(
        rule["state"] == "firing" for rule in data["overview"]))["overview"]
    errors, burning = listed
    assert (errors["name"], errors["kind"], errors["severity"]) == (
        "HighErrorRate", "error_rate", "critical")
    assert errors["firing"] >= 2 and errors["pending"] == 0
    assert errors["condition"] == (
        "More than 5.0 % of a service's requests failed (error status or HTTP 5xx) over 5m, "
        "with at least 20 requests and 5 failures.")
    assert errors["source"] == rules["source"] and errors["error"] is None
    assert burning["condition"] == (
        "The error budget of checkout-availability, product-page-latency, paid-checkout "
        "burning at least "
        "14.4x over 1h and 5m (critical), with at least 20 requests in the short window.")
    document = explorer.get("/openapi.json").json()
    assert {"/api/alerts", "/api/alerts/history", "/api/alerts/rules", "/api/slos"} <= set(
        document["paths"])
    alert = document["components"]["schemas"]["Alert"]
    assert {"name", "state", "service", "value", "since_ns", "labels", "summary",
            "links"} <= set(alert["properties"])
    assert {"budget_remaining", "burn_rates", "series"} <= set(
        document["components"]["schemas"]["Slo"]["properties"])
    assert explorer.get("/api/alerts", params={"state": "asleep"}).status_code == 422


async def test_the_alerts_and_slos_pages(page: BrowserPage, tmp_path: Path) -> None:
    # The test evaluates once itself; the background loop stays out of its way.
    app = create_app(settings(tmp_path, check_seconds=3600))
    async with served(app) as base:
        async with httpx.AsyncClient(base_url=base) as http:
            assert (await http.post("/v1/traces", content=export(*failing_checkouts(40)),
                                    headers=PROTOBUF)).status_code == 200
        evaluator = app.state.alerts
        evaluator.save(evaluator.evaluate())
        browser = page.page

        await browser.goto(f"{base}/alerts")
        card = browser.get_by_role("article", name="HighErrorRate firing").first
        await card.wait_for()
        texts = await browser.locator("article.alert .summary").all_inner_texts()
        assert "payments failed 100.0 % of its requests over the last 5m." in texts
        await browser.get_by_role("link", name="traces").first.wait_for()
        assert await browser.get_by_role("cell", name="HighErrorRate").count() >= 2
        # Every rule listed with its state and condition.
        assert await browser.get_by_role("row", name="Rule HighErrorRate firing").count() == 1
        burn_row = browser.get_by_role("row", name="Rule ErrorBudgetBurn firing")
        assert "burning at least 14.4x over 1h and 5m" in await burn_row.inner_text()
        await page.screenshot("explorer-alerts")

        # In Japanese: the states in words of the reader's language, the rule's own
        # summary as its file wrote it.
        await browser.goto(f"{base}/language/ja?next=/alerts")
        card = browser.get_by_role("article", name="HighErrorRate 発火中").first
        await card.wait_for()
        assert "発火中" in await card.locator(".state").inner_text()
        assert "firing" not in (await browser.locator("#content").inner_text()).lower()
        texts = await browser.locator("article.alert .summary").all_inner_texts()
        assert "payments failed 100.0 % of its requests over the last 5m." in texts
        await browser.goto(f"{base}/language/en?next=/slos")

        await browser.goto(f"{base}/slos")
        checkout = browser.get_by_role("article", name="SLO checkout-availability")
        await checkout.wait_for()
        assert "-4900.0 % of the error budget left" in await checkout.inner_text()
        assert await checkout.get_by_role("img", name="Burn rate per step (1 = on budget)"
                                          ).count() == 1
        journey = browser.get_by_role("article", name="SLO paid-checkout")
        journey_text = await journey.inner_text()
        assert "99 % of journeys end with a 2xx at their last step over 30d: " \
               "POST /orders/{order_id}/payment; a failure (5xx) of POST /orders counts as " \
               "a bad journey" in journey_text
        await page.screenshot("explorer-slos")
    app.state.store.close()
    assert page.errors == []
