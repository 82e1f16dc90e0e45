"""The Problems page and the marks on the waterfall, in Chromium: a detected N+1 is
listed with its explanation and fix, links to its example trace (whose repeated queries
are marked, with the explanation) and to its service; names sent by anyone stay text."""

from __future__ import annotations

import asyncio
import time

import httpx

from kansoku.explorer.app import create_app
from kansoku.kit import semconv
from tests.browser import BrowserPage, served
from tests.explorer.problems.test_problems import (
    PROTOBUF,
    TraceBuilder,
    export,
    n_plus_one,
    quick_settings,
)

HOSTILE = '<img src=x onerror="alert(1)">'


async def test_problems_page_lists_links_and_marks_the_waterfall(page: BrowserPage) -> None:
    app = create_app(quick_settings())
    trace = n_plus_one(HOSTILE)
    async with served(app) as base:
        async with httpx.AsyncClient(base_url=base) as http:
            assert (await http.post("/v1/traces", content=export(trace), headers=PROTOBUF)
                    ).status_code == 200
            deadline = time.monotonic() + 10
            while not (await http.get("/api/problems")).json()["data"]:
                assert time.monotonic() < deadline, "the N+1 was not detected"
                await asyncio.sleep(0.1)
        browser = page.page

        await browser.goto(f"{base}/problems")
        card = browser.get_by_role("article", name=f"N+1 queries: {HOSTILE} GET /authors")
        await card.wait_for()
        text = await card.inner_text()
        assert "ran the same query 6 times" in text and "Fix:" in text
        # Its state and what clears it.
        assert "Ongoing" in text and "Clears when no new trace shows it for 60 s" in text
        assert f"N+1 queries in {HOSTILE} GET /authors" in text
        assert await card.locator("pre.sql").inner_text() == (
            "SELECT * FROM books WHERE author_id = ?")
        assert await browser.locator("nav a[aria-current=page]").inner_text() == "Problems"
        await page.screenshot("explorer-problems")

        # Filtering by kind: nothing of another kind.
        await browser.get_by_label("Kind").select_option("slow-db-query")
        await browser.get_by_role("button", name="Show").click()
        await browser.get_by_text("No problems detected").wait_for()
        assert "kind=slow-db-query" in browser.url

        await browser.goto(f"{base}/problems")
        await card.get_by_role("link", name="Example trace").click()
        await browser.wait_for_url(f"{base}/traces/{trace.id}")
        summary = browser.get_by_role("region", name="Problems in this trace")
        await summary.wait_for()
        assert "N+1 queries" in await summary.inner_text()
        flagged = browser.locator("li.span.problem")
        assert await flagged.count() == 6
        assert "⚠ N+1 queries" in await flagged.first.inner_text()
        await flagged.first.get_by_role("button").click()
        note = flagged.first.locator(".problem-note")
        assert "ran the same query 6 times" in await note.inner_text()
        await page.screenshot("explorer-trace-problems")

        await browser.goto(f"{base}/problems")
        await card.get_by_role("link", name=HOSTILE).first.click()
        await browser.wait_for_url(f"{base}/services/*")
        await browser.get_by_role("link", name="its problems").wait_for()
    assert page.errors == []


async def test_a_fault_flag_problem_names_the_flag_and_what_clears_it(page: BrowserPage
                                                                     ) -> None:
    app = create_app(quick_settings())
    charges = []
    for number in range(4):
        trace = TraceBuilder()
        trace.span("POST /charges", service="payments", ms=30, error=number % 2 == 0,
                   attributes={"http.route": "/charges",
                               "http.response.status_code": 500 if number % 2 == 0 else 201,
                               **({semconv.FEATURE_FLAG_KEY: "paymentFailure",
                                   semconv.FEATURE_FLAG_VARIANT: "50%"}
                                  if number % 2 == 0 else {})})
        charges.append(trace)
    async with served(app) as base:
        async with httpx.AsyncClient(base_url=base) as http:
            assert (await http.post("/v1/traces", content=export(*charges), headers=PROTOBUF)
                    ).status_code == 200
            deadline = time.monotonic() + 10
            while not (await http.get("/api/problems", params={"kind": "fault-flag"})
                       ).json()["data"]:
                assert time.monotonic() < deadline, "the flag was not named"
                await asyncio.sleep(0.1)
        browser = page.page
        await browser.goto(f"{base}/problems")
        card = browser.get_by_role("article", name="Fault flag at work: payments POST /charges")
        await card.wait_for()
        text = await card.inner_text()
        assert "fault flag paymentFailure=50% in payments POST /charges: 2 of 2 marked " \
               "spans failed, 0 of the 2 others" in text
        assert "Ongoing" in text and "Clears when no span has carried the flag" in text
        assert "kansoku flags set paymentFailure off" in text
        await page.screenshot("explorer-problems-flag")
    assert page.errors == []
