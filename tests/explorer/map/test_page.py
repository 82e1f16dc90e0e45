"""The service map in Chromium, on the shop's thirteen components and twenty-six calls:
read back from the page where every box, label and arrow was drawn, and check that no
arrow passes through a box it does not join and no two labels overlap; that the cache
reads Valkey; that an arrow opens its calls' traces; and that the page fits a phone.
Screenshots: test-artifacts/screenshots/explorer-map-*.png."""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import combinations, pairwise
from typing import Any

from playwright.async_api import expect

from tests.browser import BrowserPage

#: Where each box, label and arrow is, in the map's own coordinates (no element of it is
#: transformed, so an SVG bounding box is a position in the drawing).
GEOMETRY = """svg => {
  const box = (element) => { const b = element.getBBox(); return [b.x, b.y, b.width, b.height]; };
  const points = (d) => [...d.matchAll(/[ML] ([-\\d.]+) ([-\\d.]+)/g)].map((m) => [+m[1], +m[2]]);
  return {
    nodes: [...svg.querySelectorAll("a.node")].map((node) => ({
      id: node.dataset.id, box: box(node.querySelector("rect")),
      label: box(node.querySelector("text")), text: node.querySelector("text").textContent })),
    calls: [...svg.querySelectorAll("a.call")].map((call) => ({
      parent: call.dataset.parent, child: call.dataset.child,
      lines: [...call.querySelectorAll("path.edge")].map((path) => points(path.getAttribute("d"))),
      labels: [...call.querySelectorAll("text.edge-label")].map(box),
      text: [...call.querySelectorAll("text.edge-label tspan")].map((t) => t.textContent) })),
  };
}"""

Box = tuple[float, float, float, float]  # x, y, width, height
Point = tuple[float, float]


@dataclass(frozen=True)
class Crossing:
    what: str
    where: str


def segment_enters(start: Point, end: Point, box: Box, inset: float = 0.5) -> bool:
    """Whether the segment from `start` to `end` passes through the inside of `box`
    (shrunk by `inset`, so an arrow ending on a box's edge does not count)
    — by Liang and Barsky's clipping."""
    x, y, width, height = box
    left, top, right, bottom = x + inset, y + inset, x + width - inset, y + height - inset
    (x0, y0), (x1, y1) = start, end
    dx, dy = x1 - x0, y1 - y0
    low, high = 0.0, 1.0
    for p, q in ((-dx, x0 - left), (dx, right - x0), (-dy, y0 - top), (dy, bottom - y0)):
        if p == 0:
            if q < 0:
                return False
            continue
        t = q / p
        if p < 0:
            low = max(low, t)
        else:
            high = min(high, t)
        if low > high:
            return False
    return True


def overlap(a: Box, b: Box) -> bool:
    return (a[0] < b[0] + b[2] and b[0] < a[0] + a[2]
            and a[1] < b[1] + b[3] and b[1] < a[1] + a[3])


def crossings(geometry: dict[str, Any]) -> list[Crossing]:
    """Arrows through boxes they do not join, and labels over one another."""
    found = []
    for call in geometry["calls"]:
        joined = {call["parent"], call["child"]}
        for node in geometry["nodes"]:
            if node["id"] in joined:
                continue
            for line in call["lines"]:
                for start, end in pairwise(line):
                    if segment_enters(start, end, node["box"]):
                        found.append(Crossing(f"{call['parent']} → {call['child']}",
                                              f"through {node['id']}'s box"))
    labels = [(f"node {node['id']}", node["label"]) for node in geometry["nodes"]] + [
        (f"label of {call['parent']} → {call['child']}", box)
        for call in geometry["calls"] for box in call["labels"]]
    found.extend(Crossing(a, f"over {b}") for (a, box_a), (b, box_b) in combinations(labels, 2)
                 if overlap(box_a, box_b))
    return found


def test_the_geometry_check_sees_a_crossing() -> None:
    """The check itself can fail: an arrow through a box and two labels that overlap."""
    geometry = {"nodes": [{"id": "lab", "box": (100, 0, 80, 30), "label": (110, 5, 60, 20)}],
                "calls": [{"parent": "gateway", "child": "catalog",
                           "lines": [[(0, 15), (300, 15)]], "labels": [(150, 10, 40, 14)]}]}
    assert crossings(geometry) == [
        Crossing("gateway → catalog", "through lab's box"),
        Crossing("node lab", "over label of gateway → catalog")]
    assert not segment_enters((0, 0), (100, 0), (100, 0, 80, 30))  # ends on its edge


async def test_no_arrow_crosses_a_box_it_does_not_join_and_no_labels_overlap(
        page: BrowserPage, shop_explorer: str) -> None:
    browser = page.page
    await browser.set_viewport_size({"width": 1280, "height": 900})
    await browser.goto(f"{shop_explorer}/map?lookback=15m")
    svg = browser.locator("svg.map")
    await browser.locator("svg.map a.node").first.wait_for()
    geometry = await svg.evaluate(GEOMETRY)
    await page.screenshot("explorer-map-shop")
    assert len(geometry["nodes"]) == 13
    assert len(geometry["calls"]) == 26
    assert all(call["lines"] and call["labels"] for call in geometry["calls"])
    assert crossings(geometry) == []
    texts = {(call["parent"], call["child"]): call["text"] for call in geometry["calls"]}
    assert texts["gateway", "lab"] == ["1 call", "8.00 ms"]
    assert texts["gateway", "catalog"] == ["30 calls", "8.00 ms"]
    assert texts["orders", "payments"] == ["9 calls", "8.00 ms", "3 errors"]
    assert page.errors == []


async def test_the_cache_reads_valkey_and_says_why_its_spans_say_redis(
        page: BrowserPage, shop_explorer: str) -> None:
    browser = page.page
    await browser.goto(f"{shop_explorer}/map?lookback=15m")
    valkey = browser.locator('svg.map a.node[data-id="redis"]')
    assert await valkey.locator("text").text_content() == "Valkey"
    tooltip = await valkey.locator("title").text_content() or ""
    assert "db.system=redis" in tooltip and "Redis protocol" in tooltip
    assert await browser.locator('svg.map a.node[data-id="postgresql"] text'
                                 ).text_content() == "PostgreSQL"
    assert page.errors == []


async def test_arrows_are_drawn_by_kind_and_open_their_calls_traces(
        page: BrowserPage, shop_explorer: str) -> None:
    browser = page.page
    await browser.goto(f"{shop_explorer}/map?lookback=15m")
    call = 'svg.map a.call[data-parent="{}"][data-child="{}"]'
    stroke = "path => getComputedStyle(path).stroke"
    dashes = await browser.locator(f"{call.format('orders', 'worker')} path.edge").evaluate(
        "path => getComputedStyle(path).strokeDasharray")
    assert dashes not in ("none", "")  # through NATS
    assert await browser.locator(f"{call.format('gateway', 'catalog')} path.edge").evaluate(
        "path => getComputedStyle(path).strokeDasharray") == "none"
    failing = browser.locator(f"{call.format('orders', 'payments')} path.edge")
    assert await failing.evaluate(stroke) == "rgb(192, 54, 44)"  # --bad
    assert await browser.locator(f"{call.format('gateway', 'catalog')} path.edge").evaluate(
        stroke) != "rgb(192, 54, 44)"

    calls = browser.get_by_role("table")
    assert await calls.get_by_role("row").count() == 1 + 26
    valkey = calls.get_by_role("row").filter(has_text="cart").filter(has_text="Valkey")
    assert await valkey.get_by_role("cell").all_text_contents() == [
        "cart", "Valkey", "36", "8.00 ms", "0", "traces"]
    assert await valkey.get_by_role("link", name="traces").get_attribute("href") == (
        "/traces?service=cart&tag=db.system%3Dredis&lookback=15m")

    await browser.locator(f"{call.format('gateway', 'catalog')} text.edge-label").click()
    await browser.wait_for_url(re.compile(r"/traces\?service=gateway&tag=peer\.service%3Dcatalog"))
    await expect(browser.get_by_label("Attribute")).to_have_value("peer.service=catalog")
    found = browser.locator("ol.traces li")
    await found.first.wait_for()
    assert await found.count() == 30  # the call's traces, and only them
    assert page.errors == []


async def test_the_map_fits_a_phone_and_scrolls_in_its_box(
        page: BrowserPage, shop_explorer: str) -> None:
    browser = page.page
    await browser.set_viewport_size({"width": 390, "height": 844})
    await browser.goto(f"{shop_explorer}/map?lookback=15m")
    await browser.locator("svg.map a.node").first.wait_for()
    assert await browser.evaluate(
        "document.documentElement.scrollWidth - window.innerWidth") <= 0
    box = await browser.locator(".map-box").evaluate(
        "box => [box.clientWidth, box.scrollWidth]")
    assert box[0] <= 390 and box[1] > box[0], box  # the map keeps its size and scrolls
    await page.screenshot("explorer-map-phone", full_page=False)
    assert page.errors == []
