"""Real-user monitoring in a real browser: the pages' script (static/rum.js) in Chromium,
on a small page the real gateway serves, reporting through the gateway's intake into a
real explorer — Web Vitals, a thrown error, and a key action whose browser span is the
parent of the gateway's server span."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from kansoku.kit.telemetry import Telemetry
from kansoku.services.gateway.app import create_app
from kansoku.services.gateway.settings import Settings
from kansoku.services.gateway.web.rendering import PAGE_SECURITY_HEADERS
from tests.browser import BrowserPage, served
from tests.rum import RUM_SERVICE, assert_rum_exported, explorer_in_thread
from tests.support import eventually, free_ports

#: Something a person types that must never leave the page as telemetry.
TYPED_SECRET = "4111 1111 1111 1111"


def page_html(title: str, main: str) -> str:
    """A page as the shop's templates make them: rum.js deferred."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body><header><p>kansoku test shop</p></header>
<main><h1>{title}</h1>{main}</main>
<script src="/static/rum.js" defer></script>
<script src="/test-shop/page.js" defer></script>
</body></html>"""


ORDER_FORM = """<form method="post" action="/test-shop/orders" data-rum-action="place-order">
  <input type="hidden" name="action" value="buy">
  <label for="quantity">Quantity</label>
  <input id="quantity" name="quantity" value="{quantity}">
  {error}
  <label for="note">Note for the courier</label>
  <input id="note" name="note">
  <button type="submit">Place order</button>
</form>"""

#: The test page's own script: a banner pushes the content down after load (a layout
#: shift), a button is slow and throws, and the page fetches something from the gateway.
PAGE_SCRIPT = """
addEventListener("load", () => setTimeout(() => {
  const banner = document.createElement("p");
  banner.textContent = "Free shipping this week! ".repeat(20);
  document.querySelector("main").prepend(banner);
}, 100));
document.querySelector("#break")?.addEventListener("click", () => {
  const busyUntil = performance.now() + 150;  // a slow handler: the page's INP
  while (performance.now() < busyUntil);
  throw new TypeError("the price is not a number");
});
if (document.querySelector("#break")) fetch("/test-shop/ping");
"""


def add_test_pages(app: FastAPI, received: list[dict[str, Any]]) -> None:
    """A small shop on the real gateway: a page with an order form, and the order's page.
    `received` gets each order post's headers and whether it held the typed note."""

    def page(title: str, main: str, status_code: int = 200) -> HTMLResponse:
        return HTMLResponse(page_html(title, main), status_code=status_code,
                            headers=dict(PAGE_SECURITY_HEADERS))

    async def shop(request: Request) -> Response:
        return page("Test shop", '<p>A product worth buying.</p>'
                    '<button id="break" type="button">Break something</button>'
                    + ORDER_FORM.format(quantity="2", error=""))

    async def script(request: Request) -> Response:
        return PlainTextResponse(PAGE_SCRIPT, media_type="text/javascript")

    async def ping(request: Request) -> Response:
        received.append({"path": "/test-shop/ping", **request.headers})
        return Response(status_code=204)

    async def place_order(request: Request) -> Response:
        form = await request.form()
        received.append({"path": "/test-shop/orders", **request.headers,
                         "note": form.get("note"), "action": form.get("action")})
        if form.get("quantity") != "2":
            # As the shop's pages answer a form with mistakes: the page again, with errors.
            return page("Check your order", ORDER_FORM.format(
                quantity="", error='<p id="quantity-error">Enter a quantity of 2.</p>'),
                status_code=422)
        return RedirectResponse(f"/test-shop/orders/{uuid.uuid4().hex[:8]}", status_code=303)

    async def order(order_id: str, request: Request) -> Response:
        return page("Order placed",
                    f"<p>Order {order_id} is on its way.</p>"
                    + ORDER_FORM.format(quantity="", error=""))

    app.add_api_route("/test-shop", shop, methods=["GET"])
    app.add_api_route("/test-shop/page.js", script, methods=["GET"])
    app.add_api_route("/test-shop/ping", ping, methods=["GET"])
    app.add_api_route("/test-shop/orders", place_order, methods=["POST"])
    app.add_api_route("/test-shop/orders/{order_id}", order, methods=["GET"])


@pytest.fixture
def explorer(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An explorer, and the environment that sends the intake's OTLP to it, quickly."""
    with explorer_in_thread() as url:
        for key in [key for key in os.environ if key.startswith("OTEL_")]:
            monkeypatch.delenv(key)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")
        monkeypatch.setenv("OTEL_BLRP_SCHEDULE_DELAY", "200")
        yield url


def traced_gateway(valkey_url: str, explorer: str) -> FastAPI:
    """The real gateway, its server spans exported to `explorer` as `kansoku serve` does."""
    spans = TracerProvider(resource=Resource.create({"service.name": "gateway"}))
    spans.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(
        endpoint=f"{explorer}/v1/traces")))
    (closed,) = free_ports(1)
    return create_app(Settings(catalog_url=f"http://127.0.0.1:{closed}", redis_url=valkey_url),
                      Telemetry("gateway", tracer_provider=spans,
                                meter_provider=MeterProvider()))


async def api(explorer: str, path: str, **params: Any) -> Any:
    async with httpx.AsyncClient(base_url=explorer) as client:
        return (await client.get(path, params=params)).raise_for_status().json()["data"]


async def test_vitals_errors_and_a_key_action_reach_the_explorer(
        valkey_url: str, explorer: str, page: BrowserPage) -> None:
    received: list[dict[str, Any]] = []
    app = traced_gateway(valkey_url, explorer)
    add_test_pages(app, received)
    browser = page.page
    async with served(app) as shop:
        await browser.goto(f"{shop}/test-shop", wait_until="load")
        # The banner's shift counts for CLS only if no input came just before it: click
        # once it is there.
        await browser.get_by_text("Free shipping this week!").first.wait_for()
        await browser.get_by_role("button", name="Break something").click()
        await browser.get_by_label("Note for the courier").fill(TYPED_SECRET)
        await browser.get_by_role("button", name="Place order").click()
        await browser.wait_for_url(f"{shop}/test-shop/orders/*")
        await browser.get_by_role("heading", name="Order placed").wait_for()
        order_path = browser.url.removeprefix(shop)
        await page.screenshot("rum_order_placed")

        # A form with a mistake: the answer (422, the page with the error) replaces the
        # document in place, and the script goes on measuring the new content.
        await browser.get_by_label("Quantity").fill("many")
        await browser.get_by_label("Note for the courier").fill(TYPED_SECRET)
        await browser.get_by_role("button", name="Place order").click()
        await browser.get_by_role("heading", name="Check your order").wait_for()
        assert await browser.locator("#quantity-error").inner_text() == (
            "Enter a quantity of 2.")
        assert browser.url.removeprefix(shop) == order_path
        await page.screenshot("rum_order_with_a_mistake")
        # The replaced document's form is a key action too.
        await browser.get_by_label("Quantity").fill("2")
        await browser.get_by_role("button", name="Place order").click()
        await browser.wait_for_url(lambda url: url.removeprefix(shop) != order_path)
        await browser.get_by_role("heading", name="Order placed").wait_for()
        await browser.goto("about:blank")  # leaving the page sends its last vitals

        await assert_rum_exported(explorer, ["/test-shop", order_path])

    # The key action went through fetch with a traceparent of the browser's span; the
    # form was sent whole (the server gets the note), telemetry never has it.
    orders = [r for r in received if r["path"] == "/test-shop/orders"]
    assert [o["note"] for o in orders] == [TYPED_SECRET, TYPED_SECRET, ""]
    assert all(o.get("traceparent") for o in orders), "each through fetch, with a trace"
    # A field named "action" is sent as it is (and does not confuse the script).
    assert {o["action"] for o in orders} == {"buy"}
    version, trace_id, parent_id, flags = orders[0]["traceparent"].split("-")
    assert (version, flags) == ("00", "01")

    async def linked() -> bool:
        found = await api(explorer, f"/api/traces/{trace_id}")
        return len(found[0]["spans"]) >= 3  # the post, the redirected page, the browser's

    await eventually(linked, 15, "the order's trace")
    (found,) = await api(explorer, f"/api/traces/{trace_id}")
    services = {key: process["serviceName"] for key, process in found["processes"].items()}
    (root,) = [span for span in found["spans"] if not span["references"]]
    assert (services[root["processID"]], root["operationName"], root["spanID"]) == (
        RUM_SERVICE, "place-order", parent_id)
    tags = {tag["key"]: tag["value"] for tag in root["tags"]}
    # fetch follows the 303: the status is the order page's.
    assert (tags["span.kind"], tags["http.response.status_code"], tags["url.path"]) == (
        "client", 200, "/test-shop/orders")
    children = [span for span in found["spans"] if span["references"]]
    # The post and, through fetch's redirect, the order page: both the browser span's.
    assert {services[span["processID"]] for span in children} == {"gateway"}
    assert {span["references"][0]["spanID"] for span in children} == {parent_id}
    assert len(children) >= 2

    # Other fetch calls of the page carry a traceparent too.
    (ping,) = [r for r in received if r["path"] == "/test-shop/ping"]
    assert ping["traceparent"].startswith("00-")

    vitals = await api(explorer, "/api/vitals", lookback="15m")
    by_page = {(row["page"], row["name"]): row for row in vitals["vitals"]}
    assert {"LCP", "CLS", "TTFB", "FCP"} <= {name for page_, name in by_page
                                             if page_ == "/test-shop"}
    assert by_page[("/test-shop", "CLS")]["p75"] > 0  # the banner moved the content
    assert by_page[("/test-shop", "LCP")]["rating"] == "good"
    assert by_page[("/test-shop", "INP")]["p75"] >= 150  # the slow button
    # The replaced document is a page view of its own, with the answer's TTFB.
    assert ("/test-shop/orders", "TTFB") in by_page
    (error,) = [row for row in vitals["errors"] if row["page"] == "/test-shop"]
    assert error["message"] == "the price is not a number"

    logs = await api(explorer, "/api/logs", service=RUM_SERVICE, lookback="15m", limit=1000)
    events = [(log["attributes"]["event.name"], log["attributes"].get("url.path"))
              for log in logs]
    assert ("browser.page_view", "/test-shop") in events
    assert ("browser.page_view", "/test-shop/orders") in events
    assert events.count(("browser.click", "/test-shop")) == 1
    sessions = {log["attributes"]["session.id"] for log in logs}
    assert len(sessions) == 1, "one tab, one session"
    assert TYPED_SECRET not in json.dumps(logs) + json.dumps(found)

    assert page.page_errors == ["TypeError: the price is not a number"]
    assert all("the price is not a number" in message for message in page.console_errors)


#: A page whose button runs something with the page's own script, as the lab's do: the
#: form never posts, the script fetches.
RUN_IN_PLACE = """
document.querySelector("#run").addEventListener("submit", (event) => {
  event.preventDefault();
  fetch("/test-shop/run", {method: "POST"}).then((answer) => {
    document.querySelector("#result").textContent = `ran (${answer.status})`;
  });
});
fetch("/test-shop/ping");
"""


async def test_a_request_a_key_action_sends_is_named_after_the_action(
        valkey_url: str, explorer: str, page: BrowserPage) -> None:
    """A button marked `data-rum-action` whose click the page's own script answers with
    fetch (the lab's buttons): the browser span is the action ("lab-n-plus-one"), not
    "fetch POST"; a fetch no one clicked for stays "fetch GET"."""
    received: dict[str, str] = {}
    app = traced_gateway(valkey_url, explorer)

    async def shop(request: Request) -> Response:
        return HTMLResponse(page_html("Lab", """
            <form id="run"><button type="submit" data-rum-action="lab-n-plus-one">Run
            </button></form><p id="result">not run</p>""").replace(
            "/test-shop/page.js", "/test-shop/run.js"), headers=dict(PAGE_SECURITY_HEADERS))

    async def script(request: Request) -> Response:
        return PlainTextResponse(RUN_IN_PLACE, media_type="text/javascript")

    async def answer(request: Request) -> Response:
        received[request.url.path] = request.headers["traceparent"]
        return Response(status_code=204)

    app.add_api_route("/test-shop", shop, methods=["GET"])
    app.add_api_route("/test-shop/run.js", script, methods=["GET"])
    app.add_api_route("/test-shop/run", answer, methods=["POST"])
    app.add_api_route("/test-shop/ping", answer, methods=["GET"])
    async with served(app) as shop_url:
        await page.page.goto(f"{shop_url}/test-shop", wait_until="load")
        await page.page.get_by_role("button", name="Run").click()
        await page.page.get_by_text("ran (204)").wait_for()
        await page.page.goto("about:blank")  # leaving the page sends what it measured

        async def root_of(path: str) -> dict[str, Any] | None:
            trace_id = received[path].split("-")[1]
            async with httpx.AsyncClient(base_url=explorer) as client:
                found = await client.get(f"/api/traces/{trace_id}")
            if found.status_code != 200:
                return None
            spans = found.json()["data"][0]["spans"]
            return next((span for span in spans if not span["references"]), None)

        async def both_arrived() -> bool:
            return all([await root_of("/test-shop/run"), await root_of("/test-shop/ping")])

        await eventually(both_arrived, 15, "the two browser spans")
        run, ping = await root_of("/test-shop/run"), await root_of("/test-shop/ping")
    assert run is not None and ping is not None
    run_tags = {tag["key"]: tag["value"] for tag in run["tags"]}
    assert (run["operationName"], run_tags["kansoku.rum.action"]) == (
        "lab-n-plus-one", "lab-n-plus-one")
    assert ping["operationName"] == "fetch GET"
    assert "kansoku.rum.action" not in {tag["key"] for tag in ping["tags"]}
    assert page.errors == []
