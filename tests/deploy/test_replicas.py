"""Two instances of a service are two processes sharing PostgreSQL, NATS and Valkey, and
nothing else: whatever one decides, the other must see. Here two catalog and two orders
processes (`kansoku serve`, as a Deployment's pods would run it) serve a checkout rush
side by side — each customer orders from one orders process and pays through the
other — and sell exactly the stock; the same Idempotency-Key sent to both at once makes
one order; a price changed through one catalog is what the other serves next; and
payments killed (SIGKILL) in the middle of a rush loses, duplicates and strands nothing:
every charge that went through pays its order, once, with or without the buyer's retry.

What the services keep in memory and why that is safe with replicas (caches, sweeps,
schedules, breakers, limits) is listed in docs/deploy.md. The same rush runs through
compose's replicas in tests/deploy/test_compose.py.
"""

from __future__ import annotations

import asyncio
import functools
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest

from kansoku import topology
from kansoku.faults import flagfile
from tests.support import database_of_its_own, eventually, free_ports

ADDRESS = {"street": "1 Main St", "city": "San Francisco", "state": "CA", "zip": "94105",
           "country": "US"}
CARD = {"card_number": "4111111111111111", "expiry_month": "12", "expiry_year": "2030",
        "cvv": "123"}
#: The processes, each `kansoku serve SERVICE`, and the catalog each orders process calls.
PROCESSES = {"identity": "identity", "inventory": "inventory", "payments": "payments",
             "catalog-a": "catalog", "catalog-b": "catalog", "orders-a": "orders",
             "orders-b": "orders"}
CATALOG_OF = {"orders-a": "catalog-a", "orders-b": "catalog-b"}


@dataclass
class Replicas:
    """The processes serving, by name: `replicas["orders-a"]` is a URL."""

    urls: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]]
    envs: dict[str, dict[str, str]]
    logs: Path
    #: The fault flags every process reads.
    flags_file: Path

    def __getitem__(self, name: str) -> str:
        return self.urls[name]

    def kill(self, name: str) -> None:
        """SIGKILL, as the kernel's OOM killer or a node going away would."""
        self.processes[name].kill()
        self.processes[name].wait()

    async def start(self, name: str) -> None:
        self.processes[name] = _serve(PROCESSES[name], self.envs[name],
                                      self.logs / f"{name}.log")
        async with httpx.AsyncClient(timeout=5) as client:
            await eventually(functools.partial(_ready, client, self.urls[name]), 90,
                             f"{name} ready again")


@pytest.fixture(scope="module")
async def replicas(postgres_url: str, nats_url: str, valkey_url: str,
                   tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Replicas]:
    """Every process serving."""
    logs = tmp_path_factory.mktemp("replicas")
    ports = dict(zip(PROCESSES, free_ports(len(PROCESSES)), strict=True))
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    base = {key: value for key, value in os.environ.items()
            if not key.startswith(("KANSOKU_", "OTEL_"))}
    # A database of its own: the rush's products and orders must not change what the
    # catalog's and orders' own tests find in the shared one.
    database_url = await database_of_its_own(postgres_url, "replicas")
    base.update(KANSOKU_DATABASE_URL=database_url, KANSOKU_NATS_URL=nats_url,
                KANSOKU_REDIS_URL=valkey_url, KANSOKU_SERVICE_SECRET=uuid.uuid4().hex,
                KANSOKU_IDENTITY_URL=urls["identity"], KANSOKU_INVENTORY_URL=urls["inventory"],
                KANSOKU_PAYMENTS_URL=urls["payments"],
                # Nothing here reads telemetry: spare the CPU.
                OTEL_SDK_DISABLED="true")
    migrated = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "kansoku", "migrate"], env=base,
        capture_output=True, text=True, timeout=300, check=False)
    assert migrated.returncode == 0, migrated.stderr
    flags_file = logs / "flags.json"
    flagfile.reset(flags_file)
    base["KANSOKU_FLAGS_FILE"] = str(flags_file)
    running = Replicas(urls, {}, {}, logs, flags_file)
    try:
        for name, service in PROCESSES.items():
            env = {**base, topology.port_variable(service): str(ports[name])}
            if name in CATALOG_OF:
                env["KANSOKU_CATALOG_URL"] = urls[CATALOG_OF[name]]
            running.envs[name] = env
            running.processes[name] = _serve(service, env, logs / f"{name}.log")
        async with httpx.AsyncClient(timeout=5) as client:
            for name, url in urls.items():
                await eventually(functools.partial(_ready, client, url), 90, f"{name} ready")
        yield running
    finally:
        for process in running.processes.values():
            process.terminate()
        for process in running.processes.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def test_two_orders_and_two_catalog_processes_sell_exactly_the_stock(
    replicas: Replicas,
) -> None:
    stock, customers = 5, 16
    async with httpx.AsyncClient(timeout=60) as client:
        admin = await _login(client, replicas, "admin@example.com", "admin-pass-1234")
        product = await _product_in_stock(client, replicas, admin, stock)
        tokens = [await _customer(client, replicas) for _ in range(customers)]

        async def buy(index: int, token: str) -> str:
            # Ordered from one orders process, paid through the other.
            ordering, paying = ("orders-a", "orders-b")[::1 if index % 2 else -1]
            order = await client.post(f"{replicas[ordering]}/orders", json={
                "items": [{"product_id": product, "quantity": 1}],
                "shipping_address": ADDRESS,
            }, headers={**_bearer(token), "Idempotency-Key": str(uuid.uuid4())})
            if order.status_code != 201:
                return f"order {order.status_code}"
            paid = await client.post(
                f"{replicas[paying]}/orders/{order.json()['id']}/payment",
                json={"payment_method": "credit_card", "payment_details": CARD},
                headers=_bearer(token))
            return f"payment {paid.status_code}"

        outcomes = await asyncio.gather(*(buy(i, token) for i, token in enumerate(tokens)))
        level = (await client.get(f"{replicas['inventory']}/stock/{product}")).json()
    assert outcomes.count("payment 201") == stock, outcomes
    assert outcomes.count("order 409") == customers - stock, outcomes
    assert (level["on_hand"], level["reserved"], level["available"]) == (0, 0, 0)


async def test_one_idempotency_key_sent_to_both_orders_processes_is_one_order(
    replicas: Replicas,
) -> None:
    async with httpx.AsyncClient(timeout=60) as client:
        admin = await _login(client, replicas, "admin@example.com", "admin-pass-1234")
        product = await _product_in_stock(client, replicas, admin, 10)
        token = await _customer(client, replicas)
        headers = {**_bearer(token), "Idempotency-Key": str(uuid.uuid4())}
        body = {"items": [{"product_id": product, "quantity": 2}], "shipping_address": ADDRESS}
        answers = await asyncio.gather(*(
            client.post(f"{replicas[name]}/orders", json=body, headers=headers)
            for name in ("orders-a", "orders-b", "orders-a", "orders-b")))
        level = (await client.get(f"{replicas['inventory']}/stock/{product}")).json()
    assert all(answer.status_code in (200, 201) for answer in answers), \
        [answer.text for answer in answers]
    assert len({answer.json()["id"] for answer in answers}) == 1
    assert level["reserved"] == 2, "the losers released what they had reserved"


async def test_a_change_through_one_catalog_is_what_the_other_serves(
    replicas: Replicas,
) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        admin = await _login(client, replicas, "admin@example.com", "admin-pass-1234")
        product = await _product_in_stock(client, replicas, admin, 1)
        # Read through the other instance first, so that its cache holds the old price.
        before = await client.get(f"{replicas['catalog-b']}/products/{product}")
        changed = await client.put(f"{replicas['catalog-a']}/products/{product}",
                                   headers=_bearer(admin), json={
                                       "name": "Replica lens", "price": "12.50"})
        after = await client.get(f"{replicas['catalog-b']}/products/{product}")
    assert before.json()["price"] == "10.00"
    assert changed.status_code == 200, changed.text
    assert after.json()["price"] == "12.50"


async def test_payments_killed_in_a_rush_loses_duplicates_and_strands_nothing(
    replicas: Replicas, postgres_url: str,
) -> None:
    """Eight buyers at once; payments is SIGKILLed while their charges are in flight and
    started again. A buyer whose answer was lost is told the charge may have gone
    through, and pays again as told. In the end every order is paid exactly once: one
    succeeded charge each, its stock gone once, none left waiting with its money taken.
    (Last in this module: it kills a process the others use.)"""
    buyers = 8
    async with httpx.AsyncClient(timeout=60) as client:
        admin = await _login(client, replicas, "admin@example.com", "admin-pass-1234")
        product = await _product_in_stock(client, replicas, admin, buyers)
        tokens = [await _customer(client, replicas) for _ in range(buyers)]
        orders: list[str] = []
        for index, token in enumerate(tokens):
            placed = await client.post(
                f"{replicas[('orders-a', 'orders-b')[index % 2]]}/orders",
                json={"items": [{"product_id": product, "quantity": 1}],
                      "shipping_address": ADDRESS}, headers=_bearer(token))
            assert placed.status_code == 201, placed.text
            orders.append(placed.json()["id"])

        async def pay(index: int) -> httpx.Response:
            return await client.post(
                f"{replicas[('orders-b', 'orders-a')[index % 2]]}/orders/{orders[index]}"
                "/payment", json={"payment_method": "credit_card", "payment_details": CARD},
                headers=_bearer(tokens[index]))

        # Each charge spends a second at the "card network" (paymentLatency): the kill
        # lands while all eight are in flight, not before or after them.
        flagfile.set_variant(replicas.flags_file, "paymentLatency", "1s")
        await asyncio.sleep(1.5)  # the provider looks at the file every 0.5 s
        paying = [asyncio.create_task(pay(index)) for index in range(buyers)]
        await asyncio.sleep(0.6)
        replicas.kill("payments")
        first = await asyncio.gather(*paying)
        flagfile.reset(replicas.flags_file)
        await replicas.start("payments")
        lost = [index for index, answer in enumerate(first) if answer.status_code != 201]
        assert lost, "the kill landed after every charge was answered"
        for index in lost:
            answer = first[index]
            assert answer.status_code == 503, answer.text
            assert answer.json()["type"].endswith("/payment-outcome-unknown"), answer.text
            assert "may have gone through" in answer.json()["detail"]
        # Told that paying again never charges twice, they pay again.
        retried = {index: await pay(index) for index in lost}

        async def all_settled() -> bool:
            statuses = [(await client.get(
                f"{replicas['orders-a']}/orders/{order}",
                headers=_bearer(tokens[index]))).json()["status"]
                for index, order in enumerate(orders)]
            return "pending_payment" not in statuses

        await eventually(all_settled, 60, "every order settled")
        level = (await client.get(f"{replicas['inventory']}/stock/{product}")).json()
    assert all(answer.status_code == 201 for answer in retried.values()), [
        answer.text for answer in retried.values()]
    database = replicas.envs["payments"]["KANSOKU_DATABASE_URL"]
    connection = await asyncpg.connect(database)
    try:
        rows = await connection.fetch(
            "SELECT o.status, count(p.id) FILTER (WHERE p.status = 'succeeded') AS charges "
            "FROM orders.orders o LEFT JOIN payments.payments p ON p.order_id = o.id "
            "WHERE o.id = ANY($1::uuid[]) GROUP BY o.id, o.status", orders)
    finally:
        await connection.close()
    outcome = sorted((row["status"], row["charges"]) for row in rows)
    assert outcome == [("paid", 1)] * buyers, "every order paid, each charged once"
    assert (level["on_hand"], level["reserved"]) == (0, 0), level


def _serve(service: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen([sys.executable, "-m", "kansoku", "serve", service],
                                env=env, stdout=output, stderr=subprocess.STDOUT)


async def _ready(client: httpx.AsyncClient, url: str) -> bool:
    try:
        return (await client.get(f"{url}/health/ready")).status_code == 200
    except httpx.HTTPError:
        return False


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _login(client: httpx.AsyncClient, urls: Replicas, email: str,
                 password: str) -> str:
    answer = await client.post(f"{urls['identity']}/auth/login",
                               json={"email": email, "password": password})
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


async def _customer(client: httpx.AsyncClient, urls: Replicas) -> str:
    email, password = f"replica-{uuid.uuid4().hex[:10]}@example.com", "replica-pass-1234"
    created = await client.post(f"{urls['identity']}/users", json={
        "name": "Replica Buyer", "email": email, "password": password})
    assert created.status_code == 201, created.text
    return await _login(client, urls, email, password)


async def _product_in_stock(client: httpx.AsyncClient, urls: Replicas, admin: str,
                            units: int) -> int:
    """A new product at 10.00 with `units` in stock, created through catalog-a."""
    created = await client.post(f"{urls['catalog-a']}/products", headers=_bearer(admin),
                                json={"name": "Replica lens", "price": "10.00"})
    assert created.status_code == 201, created.text
    product: int = created.json()["id"]
    stocked = await client.post(f"{urls['inventory']}/inventory/{product}/adjust",
                                headers=_bearer(admin),
                                json={"delta": units, "reason": "replica test"})
    assert stocked.status_code == 200, stocked.text
    return product
