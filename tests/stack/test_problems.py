"""Problem detection on a running stack: the shop's ordinary traffic (products, product
pages, carts, checkouts, the storefront's pages) leaves the explorer's problem list
empty; the lab's N+1 and slow query, run once each through the gateway, show up within
30 s naming the lab and the operation, and their fixed twins add nothing."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import httpx
import pytest

from kansoku.kit import semconv
from tests.stack.test_up import RunningStack
from tests.support import new_customer

pytestmark = pytest.mark.stack

#: How long the ordinary traffic runs, and how many customers shop at once.
ORDINARY_SECONDS = 45
CUSTOMERS = 4
CARD = {"card_number": "4111111111111111", "expiry_month": 12, "expiry_year": 2099,
        "cvv": "123"}
ADDRESS = {"street": "1 Problem St", "city": "Osaka", "state": "", "zip": "530-0001",
           "country": "JP"}


async def shopper(gateway: str, number: int, deadline: float) -> int:
    """One customer until the deadline: lists, searches, looks at products, fills the
    cart and sometimes checks out (order, then payment). Returns the requests made."""
    rng = random.Random(number)
    email, password = await new_customer(gateway, f"Ordinary {number}")
    made = 0
    async with httpx.AsyncClient(base_url=f"{gateway}/api/v1", timeout=30) as api:
        login = await api.post("/auth/login", json={"email": email, "password": password})
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}

        async def step(method: str, path: str, **kwargs: Any) -> httpx.Response:
            nonlocal made
            answer = await api.request(method, path, headers=headers, **kwargs)
            made += 1
            assert answer.status_code < 500, f"{method} {path}: {answer.text}"
            await asyncio.sleep(rng.uniform(0.1, 0.6))
            return answer

        while time.monotonic() < deadline:
            page = await step("GET", "/products", params={
                "limit": 12, "offset": rng.randrange(0, 180)})
            if rng.random() < 0.3:
                await step("GET", "/products", params={"q": rng.choice(("lens", "mount"))})
            product = rng.choice(page.json()["items"])["id"]
            await step("GET", f"/products/{product}")
            if rng.random() < 0.5:
                await step("POST", "/cart/items", json={"product_id": product, "quantity": 1})
                await step("GET", "/cart")
                if rng.random() < 0.4:
                    order = await step("POST", "/orders", json={"shipping_address": ADDRESS})
                    if order.status_code == 201:
                        await step("POST", "/payments", json={
                            "order_id": order.json()["id"], "payment_method": "credit_card",
                            "payment_details": CARD})
                    else:
                        # Something sold out (409): like a customer, start a new cart,
                        # rather than one that grows with every failed checkout.
                        cart = await step("GET", "/cart")
                        for line in cart.json().get("items", []):
                            await step("DELETE", f"/cart/items/{line['product_id']}")
    return made


async def browsing(gateway: str, deadline: float) -> int:
    """The storefront's pages, as an anonymous visitor sees them."""
    made = 0
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as web:
        while time.monotonic() < deadline:
            for path in ("/", "/products", "/products?category=eyepieces", "/products/51",
                         "/cart", "/login"):
                answer = await web.get(path)
                assert answer.status_code < 500, f"{path}: {answer.status_code}"
                made += 1
            await asyncio.sleep(0.5)
    return made


async def detection_caught_up(explorer: str, timeout: float = 60) -> dict[str, Any]:
    """Wait until the explorer has checked every trace that arrived: none pending, and a
    check pass after the last span came in."""
    stats: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=explorer, timeout=10) as http:
        deadline = time.monotonic() + timeout
        settled_at = time.time_ns()
        while time.monotonic() < deadline:
            stats = (await http.get("/api/stats")).json()["problems"]
            if not stats["traces_pending"] and stats["last_check_ns"] > settled_at:
                return stats
            await asyncio.sleep(0.5)
    raise AssertionError(f"problem detection did not catch up: {stats}")


async def ordinary(explorer: str, found: list[dict[str, Any]], since_ns: int = 0
                   ) -> list[dict[str, Any]]:
    """Problems outside the lab (whose problems are on purpose) seen in traces that
    started at or after `since_ns` (earlier tests on the shared stack, the load run's
    big carts among them, leave their own), in traffic that is not generated: the stack's
    synthetic monitors shop every minute, and their traces are marked (baggage
    `kansoku.synthetic`, on every span)."""
    mine = [p for p in found if p["service"] != "lab" and "/lab" not in p["operation"]
            and p["last_seen_ns"] >= since_ns]
    return [p for p in mine if not await generated(explorer, p["example_trace_id"])]


async def generated(explorer: str, trace_id: str) -> bool:
    """Whether the trace is generated traffic: its spans carry `kansoku.synthetic`."""
    async with httpx.AsyncClient(base_url=explorer, timeout=10) as http:
        answer = await http.get(f"/api/traces/{trace_id}")
    if answer.status_code != 200:
        return False
    return any(tag["key"] == semconv.BAGGAGE_SYNTHETIC
               for trace in answer.json()["data"] for span in trace["spans"]
               for tag in span["tags"])


async def test_ordinary_shop_traffic_shows_no_problem(web_shop: RunningStack) -> None:
    gateway, explorer = web_shop.url("gateway"), web_shop.url("explorer")
    since_ns = time.time_ns()
    deadline = time.monotonic() + ORDINARY_SECONDS
    made = await asyncio.gather(*(shopper(gateway, number, deadline)
                                  for number in range(CUSTOMERS)),
                                browsing(gateway, deadline))
    assert sum(made) > 100
    # Late spans (the worker's, after an order) arrive after the request ended: give them
    # the grace too.
    await asyncio.sleep(2)
    stats = await detection_caught_up(explorer)
    assert stats["traces_checked"] > sum(made) // 2
    async with httpx.AsyncClient(base_url=explorer, timeout=10) as http:
        found = (await http.get("/api/problems", params={"lookback": "1h"})).json()["data"]
    assert await ordinary(explorer, found, since_ns) == [], [
        (p["kind"], p["service"], p["operation"], p["statement"] or p["route"]) for p in found]


async def run_lab(gateway: str, token: str, path: str, **parameters: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=60) as http:
        answer = await http.post(f"{gateway}/api/v1/lab/{path}",
                                 headers={"Authorization": f"Bearer {token}"},
                                 json={"parameters": parameters})
    assert answer.status_code == 200, f"{path}: {answer.status_code} {answer.text}"
    body: dict[str, Any] = answer.json()
    assert body["status"] == "success" and body["trace_id"], body
    return body


async def test_the_labs_problems_are_detected_and_their_twins_are_not(
        web_shop: RunningStack) -> None:
    gateway, explorer = web_shop.url("gateway"), web_shop.url("explorer")
    email, password = await new_customer(gateway, "Lab Rat")
    async with httpx.AsyncClient(timeout=30) as http:
        token = (await http.post(f"{gateway}/api/v1/auth/login", json={
            "email": email, "password": password})).json()["access_token"]
    started = time.monotonic()
    n_plus_one = await run_lab(gateway, token, "n-plus-one", limit=20)
    slow = await run_lab(gateway, token, "slow-query")
    assert n_plus_one["data"]["query_count"] >= 21

    async with httpx.AsyncClient(base_url=explorer, timeout=10) as http:
        wanted = {"n-plus-one-db": n_plus_one["trace_id"], "slow-db-query": slow["trace_id"]}
        found: dict[str, dict[str, Any]] = {}
        while set(found) != set(wanted):
            assert time.monotonic() - started < 30, f"detected within 30 s: only {found}"
            await asyncio.sleep(0.5)
            for kind, trace_id in wanted.items():
                mine = (await http.get("/api/problems", params={"trace_id": trace_id})
                        ).json()["data"]
                found.update((p["kind"], p) for p in mine if p["kind"] == kind)
        for kind, scenario in (("n-plus-one-db", "n-plus-one"), ("slow-db-query", "slow-query")):
            problem = found[kind]
            assert problem["service"] == "lab"
            assert problem["operation"].endswith(f"/{scenario}"), problem["operation"]
            assert problem["statement"] and problem["explanation"] and problem["fix"]
        assert found["n-plus-one-db"]["details"]["count"] >= 20
        assert found["slow-db-query"]["details"]["duration_ms"] >= 3000
        listed = (await http.get("/api/problems", params={"service": "lab"})).json()["data"]
        assert {"n-plus-one-db", "slow-db-query"} <= {p["kind"] for p in listed}

        twins = [await run_lab(gateway, token, f"{scenario}/fixed", limit=20)
                 for scenario in ("n-plus-one", "slow-query")]
        for twin in twins:
            assert twin["data"]["query_count"] <= 3
        await asyncio.sleep(1)
        await detection_caught_up(explorer)
        for twin in twins:
            assert (await http.get("/api/problems", params={"trace_id": twin["trace_id"]})
                    ).json()["data"] == [], twin["operation"]
        fixed = [p for p in (await http.get("/api/problems", params={"service": "lab"})
                             ).json()["data"] if p["operation"].endswith("/fixed")]
        assert fixed == []
