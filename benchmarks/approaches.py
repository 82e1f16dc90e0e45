"""The instrumentation approaches side by side: the same checkouts under OpenTelemetry,
the AWS X-Ray SDK + EMF, the New Relic agent and no instrumentation, in alternating
rounds, printed as Markdown tables (docs/approaches.md) and, with `--write`, kept for the
explorer's Approaches page.

Run:  python benchmarks/approaches.py [--seconds 12] [--rounds 3] [--concurrency 6]
                                      [--early 10] [--approach otel --approach xray …]
                                      [--write]

One PostgreSQL and one Valkey (from the project's wheels, temporary directory, free
ports; migrated and seeded once by `kansoku migrate`) serve one set of the eight
services a checkout passes through — identity, catalog, inventory, cart, payments,
orders, worker, gateway, each `kansoku serve NAME` — per approach
(`KANSOKU_INSTRUMENTATION`). Each set has a database of its own (a copy of the migrated
one), a Valkey database of its own and a NATS of its own, so one set's events and
carts never reach another's services. Each instrumented set reports to an explorer of
its own (in memory, problem detection and alerts off), as it would to its backend: OTLP
for `otel` (every request sampled), the X-Ray and EMF intakes for `xray`, the New Relic
collector endpoint for `newrelic`.

What is measured, in this order:

1. **Early requests untraced**: right after a set is ready, `--early` product pages,
   each a product of its own; afterwards its explorer is asked which of those paths
   it holds a gateway span of (the New Relic agent, as shipped, records nothing before
   it has connected).
2. **The rounds**: `--concurrency` customers per set each check out again and again —
   log in, add a product to the cart, place the order, pay it — for `--seconds`, one set
   after the other, each round starting one set later, so the drifts of a shared
   machine hit all alike. Paid checkouts per second; CPU of each service per checkout;
   each checkout's latency, start to paid (p50, p99, and what each approach adds to the
   uninstrumented one's); after the last round each service's memory (PSS); every span
   its explorer took during the rounds.
3. **One checkout**, alone on each set: its traces as the explorer holds them, counted
   (spans per checkout) and sorted by service and role (a request handled, a call, an
   SQL statement, a Valkey command, an event, an internal step) — what one approach
   sees that another misses; and the share of the signal matrix's cells for the eight
   services (tests/stack/signal_matrix.py) those traces, their log records and the
   run's metrics fill, each attribute looked for under the name the approach gives it.
4. **Lines of wiring code**: code lines (not blank, comments or docstrings) of the
   modules that wire each approach (`WIRING`).
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import json
import os
import platform
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.stack.signal_matrix import MATRIX, Evidence, share
from tests.support import free_ports

from benchmarks._stacks import (
    Processes,
    cpu_seconds,
    load_average,
    migrate,
    pss_mib,
    service_environment,
    services_ready,
    start_infrastructure,
    start_nats,
    wait_until,
)
from kansoku import topology
from kansoku.explorer.approaches.models import (
    MEASURED_FILE,
    Machine,
    MatrixShare,
    Measured,
    MeasuredApproach,
    RoleCount,
    span_role,
)
from kansoku.kit import semconv
from kansoku.kit.approaches import Instrumentation
from kansoku.loadgen import shop

#: The services a checkout passes through, in the order they are started (the gateway
#: last: it calls the others).
CHECKOUT_SERVICES = ("identity", "catalog", "inventory", "cart", "payments", "orders",
                     "worker", "gateway")

#: The modules that wire each approach into a service, below src/kansoku/. Not counted:
#: the kit's request middleware (kit/middleware.py: the request id, the access log, the
#: last-resort 500, and OpenTelemetry's server span, which every approach runs), the
#: approaches' common hooks (kit/approaches/__init__.py) and what lets approaches mix
#: in one shop (kit/approaches/propagation.py).
WIRING: dict[Instrumentation, tuple[str, ...]] = {
    Instrumentation.OTEL: ("kit/telemetry.py", "kit/otlp_json.py", "kit/db_telemetry.py",
                           "kit/redis_telemetry.py"),
    Instrumentation.XRAY: ("kit/approaches/xray.py", "kit/approaches/measurements.py"),
    Instrumentation.NEWRELIC: ("kit/approaches/newrelic.py",
                               "kit/approaches/measurements.py"),
    Instrumentation.NONE: (),
}
SOURCE_ROOT = Path(topology.__file__).parent

#: How long after a set's last request its agent is given to send what it holds (New
#: Relic harvests spans every 5 s; a NATS event reaches the worker in a moment).
SETTLE_SECONDS = 8.0
#: The New Relic agent's harvest cycle for spans, as the explorer asks for it.
HARVEST_SECONDS = 5.0
#: The stock of the product every checkout buys (the most a new product may start
#: with): never sold out in a run.
STOCK = 1_000_000
API = shop.API


def code_lines(path: Path) -> int:
    """Lines of `path` that are code: not blank, not a comment, not part of a docstring."""
    source = path.read_text()
    docstrings: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str) and first.end_lineno):
                docstrings.update(range(first.lineno, first.end_lineno + 1))
    return sum(1 for number, line in enumerate(source.splitlines(), start=1)
               if line.strip() and not line.strip().startswith("#")
               and number not in docstrings)


def wiring_lines(approach: Instrumentation) -> dict[str, int]:
    return {module: code_lines(SOURCE_ROOT / module) for module in WIRING[approach]}


# --- The sets ----------------------------------------------------------------------------

@dataclass
class Customer:
    email: str
    password: str


@dataclass
class ApproachSet:
    """One approach's services, its explorer, and what was measured of it."""

    approach: Instrumentation
    env: dict[str, str]
    explorer: str | None = None
    processes: dict[str, psutil.Process] = field(default_factory=dict)
    product_id: int = 0
    customers: list[Customer] = field(default_factory=list)
    #: The customer of the one checkout measured alone.
    lone_customer: Customer | None = None
    rates: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    paid: int = 0
    not_paid: int = 0
    cpu: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    memory: dict[str, float] = field(default_factory=dict)
    spans_during_rounds: int | None = None
    early_window_us: tuple[int, int] = (0, 0)
    early_paths: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"{self.env[topology.url_variable('gateway')]}{API}"


def explorer_environment(shared: dict[str, str]) -> tuple[dict[str, str], int]:
    """An explorer of its own, in memory, on free ports: its environment, its API port."""
    api, otlp, xray, emf, newrelic = free_ports(5)
    env = without_vendor_variables(service_environment(shared, {}))
    env.update({
        "KANSOKU_EXPLORER_PORT": str(api), "KANSOKU_EXPLORER_OTLP_PORT": str(otlp),
        "KANSOKU_EXPLORER_XRAY_PORT": str(xray), "KANSOKU_EXPLORER_EMF_PORT": str(emf),
        "KANSOKU_EXPLORER_NEWRELIC_PORT": str(newrelic),
        "KANSOKU_EXPLORER_DB_PATH": ":memory:",
        "KANSOKU_EXPLORER_PROBLEMS_ENABLED": "false",
        "KANSOKU_EXPLORER_ALERTS_ENABLED": "false",
        "OTEL_SDK_DISABLED": "true",
    })
    return env, api


def approach_environment(approach: Instrumentation, explorer_env: dict[str, str] | None
                         ) -> dict[str, str]:
    """The variables that put a set of services on `approach`, reporting to the explorer
    `explorer_env` describes."""
    env = {"KANSOKU_INSTRUMENTATION": approach.value}
    if explorer_env is None:
        return env
    port = {name: explorer_env[f"KANSOKU_EXPLORER_{name.upper()}_PORT"]
            for name in ("otlp", "xray", "emf", "newrelic")}
    match approach:
        case Instrumentation.OTEL:
            env.update({"OTEL_TRACES_SAMPLER": "always_on",
                        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port['otlp']}"})
        case Instrumentation.XRAY:
            env.update({"AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{port['xray']}",
                        "AWS_EMF_AGENT_ENDPOINT": f"udp://127.0.0.1:{port['emf']}"})
        case Instrumentation.NEWRELIC:
            env.update({"NEW_RELIC_HOST": "127.0.0.1", "NEW_RELIC_PORT": port["newrelic"]})
        case Instrumentation.NONE:
            pass
    return env


def without_vendor_variables(env: dict[str, str]) -> dict[str, str]:
    """The environment minus any AWS or New Relic setting of the shell running this."""
    return {key: value for key, value in env.items()
            if not key.startswith(("AWS_", "NEW_RELIC_"))}


async def copy_database(database_url: str, name: str) -> str:
    """A copy of the migrated database under `name` (PostgreSQL copies its template's
    files: much faster than migrating and seeding again); its URL."""
    template = database_url.rsplit("/", 1)
    connection = await asyncpg.connect(f"{template[0]}/postgres")
    try:
        # CREATE DATABASE takes no parameters; both names are this script's own.
        await connection.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template[1]}"')
    finally:
        await connection.close()
    return f"{template[0]}/{name}"


async def first_products(database_url: str, count: int) -> list[int]:
    """The ids of `count` demo products, read from the database: asking the shop would
    be a request, and the first requests after start are what is measured."""
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch("SELECT id FROM catalog.products ORDER BY id LIMIT $1",
                                      count)
    finally:
        await connection.close()
    return [row["id"] for row in rows]


# --- Traffic ------------------------------------------------------------------------------

async def early_requests(sets: list[ApproachSet], product_ids: list[int]) -> None:
    """The first requests each instrumented set serves: a product page each, one after
    the other."""
    async with httpx.AsyncClient(timeout=30) as client:
        for measured in sets:
            if measured.explorer is None:
                continue
            measured.early_paths = [f"{API}/products/{product}" for product in product_ids]
            started = time.time_ns() // 1000
            for path in measured.early_paths:
                await client.get(f"{measured.base.removesuffix(API)}{path}")
            measured.early_window_us = (started, time.time_ns() // 1000 + 1000)


async def prepare(measured: ApproachSet, customers: int) -> None:
    """A product with stock that never runs out, and customers with accounts."""
    admin_email, admin_password = shop.demo_admin()
    async with httpx.AsyncClient(base_url=measured.base, timeout=60) as client:
        login = await client.post("/auth/login", json={"email": admin_email,
                                                       "password": admin_password})
        login.raise_for_status()
        admin = {"Authorization": f"Bearer {login.json()['access_token']}"}
        created = await client.post("/products", headers=admin, json={
            "name": f"Approaches benchmark lens {uuid.uuid4().hex[:6]}", "price": "9.99",
            "currency": "USD", "inventory": STOCK})
        if created.status_code != 201:
            raise RuntimeError(f"creating the product on {measured.approach}: "
                               f"{created.status_code} {created.text[:500]}")
        measured.product_id = int(created.json()["id"])
        for _ in range(customers + 1):
            account = shop.new_account(shop.LOAD)
            (await client.post("/users", json=account)).raise_for_status()
            measured.customers.append(Customer(account["email"], account["password"]))
        measured.lone_customer = measured.customers.pop()


async def checkout(client: httpx.AsyncClient, customer: Customer, product_id: int) -> bool:
    """One checkout as a customer makes it through the API: log in, add to the cart,
    place the order (from the cart), pay it. Whether it was paid."""
    login = await client.post("/auth/login", json={"email": customer.email,
                                                   "password": customer.password})
    if login.status_code != 200:
        return False
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    added = await client.post("/cart/items", headers=headers,
                              json={"product_id": product_id, "quantity": 1})
    if added.status_code not in (200, 201):
        return False
    order = await client.post("/orders", headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
                              json={"shipping_address": shop.SHIPPING_ADDRESS})
    if order.status_code != 201:
        return False
    paid = await client.post("/payments", headers=headers, json={
        "order_id": order.json()["id"], "payment_method": "credit_card",
        "payment_details": shop.PAYING_CARD})
    return paid.status_code == 201


async def checkouts(measured: ApproachSet, seconds: float) -> tuple[int, int, list[float]]:
    """Every customer of the set checking out again and again for `seconds`: (paid,
    not paid, each paid checkout's seconds)."""
    limits = httpx.Limits(max_connections=len(measured.customers) * 2)
    paid, failed = 0, 0
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=measured.base, timeout=30, limits=limits) as client:

        async def customer(who: Customer) -> None:
            nonlocal paid, failed
            while time.monotonic() < deadline:
                started = time.perf_counter()
                if await checkout(client, who, measured.product_id):
                    paid += 1
                    latencies.append(time.perf_counter() - started)
                else:
                    failed += 1

        await asyncio.gather(*(customer(who) for who in measured.customers))
    return paid, failed, latencies


# --- Asking the explorers ------------------------------------------------------------------

def spans_received(explorer: str) -> int:
    stats = httpx.get(f"{explorer}/api/stats", timeout=60).json()
    return int(stats["received"]["spans"])


async def untraced_early(measured: ApproachSet) -> int:
    """How many of the early requests left no gateway span in the set's explorer."""
    start, end = measured.early_window_us
    missing = 0
    async with httpx.AsyncClient(base_url=measured.explorer or "", timeout=30) as explorer:
        for path in measured.early_paths:
            found = (await explorer.get("/api/traces", params={
                "service": "gateway", "tags": json.dumps({semconv.URL_PATH: path}),
                "start": start, "end": end, "limit": 5})).raise_for_status().json()["data"]
            missing += not found
    return missing


@dataclass
class LoneCheckout:
    """One checkout alone on a set, as its explorer holds it."""

    spans: list[dict[str, Any]]
    evidence: Evidence


async def lone_checkout(measured: ApproachSet) -> LoneCheckout:
    """One checkout with nothing else running on the set, and everything its explorer
    took of it: the traces the gateway is part of in its time window, with their log
    records, and the run's metrics (for the signal matrix)."""
    assert measured.explorer is not None and measured.lone_customer is not None
    who = measured.lone_customer
    async with httpx.AsyncClient(base_url=measured.base, timeout=30) as client:
        login = await client.post("/auth/login", json={"email": who.email,
                                                       "password": who.password})
        token = {"Authorization": f"Bearer {login.json()['access_token']}"}
        customer_id = str((await client.get("/users/me", headers=token)).json()["id"])
        await asyncio.sleep(1)  # the login's own spans stay out of the window
        start = time.time_ns() // 1000
        if not await checkout(client, who, measured.product_id):
            raise RuntimeError(f"the lone checkout on {measured.approach} was not paid")
        end = time.time_ns() // 1000 + 500_000
    await asyncio.sleep(SETTLE_SECONDS)
    evidence = Evidence(customer_id, approach=measured.approach)
    async with httpx.AsyncClient(base_url=measured.explorer, timeout=60) as explorer:

        async def traces() -> dict[str, int]:
            found = (await explorer.get("/api/traces", params={
                "service": "gateway", "start": start, "end": end, "limit": 50}
            )).raise_for_status().json()["data"]
            return {trace["traceID"]: len(trace["spans"]) for trace in found}

        # Until two looks a harvest apart agree: an agent may send a checkout's spans in
        # more than one harvest, and late.
        seen, deadline = await traces(), time.monotonic() + 45
        while time.monotonic() < deadline:
            await asyncio.sleep(HARVEST_SECONDS)
            now = await traces()
            if now and now == seen:
                break
            seen = now
        for trace_id in sorted(seen):
            whole = (await explorer.get(f"/api/spans/{trace_id}")).raise_for_status().json()
            evidence.spans += whole["data"]["spans"]
            evidence.records += [
                {"trace_id": trace_id, **({"span_id": record["span_id"]}
                                          if record["span_id"] else {}),
                 **record["attributes"], "service": record["service"]}
                for record in whole["data"]["logs"]]
        for metric in (await explorer.get("/api/metrics", params={"lookback": "1h"})
                       ).raise_for_status().json()["data"]:
            evidence.metric_senders.setdefault(metric["name"], set()).update(metric["services"])
        for service in CHECKOUT_SERVICES:
            for rule in MATRIX[service].metrics:
                for attribute in rule.attributes:
                    points = (await explorer.get("/api/metrics/series", params={
                        "name": rule.name, "service": service, "by": attribute,
                        "lookback": "1h"})).raise_for_status().json()["data"]
                    if any(point["attribute"] for point in points):
                        evidence.metric_attributes.setdefault(service, {}).setdefault(
                            rule.name, set()).add(attribute)
    return LoneCheckout(evidence.spans, evidence)


def roles(spans: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    """Spans by (service, role)."""
    counted: dict[tuple[str, str], int] = defaultdict(int)
    for span in spans:
        counted[(span["service"], span_role(span["kind"], span["db_system"]))] += 1
    return counted


# --- The run ------------------------------------------------------------------------------

def percentile(values: list[float], share_: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share_ * len(ordered)))] if ordered else 0.0


def machine() -> Machine:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return Machine(cpu=cpu, cores=os.cpu_count() or 1,
                   memory_gib=round(psutil.virtual_memory().total / 2**30, 1),
                   system=f"{platform.system()} {platform.release()}",
                   python=platform.python_version())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12, help="per round and approach")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=6, help="customers per set")
    parser.add_argument("--warmup", type=float, default=4, help="seconds, each set")
    parser.add_argument("--early", type=int, default=10,
                        help="first requests after start checked for a trace")
    parser.add_argument("--approach", action="append", type=Instrumentation,
                        choices=list(Instrumentation),
                        help="measure only these (repeatable; default: all four)")
    parser.add_argument("--write", action="store_true",
                        help=f"keep the figures for the explorer's Approaches page "
                             f"({MEASURED_FILE.relative_to(SOURCE_ROOT.parent.parent)})")
    args = parser.parse_args()
    if args.rounds < 1 or args.seconds <= 0 or args.concurrency < 1:
        parser.error("--rounds, --seconds and --concurrency must be positive")
    approaches: list[Instrumentation] = list(dict.fromkeys(args.approach or Instrumentation))
    if Instrumentation.NONE not in approaches:
        approaches.append(Instrumentation.NONE)  # the baseline every ratio divides by
    load_before = list(os.getloadavg())
    print(f"load average at the start: {load_average()}", flush=True)

    with tempfile.TemporaryDirectory(prefix="kansoku-approaches-") as temporary:
        root = Path(temporary)
        root.chmod(0o755)  # PostgreSQL may run as nobody
        processes = Processes(root)
        try:
            shared = start_infrastructure(processes)
            shared["KANSOKU_SERVICE_SECRET"] = secrets.token_hex(32)
            migrate(shared)
            product_ids = asyncio.run(first_products(shared["KANSOKU_DATABASE_URL"],
                                                     args.early))
            sets = start_sets(processes, shared, approaches)
            asyncio.run(services_ready({s.approach.value: s.env for s in sets},
                                       CHECKOUT_SERVICES))
            print(f"ready; logs in {root}", flush=True)
            asyncio.run(early_requests(sets, product_ids))
            for measured in sets:
                asyncio.run(prepare(measured, args.concurrency))
                asyncio.run(checkouts(measured, args.warmup))
            run_rounds(sets, args.rounds, args.seconds)
            time.sleep(SETTLE_SECONDS)
            lone: dict[Instrumentation, LoneCheckout] = {}
            early: dict[Instrumentation, int] = {}
            for measured in sets:
                if measured.explorer is None:
                    continue
                assert measured.spans_during_rounds is not None
                measured.spans_during_rounds = (spans_received(measured.explorer)
                                                - measured.spans_during_rounds)
                early[measured.approach] = asyncio.run(untraced_early(measured))
                lone[measured.approach] = asyncio.run(lone_checkout(measured))
        finally:
            processes.stop_all()

    result = summarise(sets, lone, early, args, load_before)
    print_tables(result)
    if args.write:
        MEASURED_FILE.write_text(result.model_dump_json(indent=1) + "\n")
        print(f"\nwritten to {MEASURED_FILE}")


def start_sets(processes: Processes, shared: dict[str, str],
               approaches: list[Instrumentation]) -> list[ApproachSet]:
    """Each approach's database, Valkey database, NATS, explorer and services, started."""
    sets = []
    for number, approach in enumerate(approaches):
        database = asyncio.run(copy_database(shared["KANSOKU_DATABASE_URL"],
                                             f"kansoku_{approach.value}"))
        own = {**shared, "KANSOKU_DATABASE_URL": database,
               "KANSOKU_REDIS_URL": shared["KANSOKU_REDIS_URL"].rsplit("/", 1)[0]
               + f"/{number + 1}",
               "KANSOKU_NATS_URL": start_nats(processes, f"nats-{approach.value}")}
        explorer_env = None
        explorer = None
        if approach != Instrumentation.NONE:
            explorer_env, api = explorer_environment(own)
            processes.start(f"explorer-{approach.value}",
                            [sys.executable, "-m", "kansoku", "serve", "explorer"],
                            env=explorer_env)
            explorer = f"http://127.0.0.1:{api}"
        env = {**without_vendor_variables(service_environment(own, {})),
               "KANSOKU_GATEWAY_RATE_LIMIT_PER_USER": "100000000",
               **approach_environment(approach, explorer_env)}
        sets.append(ApproachSet(approach, env, explorer))

    async def explorers_ready() -> None:
        async with httpx.AsyncClient(timeout=2) as client:
            for measured in sets:
                if measured.explorer:
                    url = f"{measured.explorer}/health/ready"

                    async def probe(url: str = url) -> None:
                        (await client.get(url)).raise_for_status()

                    await wait_until(probe, f"explorer for {measured.approach}", timeout=120)

    asyncio.run(explorers_ready())
    for measured in sets:
        for service in CHECKOUT_SERVICES:
            started = processes.start(f"{service}-{measured.approach.value}",
                                      [sys.executable, "-m", "kansoku", "serve", service],
                                      env=measured.env)
            measured.processes[service] = psutil.Process(started.pid)
    return sets


def run_rounds(sets: list[ApproachSet], rounds: int, seconds: float) -> None:
    # Spans counted from here: the warm-up's are not the rounds'.
    for measured in sets:
        if measured.explorer:
            measured.spans_during_rounds = spans_received(measured.explorer)
    for round_number in range(rounds):
        # Each round starts one set later, so no set always runs first.
        order = sets[round_number % len(sets):] + sets[:round_number % len(sets)]
        for measured in order:
            before = {name: cpu_seconds([process])
                      for name, process in measured.processes.items()}
            paid, failed, latencies = asyncio.run(checkouts(measured, seconds))
            for name, process in measured.processes.items():
                measured.cpu[name] += cpu_seconds([process]) - before[name]
            measured.paid += paid
            measured.not_paid += failed
            measured.latencies += latencies
            measured.rates.append(paid / seconds)
            used = sum(cpu_seconds([p]) for p in measured.processes.values()) \
                - sum(before.values())
            print(f"round {round_number + 1} {measured.approach.value:<9} "
                  f"{paid / seconds:6.1f} paid checkouts/s  "
                  f"{used / max(1, paid) * 1000:6.1f} ms CPU/checkout  "
                  f"p50 {percentile(latencies, 0.5) * 1000:5.0f} ms  ({failed} not paid)",
                  flush=True)
    for measured in sets:
        measured.memory = {name: pss_mib(process)
                           for name, process in measured.processes.items()}


def differences(own: dict[tuple[str, str], int] | None,
                others: list[dict[tuple[str, str], int]],
                keys: list[tuple[str, str]]) -> dict[str, list[str]]:
    """What one approach's checkout has spans of and no other's has (`sees_alone`), and
    what another's has and its has not (`misses`), as `service role` pairs."""
    if not own or not others:
        return {"sees_alone": [], "misses": []}
    return {"sees_alone": [f"{service} {role}" for service, role in keys
                           if own.get((service, role))
                           and not any(found.get((service, role)) for found in others)],
            "misses": [f"{service} {role}" for service, role in keys
                       if not own.get((service, role))]}


def summarise(sets: list[ApproachSet], lone: dict[Instrumentation, LoneCheckout],
              early: dict[Instrumentation, int], args: argparse.Namespace,
              load_before: list[float]) -> Measured:
    baseline = next(s for s in sets if s.approach == Instrumentation.NONE)
    base_rate = statistics.mean(baseline.rates) or 1.0
    base_p50 = percentile(baseline.latencies, 0.5)
    base_p99 = percentile(baseline.latencies, 0.99)
    counted = {approach: roles(found.spans) for approach, found in lone.items()}
    keys = sorted({key for found in counted.values() for key in found})
    checkout_roles = [RoleCount(service=service, role=role, counts={
        approach.value: counted[approach].get((service, role), 0) for approach in counted})
        for service, role in keys]
    approaches = []
    for measured in sets:
        approach = measured.approach
        paid = max(1, measured.paid)
        modules = wiring_lines(approach)
        own = counted.get(approach)
        others = [found for other, found in counted.items() if other != approach]
        matrix = None
        if approach in lone:
            filled = share(lone[approach].evidence, CHECKOUT_SERVICES)
            matrix = MatrixShare(traces=filled.of("traces"), metrics=filled.of("metrics"),
                                 logs=filled.of("logs"), all=filled.of())
        approaches.append(MeasuredApproach(
            approach=approach, checkouts_per_second=statistics.mean(measured.rates),
            rounds=measured.rates, of_none=statistics.mean(measured.rates) / base_rate,
            cpu_ms_per_checkout=sum(measured.cpu.values()) * 1000 / paid,
            cpu_ms_by_service={name: cpu * 1000 / paid for name, cpu in measured.cpu.items()},
            memory_mib_per_service=statistics.mean(measured.memory.values()),
            memory_mib_by_service=measured.memory,
            p50_ms=percentile(measured.latencies, 0.5) * 1000,
            p99_ms=percentile(measured.latencies, 0.99) * 1000,
            added_p50_ms=(percentile(measured.latencies, 0.5) - base_p50) * 1000,
            added_p99_ms=(percentile(measured.latencies, 0.99) - base_p99) * 1000,
            spans_per_checkout=len(lone[approach].spans) if approach in lone else None,
            spans_received_per_checkout=(measured.spans_during_rounds / paid
                                         if measured.spans_during_rounds is not None
                                         else None),
            matrix_share=matrix, early_untraced=early.get(approach),
            early_requests=len(measured.early_paths) or args.early,
            wiring_lines=sum(modules.values()), wiring_modules=modules,
            not_paid=measured.not_paid,
            **differences(own, others, keys)))
    return Measured(
        measured_at=datetime.now(UTC).replace(microsecond=0), machine=machine(),
        load_average_before=load_before, load_average_after=list(os.getloadavg()),
        rounds=args.rounds, seconds_per_round=args.seconds, concurrency=args.concurrency,
        approaches=approaches, checkout=checkout_roles)


def print_tables(result: Measured) -> None:
    print(f"\n{result.concurrency} customers per approach, {result.rounds} rounds x "
          f"{result.seconds_per_round:g} s each; a checkout is log in, add to cart, "
          "place the order, pay\n")
    print("| approach | paid checkouts/s (rounds) | of none | CPU ms/checkout "
          "| PSS MiB/service | added p50 / p99 ms | spans/checkout (one; all ÷ checkouts) "
          "| signal matrix (traces, metrics, logs) | early untraced | wiring lines "
          "| not paid |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for a in result.approaches:
        rounds = ", ".join(f"{rate:.1f}" for rate in a.rounds)
        added = ("-" if a.approach == Instrumentation.NONE
                 else f"{a.added_p50_ms:+.0f} / {a.added_p99_ms:+.0f}")
        spans = ("-" if a.spans_per_checkout is None else
                 f"{a.spans_per_checkout}; {a.spans_received_per_checkout:.0f}")
        matrix = ("-" if a.matrix_share is None else
                  f"{a.matrix_share.all:.0%} ({a.matrix_share.traces:.0%}, "
                  f"{a.matrix_share.metrics:.0%}, {a.matrix_share.logs:.0%})")
        early = "-" if a.early_untraced is None else f"{a.early_untraced} of {a.early_requests}"
        print(f"| {a.approach} | {a.checkouts_per_second:.1f} ({rounds}) | {a.of_none:.2f} "
              f"| {a.cpu_ms_per_checkout:.0f} | {a.memory_mib_per_service:.0f} | {added} "
              f"| {spans} | {matrix} | {early} | {a.wiring_lines} | {a.not_paid} |")

    names = [a.approach.value for a in result.approaches]
    print("\nper service: CPU ms per checkout / PSS MiB after the rounds\n")
    print("| service | " + " | ".join(names) + " |")
    print("| --- |" + " ---: |" * len(names))
    for service in CHECKOUT_SERVICES:
        print(f"| {service} | " + " | ".join(
            f"{a.cpu_ms_by_service.get(service, 0):.1f} / "
            f"{a.memory_mib_by_service.get(service, 0):.0f}" for a in result.approaches) + " |")

    instrumented = [name for name in names if name != Instrumentation.NONE]
    print("\none checkout's spans by service and role\n")
    print("| service | role | " + " | ".join(instrumented) + " |")
    print("| --- | --- |" + " ---: |" * len(instrumented))
    for row in result.checkout:
        print(f"| {row.service} | {row.role} | "
              + " | ".join(str(row.counts.get(name, 0)) for name in instrumented) + " |")
    print("\nwhat each sees that the others miss, in one checkout:")
    for a in result.approaches:
        if a.approach != Instrumentation.NONE:
            print(f"- {a.approach}: alone has {', '.join(a.sees_alone) or 'nothing'}; "
                  f"misses {', '.join(a.misses) or 'nothing'}")
    print("\nwiring modules: " + "; ".join(
        f"{a.approach} " + ", ".join(f"{path} {lines}" for path, lines in a.wiring_modules.items())
        for a in result.approaches if a.wiring_modules))
    machine_ = result.machine
    print(f"\nmeasured {result.measured_at:%Y-%m-%d %H:%M} UTC on {machine_.cpu}, "
          f"{machine_.cores} cores, {machine_.memory_gib} GiB, {machine_.system}, "
          f"Python {machine_.python}")
    print("load average before: " + ", ".join(f"{x:.2f}" for x in result.load_average_before)
          + f"; after: {load_average()}")


if __name__ == "__main__":
    main()
