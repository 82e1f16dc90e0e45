"""The explorer's own CPU while the shop serves a normal load: customers browsing,
searching, viewing products, filling carts and checking out, each with a think time
between steps, for a minute — every request traced, every log and metric exported to
the explorer, as `kansoku up` runs it.

Run:  python benchmarks/explorer_load.py [--seconds 60] [--users 20] [--think 0.5]

A private stack (temporary data directory, free ports) is started and stopped. Printed:
the shop's requests per second, the spans, log records and metric points the explorer
received per second, the explorer's CPU in cores (the goal: under 0.25) and its share
of the CPU that the whole stack used in the same minute, and the problems the
explorer's detectors found — none is right for ordinary traffic (`--seconds 300` is the
lab issue's five-minute check; the exit status is 1 if any problem was found).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import private_stack, run_cli

ADDRESS = {"street": "1 Bench St", "city": "Tokyo", "state": "", "zip": "100-0001",
           "country": "JP"}
CARD = {"card_number": "4111111111111111", "expiry_month": 12, "expiry_year": 2099,
        "cvv": "123"}
SEARCHES = ("telescope", "lens", "mount", "eyepiece", "filter", "star")


async def customer(client: httpx.AsyncClient, number: int, deadline: float, think: float,
                   counts: dict[str, int]) -> None:
    """One customer: registers, then browses and sometimes buys until the deadline."""
    rng = random.Random(number)
    email = f"load-{number}-{time.time_ns()}@example.com"
    await client.post("/users", json={"name": f"Load {number}", "email": email,
                                      "password": "load-pass-1234"})
    login = await client.post("/auth/login", json={"email": email,
                                                   "password": "load-pass-1234"})
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}

    async def step(method: str, path: str, **kwargs: object) -> httpx.Response:
        answer = await client.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]
        counts["requests"] += 1
        counts["failed"] += answer.status_code >= 500
        await asyncio.sleep(rng.uniform(0, 2 * think))
        return answer

    while time.monotonic() < deadline:
        page = await step("GET", "/products", params={"limit": 12,
                                                      "offset": rng.randrange(0, 180)})
        if rng.random() < 0.3:
            await step("GET", "/products", params={"q": rng.choice(SEARCHES)})
        items = page.json().get("items", []) if page.status_code == 200 else []
        if not items:
            continue
        product = rng.choice(items)["id"]
        await step("GET", f"/products/{product}")
        if rng.random() < 0.4:
            await step("POST", "/cart/items", json={"product_id": product, "quantity": 1})
            await step("GET", "/cart")
            if rng.random() < 0.3:
                order = await step("POST", "/orders", json={
                    "items": [{"product_id": product, "quantity": 1}],
                    "shipping_address": ADDRESS})
                if order.status_code == 201:
                    await step("POST", "/payments", json={
                        "order_id": order.json()["id"], "payment_method": "credit_card",
                        "payment_details": CARD})


def component_pids(env: dict[str, str]) -> dict[str, int]:
    status = json.loads(run_cli("status", "--json", env=env).stdout)
    return {component["name"]: component["pid"] for component in status["components"]
            if component.get("pid")}


def cpu_seconds(pid: int) -> float:
    """CPU used by a component's process and its children (PostgreSQL's backends)."""
    process = psutil.Process(pid)
    total = 0.0
    for member in (process, *process.children(recursive=True)):
        try:
            times = member.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


async def run_load(base: str, users: int, seconds: float, think: float) -> dict[str, int]:
    counts = {"requests": 0, "failed": 0}
    limits = httpx.Limits(max_connections=users * 2)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(customer(client, number, deadline, think, counts)
                               for number in range(users)))
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--think", type=float, default=0.5,
                        help="mean seconds a customer waits between steps")
    args = parser.parse_args()
    with private_stack() as env:
        pids = component_pids(env)
        explorer_url = f"http://127.0.0.1:{env['KANSOKU_EXPLORER_PORT']}"
        before_stats = httpx.get(f"{explorer_url}/api/stats", timeout=30).json()
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        began = time.monotonic()
        counts = asyncio.run(run_load(
            f"http://127.0.0.1:{env['KANSOKU_GATEWAY_PORT']}/api/v1",
            args.users, args.seconds, args.think))
        elapsed = time.monotonic() - began
        used = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
        after_stats = httpx.get(f"{explorer_url}/api/stats", timeout=30).json()
        # The detectors look at a trace a few seconds after it completes, and at
        # the baselines every minute: give the last requests time to be judged.
        time.sleep(70)
        problems = httpx.get(f"{explorer_url}/api/problems", timeout=30).json()["data"]
    received = {kind: after_stats["received"].get(kind, 0) - before_stats["received"].get(kind, 0)
                for kind in after_stats["received"]}
    explorer = used.get("explorer", 0.0)
    total = sum(used.values())
    print(f"shop load: {args.users} customers, think {args.think:g} s, {elapsed:.0f} s: "
          f"{counts['requests'] / elapsed:.1f} requests/s, {counts['failed']} failed (5xx)")
    print("explorer received per second: " + ", ".join(
        f"{kind} {count / elapsed:.0f}" for kind, count in sorted(received.items())))
    print(f"explorer CPU  {explorer / elapsed:.3f} cores  (goal < 0.25)")
    print(f"explorer share of the stack's CPU  {explorer / total:.2f}  "
          f"(whole stack {total / elapsed:.2f} cores)")
    print("CPU cores by component: " + ", ".join(
        f"{name} {seconds / elapsed:.2f}" for name, seconds in
        sorted(used.items(), key=lambda item: -item[1])))
    print(f"problems found in ordinary traffic: {len(problems)} (expected 0)")
    for problem in problems:
        print(f"  {problem.get('kind')}: {problem.get('service')} {problem.get('operation')} "
              f"({problem.get('occurrences')} occurrences)")
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
