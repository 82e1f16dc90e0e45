"""Paid checkouts per second through the public API, telemetry on, with latency
percentiles and the CPU each component spends per checkout — and, in the same run, a
bare FastAPI JSON endpoint's requests per second on this machine, for the ratio.

Run:  python benchmarks/checkout.py [--seconds 20] [--concurrency 4,8,16]
                                    [--variant LABEL:VAR=VALUE[,VAR=VALUE]] …

A private stack (temporary data directory, free ports) is started and stopped. Each
checkout is what a customer does: POST /api/v1/orders, then POST /api/v1/payments.
Every concurrency given is run in turn; the figure that counts is the most paid
checkouts per second whose p99 stays within a second. CPU per checkout is each
component's processes' CPU time (PostgreSQL's backends included) over the run, divided
by the checkouts paid. `--variant` runs the same against a stack with other settings or
another checkout (`main:PYTHONPATH=/work/main/src`), started after this one.
Absolute numbers on a shared 2-core machine are noisy; compare the sets of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import free_ports, private_stack

#: The goals of issue 25 on a 2-core machine.
GOAL_CHECKOUTS_PER_SECOND = 40
GOAL_P99_SECONDS = 1.0
GOAL_CPU_MS_PER_CHECKOUT = 45

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


async def checkouts(base: str, seconds: float, concurrency: int,
                    on_start: Callable[[], None] = lambda: None) -> tuple[int, list[float]]:
    """Paid checkouts by `concurrency` customers for `seconds`: (failures, latencies).
    `on_start` is called when the customers are set up and the timed part begins."""
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
        on_start()
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


def stack_processes(env: dict[str, str]) -> dict[str, list[psutil.Process]]:
    """Every process of the running stack by component (the supervisor and the
    services' template on lines of their own), children included."""
    state = json.loads((Path(env["KANSOKU_DATA_DIR"]) / "run" / "state.json").read_text())
    supervisor = state["supervisor"]
    found = {"supervisor": [psutil.Process(supervisor["pid"])]}
    if supervisor.get("template_pid"):
        found["template"] = [psutil.Process(supervisor["template_pid"])]
    for component in state["components"]:
        if component["pid"]:
            root = psutil.Process(component["pid"])
            found[component["name"]] = [root, *root.children(recursive=True)]
    return found


def cpu_seconds(processes: dict[str, list[psutil.Process]]) -> dict[str, float]:
    spent = {}
    for name, members in processes.items():
        total = 0.0
        for process in members:
            try:
                times = process.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                pass  # a PostgreSQL backend that ended
        spent[name] = total
    return spent


def _update_with_cpu(spent: dict[str, float],
                     processes: dict[str, list[psutil.Process]]) -> None:
    spent.update(cpu_seconds(processes))


def run_set(label: str, env_changes: dict[str, str], seconds: float,
            concurrencies: list[int]) -> list[tuple[int, int, int, list[float], dict[str, float]]]:
    """Each concurrency's (concurrency, paid, failed, latencies, CPU s per component)."""
    results = []
    with private_stack(KANSOKU_GATEWAY_TRUST_INCOMING_USER="false", **env_changes) as env:
        base = f"http://127.0.0.1:{env['KANSOKU_GATEWAY_PORT']}/api/v1"
        for concurrency in concurrencies:
            processes = stack_processes(env)
            before: dict[str, float] = {}
            # Counted from when the customers are set up: their logins are not checkouts.
            begin = functools.partial(_update_with_cpu, before, processes)
            failures, latencies = asyncio.run(checkouts(base, seconds, concurrency, begin))
            # Backends that started during the run count from their start.
            processes = stack_processes(env)
            after = cpu_seconds(processes)
            spent = {name: after[name] - before.get(name, 0.0) for name in after}
            results.append((concurrency, len(latencies), failures, latencies, spent))
            p99 = percentile(latencies, 0.99) if latencies else float("nan")
            print(f"{label}: concurrency {concurrency}: {len(latencies) / seconds:.1f} paid "
                  f"checkouts/s, p99 {p99 * 1000:.0f} ms, {failures} failed", flush=True)
    return results


def report(label: str, seconds: float,
           results: list[tuple[int, int, int, list[float], dict[str, float]]]) -> float:
    """Print one set's figures; return its best checkouts/s within the p99 goal."""
    print(f"\n{label}")
    best = 0.0
    for concurrency, paid, failures, latencies, spent in results:
        rate = paid / seconds
        p50, p95, p99 = (statistics.median(latencies), percentile(latencies, 0.95),
                         percentile(latencies, 0.99)) if latencies else (0.0, 0.0, 0.0)
        if latencies and p99 <= GOAL_P99_SECONDS:
            best = max(best, rate)
        print(f"  concurrency {concurrency:>3}: {rate:5.1f} paid checkouts/s, {failures} failed, "
              f"p50/p95/p99 {p50 * 1000:.0f}/{p95 * 1000:.0f}/{p99 * 1000:.0f} ms")
        if paid:
            total = sum(spent.values()) * 1000 / paid
            shares = ", ".join(f"{name} {cpu * 1000 / paid:.1f}"
                               for name, cpu in sorted(spent.items(), key=lambda x: -x[1])
                               if cpu * 1000 / paid >= 0.05)
            print(f"    CPU per checkout {total:.1f} ms (goal <= {GOAL_CPU_MS_PER_CHECKOUT}): "
                  f"{shares}")
    print(f"  best within p99 <= {GOAL_P99_SECONDS:g} s: {best:.1f} paid checkouts/s "
          f"(goal >= {GOAL_CHECKOUTS_PER_SECOND})")
    return best


def main() -> None:
    from benchmarks._stacks import variant

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--concurrency", default="4,8,16",
                        help="comma-separated concurrencies to run in turn")
    parser.add_argument("--variant", action="append", default=[], type=variant,
                        help="LABEL:VAR=VALUE[,VAR=VALUE], measured after this checkout")
    args = parser.parse_args()
    concurrencies = [int(value) for value in args.concurrency.split(",")]
    sets = [("this", {}), *args.variant]
    results = {label: run_set(label, changes, args.seconds, concurrencies)
               for label, changes in sets}
    (port,) = free_ports(1)
    server = subprocess.Popen([sys.executable, "-c", BARE_APP, str(port)])
    try:
        bare = asyncio.run(bare_rps(port, args.seconds / 2, max(concurrencies)))
    finally:
        server.terminate()
        server.wait(10)
    best = {label: report(label, args.seconds, found) for label, found in results.items()}
    print(f"\nbare FastAPI JSON rps  {bare:.0f}")
    for label, rate in best.items():
        print(f"ratio of {label}'s best checkouts/s to bare rps  {rate / bare:.4f}  (one "
              "checkout is two public calls that fan out to about a dozen internal ones)")
    print(f"load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
