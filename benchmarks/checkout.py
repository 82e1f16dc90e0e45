"""Paid checkouts per second through the public API, telemetry on, with latency
percentiles — and, in the same run, a bare FastAPI JSON endpoint's requests per second
on this machine, for the ratio.

Run:  python benchmarks/checkout.py [--seconds 20] [--concurrency 16]

A private stack (temporary data directory, free ports) is started and stopped. Each
checkout is what a customer does: POST /api/v1/orders, then POST /api/v1/payments.
Absolute numbers on a shared 2-core machine are noisy; the ratio is the figure to
compare between runs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import free_ports, private_stack

ADDRESS = {"street": "1 Bench St", "city": "Tokyo", "state": "", "zip": "100-0001",
           "country": "JP"}
CARD = {"card_number": "4111111111111111", "expiry_month": 12, "expiry_year": 2099,
        "cvv": "123"}
BARE_APP = textwrap.dedent("""
    import sys, uvicorn
    from fastapi import FastAPI
    app = FastAPI()

    @app.get("/json")
    async def json_endpoint() -> dict[str, str]:
        return {"hello": "world"}

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
""")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def checkouts(base: str, seconds: float, concurrency: int) -> tuple[int, list[float]]:
    limits = httpx.Limits(max_connections=concurrency * 2)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
        admin_login = await client.post("/auth/login", json={
            "email": "admin@example.com", "password": "admin-pass-1234"})
        admin = {"Authorization": f"Bearer {admin_login.json()['access_token']}"}
        product = (await client.post("/products", headers=admin, json={
            "name": "Benchmark Widget", "price": "9.99", "currency": "USD",
            "inventory": 1_000_000})).json()["id"]
        tokens = []
        for number in range(concurrency):
            email = f"bench-{number}-{time.time_ns()}@example.com"
            await client.post("/users", json={"name": "Bench", "email": email,
                                              "password": "bench-pass-1234"})
            login = await client.post("/auth/login", json={"email": email,
                                                           "password": "bench-pass-1234"})
            tokens.append({"Authorization": f"Bearer {login.json()['access_token']}"})

        latencies: list[float] = []
        failures = 0
        deadline = time.monotonic() + seconds

        async def customer(headers: dict[str, str]) -> None:
            nonlocal failures
            while time.monotonic() < deadline:
                started = time.perf_counter()
                order = await client.post("/orders", headers=headers, json={
                    "items": [{"product_id": product, "quantity": 1}],
                    "shipping_address": ADDRESS})
                paid = await client.post("/payments", headers=headers, json={
                    "order_id": order.json().get("id"), "payment_method": "credit_card",
                    "payment_details": CARD}) if order.status_code == 201 else order
                if paid.status_code == 201:
                    latencies.append(time.perf_counter() - started)
                else:
                    failures += 1

        await asyncio.gather(*(customer(headers) for headers in tokens))
        return failures, latencies


async def bare_rps(port: int, seconds: float, concurrency: int) -> float:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        for _ in range(100):
            try:
                await client.get("/json")
                break
            except httpx.TransportError:
                await asyncio.sleep(0.1)
        done = 0
        deadline = time.monotonic() + seconds

        async def loop() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                await client.get("/json")
                done += 1

        await asyncio.gather(*(loop() for _ in range(concurrency)))
        return done / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with private_stack(KANSOKU_GATEWAY_TRUST_INCOMING_USER="false") as env:
        base = f"http://127.0.0.1:{env['KANSOKU_GATEWAY_PORT']}/api/v1"
        failures, latencies = asyncio.run(checkouts(base, args.seconds, args.concurrency))
    (port,) = free_ports(1)
    server = subprocess.Popen([sys.executable, "-c", BARE_APP, str(port)])
    try:
        bare = asyncio.run(bare_rps(port, args.seconds / 2, args.concurrency))
    finally:
        server.terminate()
        server.wait(10)
    rate = len(latencies) / args.seconds
    print(f"paid checkouts         {len(latencies)} in {args.seconds:g} s, {failures} failed")
    print(f"checkouts per second   {rate:.1f}  (concurrency {args.concurrency})")
    if latencies:
        print(f"latency p50 / p95 / p99  {statistics.median(latencies) * 1000:.0f} / "
              f"{percentile(latencies, 0.95) * 1000:.0f} / "
              f"{percentile(latencies, 0.99) * 1000:.0f} ms")
    print(f"bare FastAPI JSON rps  {bare:.0f}")
    print(f"ratio checkouts/s to bare rps  {rate / bare:.4f}  (one checkout is two public "
          "calls that fan out to about a dozen internal ones across six services)")


if __name__ == "__main__":
    main()
