"""deploy/compose.yaml gives the same shop as `kansoku up`: the image is built, the
project comes up in a private Docker daemon (tests/deploy/docker.py) with two catalog
and two orders containers, an order is placed and paid through the gateway's container
and its trace is in the explorer's; a checkout rush through both replicas sells no
more than the stock; every service's pod as the chart renders it starts; one orders
container `docker kill`ed in a rush loses, duplicates and strands nothing. Then
everything goes: no container, network, volume or firewall change is left behind.

Opt-in (`KANSOKU_CONTAINER_TESTS=1`, as root, with docker.io, docker-compose and
debootstrap installed): it takes 4 to 7 minutes on 2 cores (docs/deploy.md), which the
rest of the suite's CI budget cannot spare. What it substitutes for the published images is in
tests/deploy/docker.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.deploy import docker as containers
from tests.support import eventually, free_ports

pytestmark = pytest.mark.containers

OPT_IN = "KANSOKU_CONTAINER_TESTS"
COMPOSE_FILE = containers.REPOSITORY / "deploy" / "compose.yaml"
REPLICAS = {"catalog": 2, "orders": 2}
ADDRESS = {"street": "1 Main St", "city": "San Francisco", "state": "CA", "zip": "94105",
           "country": "US"}
CARD = {"card_number": "4111111111111111", "expiry_month": "12", "expiry_year": "2030",
        "cvv": "123"}


@pytest.fixture(scope="module")
def docker() -> Iterator[containers.Docker]:
    if os.environ.get(OPT_IN) != "1":
        pytest.skip(f"container tests are opt-in: {OPT_IN}=1 (about 5 minutes)")
    if os.geteuid() != 0:
        pytest.fail("the container tests start their own dockerd: run them as root",
                    pytrace=False)
    if missing := containers.missing_tools():
        pytest.fail(f"missing {', '.join(missing)}: {containers.INSTALL_HINT}",
                    pytrace=False)
    cache = Path(os.environ.get("KANSOKU_CONTAINER_TEST_CACHE",
                                "/var/tmp/kansoku-container-tests"))
    cache.mkdir(parents=True, exist_ok=True)
    before = containers.HostNetwork.now()
    try:
        with containers.private_daemon(cache) as daemon:
            yield daemon
    finally:
        after = containers.HostNetwork.now()
        if after != before:
            before.restore()
        assert after == before, "the Docker daemon left the host's network changed"


@pytest.fixture(scope="module")
def images(docker: containers.Docker, tmp_path_factory: pytest.TempPathFactory
           ) -> dict[str, str]:
    """The images built (kansoku on the local base, the servers' stand-ins); the compose
    variables that name them."""
    containers.build_base_image(docker, tmp_path_factory.mktemp("base"))
    return containers.build_images(docker)


@pytest.fixture(scope="module")
def shop(docker: containers.Docker, images: dict[str, str]) -> Iterator[dict[str, str]]:
    """The compose project, up; its published addresses. Taken down afterwards."""
    gateway, explorer, otlp = free_ports(3)
    project = f"kansoku-test-{secrets.token_hex(3)}"
    env = {**images, "KANSOKU_GATEWAY_PORT": str(gateway),
           "KANSOKU_EXPLORER_PORT": str(explorer), "KANSOKU_EXPLORER_OTLP_PORT": str(otlp),
           "KANSOKU_SERVICE_SECRET": secrets.token_hex(16),
           "KANSOKU_EXPLORER_TOKEN": secrets.token_hex(16),
           "KANSOKU_POSTGRES_PASSWORD": secrets.token_hex(8)}
    compose = ("--file", str(COMPOSE_FILE), "--project-name", project)
    scale = [argument for service, count in REPLICAS.items()
             for argument in ("--scale", f"{service}={count}")]
    try:
        docker.compose_run(*compose, "up", "--detach", "--no-build", *scale, env=env)
        yield {"gateway": f"http://127.0.0.1:{gateway}",
               "explorer": f"http://127.0.0.1:{explorer}", "project": project,
               "service_secret": env["KANSOKU_SERVICE_SECRET"],
               "explorer_token": env["KANSOKU_EXPLORER_TOKEN"],
               "postgres_password": env["KANSOKU_POSTGRES_PASSWORD"]}
    finally:
        docker.compose_run(*compose, "down", "--volumes", "--remove-orphans",
                           "--timeout", "30", env=env)
        docker.run("image", "prune", "--force")
        assert docker.run("ps", "--all", "--quiet").strip() == "", "containers left"
        networks = docker.run("network", "ls", "--format", "{{.Name}}").split()
        assert sorted(networks) == ["host", "none"], f"networks left: {networks}"
        assert docker.run("volume", "ls", "--quiet").strip() == "", "volumes left"


async def test_the_compose_shop_places_pays_and_traces_an_order(
    shop: dict[str, str],
) -> None:
    api = shop["gateway"] + "/api/v1"
    async with httpx.AsyncClient(timeout=30) as client:
        await eventually(lambda: _ready(client, shop["gateway"]), 180, "the gateway ready")
        token = await _login(client, api, "alice@example.com", "alice-pass-1234")
        products = (await client.get(f"{api}/products", params={"q": "Orion"})).json()
        product = products["items"][0]["id"]
        trace_id = secrets.token_hex(16)
        traced = {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
        order = await client.post(f"{api}/orders", json={
            "items": [{"product_id": product, "quantity": 1}], "shipping_address": ADDRESS,
        }, headers={**_bearer(token), "Idempotency-Key": str(uuid.uuid4())})
        assert order.status_code == 201, order.text
        payment = await client.post(f"{api}/payments", json={
            "order_id": order.json()["id"], "payment_method": "credit_card",
            "payment_details": CARD}, headers={**_bearer(token), **traced})
        assert payment.status_code == 201, payment.text
        assert payment.json()["order_status"] == "paid"

        services: set[str] = set()

        async def traced_through_the_shop() -> bool:
            # The explorer asks programs for its token (compose sets KANSOKU_EXPLORER_AUTH).
            answer = await client.get(f"{shop['explorer']}/api/traces/{trace_id}",
                                      headers=_bearer(shop["explorer_token"]))
            assert answer.status_code in (200, 404), answer.text
            if answer.status_code != 200 or not answer.json()["data"]:
                return False
            services.update(process["serviceName"]
                            for process in answer.json()["data"][0]["processes"].values())
            return {"gateway", "orders", "payments", "inventory", "worker"} <= services

        try:
            await eventually(traced_through_the_shop, 60, "the payment's trace in the explorer")
        except AssertionError as late:
            # (The services seen are known only now, not when the wait began.)
            raise AssertionError(f"{late}; services in it so far: {sorted(services)}") from None


async def test_two_catalog_and_two_orders_replicas_sell_no_more_than_the_stock(
    shop: dict[str, str], docker: containers.Docker,
) -> None:
    """Twenty customers at once for the last five units, through two catalog and two
    orders containers: five are paid, the others refused, stock ends at zero."""
    api = shop["gateway"] + "/api/v1"
    stock, customers = 5, 20
    async with httpx.AsyncClient(timeout=60) as client:
        await eventually(lambda: _ready(client, shop["gateway"]), 180, "the gateway ready")
        admin = await _login(client, api, "admin@example.com", "admin-pass-1234")
        product = await client.post(f"{api}/products", headers=_bearer(admin), json={
            "name": "Limited comet lens", "description": "Few made.", "price": "49.00",
            "currency": "USD", "inventory": stock})
        assert product.status_code == 201, product.text
        product_id = product.json()["id"]
        tokens = [await _customer(client, api) for _ in range(customers)]
        #: The answers other than 201 and 409, in full: what a failure was.
        others: list[str] = []

        async def buy(token: str) -> str:
            order = await client.post(f"{api}/orders", json={
                "items": [{"product_id": product_id, "quantity": 1}],
                "shipping_address": ADDRESS,
            }, headers={**_bearer(token), "Idempotency-Key": str(uuid.uuid4())})
            if order.status_code != 201:
                if order.status_code != 409:
                    others.append(f"order {order.status_code}: {order.text}")
                return f"order {order.status_code}"
            paid = await client.post(f"{api}/payments", json={
                "order_id": order.json()["id"], "payment_method": "credit_card",
                "payment_details": CARD}, headers=_bearer(token))
            if paid.status_code != 201:
                others.append(f"payment {paid.status_code}: {paid.text}")
            return f"payment {paid.status_code}"

        outcomes = await asyncio.gather(*(buy(token) for token in tokens))
        left = (await client.get(f"{api}/products/{product_id}")).json()["stock"]
    assert outcomes.count("payment 201") == stock, (outcomes, others)
    assert outcomes.count("order 409") == customers - stock, (outcomes, others)
    assert left == 0
    for service, count in REPLICAS.items():
        served = _requests_served(docker, shop["project"], service)
        assert len(served) == count and all(served), \
            f"every {service} replica served requests: {served}"
    # What the memory limits were set from: each container's use after the rush.
    usage = docker.run("stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}")
    print("memory after the rush:\n" + usage)  # noqa: T201 - the figures, for docs/deploy.md
    for container in _project_containers(docker, shop["project"]):
        assert docker.run("inspect", "--format", "{{.State.OOMKilled}}",
                          container).strip() == "false", f"{container} ran out of memory"


#: What Kubernetes puts in the catalog's port setting for a Service `kansoku-catalog`
#: when the pod keeps its service links.
SERVICE_LINK = "tcp://10.0.0.1:8002"


def test_a_service_link_in_the_port_stops_the_service_with_one_line_naming_it(
    docker: containers.Docker, images: dict[str, str],
) -> None:
    """As a pod of a release named `kansoku` with service links on would start: the
    service, and the image's healthcheck, say which variable and what to do."""
    common = ["run", "--rm", "--network", "none", "--env", "KANSOKU_SERVICE=catalog",
              "--env", f"KANSOKU_CATALOG_PORT={SERVICE_LINK}",
              "--env", "KANSOKU_DATABASE_URL=postgresql://kansoku:pw@127.0.0.1:1/kansoku"]
    for command in (["serve"], ["--entrypoint", "python3"]):
        image_and_args = ([images["KANSOKU_IMAGE"], "serve"] if command == ["serve"] else
                          [*command, images["KANSOKU_IMAGE"], "-m", "kansoku.commands.health"])
        result = subprocess.run(["docker", *common, *image_and_args], env=docker.env,
                                capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode != 0
        # (The Docker client may add warnings of its own to stderr.)
        (line,) = [line for line in result.stderr.splitlines()
                   if not line.startswith("WARNING:")]
        assert line.startswith(f"error: KANSOKU_CATALOG_PORT={SERVICE_LINK} is a Kubernetes "
                               "service link"), line
        assert "enableServiceLinks: false" in line


#: The servers the chart's pods reach by their Service names, played by the compose
#: project's containers: the chart's name for each, after the release's prefix.
CLUSTER_SERVERS = {"postgres": "postgresql", "nats": "nats", "valkey": "valkey",
                   "explorer": "explorer"}


@pytest.mark.parametrize("release", ["kansoku", "shop"])
async def test_every_pod_the_chart_renders_starts_whatever_the_release_name(
    shop: dict[str, str], docker: containers.Docker, images: dict[str, str], release: str,
) -> None:
    """Every service's pod of `helm template RELEASE` — its environment as the kubelet
    would make it (secrets resolved, $(VAR) expanded, no service links), its user,
    read-only root and capabilities — runs in a container beside the compose project's
    servers, each reached by the chart's Service name, and becomes ready. `kansoku` is
    the name whose Services (`kansoku-catalog`…) would put Kubernetes' service links in
    kansoku's own port settings; `shop` gives the other form of names
    (`shop-kansoku-catalog`…). The explorer is compose's (its pod would need storage)."""
    from tests.deploy.test_chart import by_kind, render

    deployments = by_kind(render({}, name=release), "Deployment")
    # The chart's full name: the release's, or the release's and the chart's.
    prefix = "kansoku-" if release == "kansoku" else f"{release}-kansoku-"
    pods = {name: deployment["spec"]["template"]["spec"]
            for name, deployment in deployments.items() if name != f"{prefix}explorer"}
    assert len(pods) == 10, sorted(pods)
    secrets_ = {"KANSOKU_SERVICE_SECRET": shop["service_secret"],
                "KANSOKU_EXPLORER_TOKEN": shop["explorer_token"],
                "POSTGRES_PASSWORD": shop["postgres_password"]}
    network = f"{shop['project']}-{release}"
    docker.run("network", "create", network)
    attached = []
    started = []
    try:
        for server, chart_name in CLUSTER_SERVERS.items():
            (container,) = _project_containers(docker, shop["project"], server)
            docker.run("network", "connect", "--alias", prefix + chart_name, network,
                       container)
            attached.append(container)
        for name, pod in pods.items():
            assert pod["enableServiceLinks"] is False, name
            (spec,) = pod["containers"]
            context = spec["securityContext"]
            assert context["readOnlyRootFilesystem"], name
            assert context["capabilities"]["drop"] == ["ALL"], name
            env = pod_environment(spec["env"], secrets_, pod_name=f"{name}-0")
            user = (f"{pod['securityContext']['runAsUser']}:"
                    f"{pod['securityContext']['runAsGroup']}")
            container_name = f"{network}-{name}"
            docker.run("run", "--detach", "--name", container_name, "--network", network,
                       "--network-alias", name, "--user", user, "--read-only",
                       "--tmpfs", "/tmp", "--tmpfs", "/var/lib/kansoku:uid=10001",
                       "--cap-drop", "ALL", "--security-opt", "no-new-privileges:true",
                       *(argument for key, value in env.items()
                         for argument in ("--env", f"{key}={value}")),
                       images["KANSOKU_IMAGE"], *spec["args"])
            started.append(container_name)
        waiting = set(started)

        async def all_ready() -> bool:
            probes = await asyncio.gather(*(asyncio.to_thread(
                subprocess.run, ["docker", "exec", name, "python3", "-m",
                                 "kansoku.commands.health"], env=docker.env,
                capture_output=True, text=True, check=False) for name in sorted(waiting)))
            for name, probe in zip(sorted(waiting), probes, strict=True):
                if probe.returncode == 0:
                    waiting.discard(name)
            return not waiting

        try:
            await eventually(all_ready, 180, f"every pod of release {release} ready")
        except AssertionError as late:
            logs = {name: docker.run("logs", "--tail", "5", name) for name in waiting}
            raise AssertionError(f"{late}; not ready: {logs}") from None
    finally:
        for name in started:
            await asyncio.to_thread(subprocess.run, ["docker", "rm", "--force", name],
                                    env=docker.env, capture_output=True, check=False)
        for container in attached:
            docker.run("network", "disconnect", network, container)
        docker.run("network", "rm", network)


def pod_environment(variables: list[dict[str, Any]], secrets_: dict[str, str],
                    pod_name: str) -> dict[str, str]:
    """A container's `env` as the kubelet resolves it: secret keys from `secrets_`, the
    pod's name, and `$(VAR)` replaced by a variable defined before it."""
    resolved: dict[str, str] = {}
    for variable in variables:
        if "value" in variable:
            value = re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                           lambda m: resolved.get(m.group(1), m.group(0)), variable["value"])
        elif ref := variable["valueFrom"].get("secretKeyRef"):
            value = secrets_[ref["key"]]
        else:
            assert variable["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
            value = pod_name
        resolved[variable["name"]] = value
    return resolved


#: The kill test's rush: buyers at once, for how long they start new checkouts, and when
#: (seconds into the rush) one of the two orders containers is killed.
KILL_BUYERS, KILL_RUSH_SECONDS, KILL_AT_SECOND = 8, 20.0, 6.0
#: How long a buyer keeps retrying one step (placing, or paying) that answers 503.
KILL_RETRY_SECONDS = 45.0


async def test_an_orders_container_killed_in_a_rush_loses_duplicates_and_strands_nothing(
    shop: dict[str, str], docker: containers.Docker,
) -> None:
    """Eight buyers check out through the gateway container, over and over, while one of
    the two orders containers is `docker kill`ed. A buyer told 503 does what the answer
    says: places again with the same Idempotency-Key, pays the same order again after
    `payment-outcome-unknown` (paying again never charges twice), and stops after
    `payments-unavailable` (the order was cancelled). Then, in PostgreSQL: no order
    waits with a succeeded charge (within a minute: a charge whose answer died with the
    container reaches its order through `payment.succeeded`), every succeeded charge's
    order is paid, each paid order has exactly one, every order a buyer was given
    exists once, and the stock sold is the number of paid orders. (It leaves one orders
    container down: after the tests that need both.)"""
    api = shop["gateway"] + "/api/v1"
    project = shop["project"]
    replicas = _project_containers(docker, project, "orders")
    assert len(replicas) == REPLICAS["orders"]
    victim, survivor = replicas
    victim_address = docker.run(
        "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        victim).strip()
    (payments,) = _project_containers(docker, project, "payments")
    stock = 1000
    async with httpx.AsyncClient(timeout=60) as client:
        await eventually(lambda: _ready(client, shop["gateway"]), 180, "the gateway ready")
        admin = await _login(client, api, "admin@example.com", "admin-pass-1234")
        created = await client.post(f"{api}/products", headers=_bearer(admin), json={
            "name": "Kill-test eyepiece", "description": "Sold in a rush.", "price": "10.00",
            "currency": "USD", "inventory": stock})
        assert created.status_code == 201, created.text
        product = created.json()["id"]
        buyers = [_Buyer(await _customer(client, api)) for _ in range(KILL_BUYERS)]
        # Each charge spends a second at the "card network" (paymentLatency): at any
        # moment most buyers have a charge in flight, so the kill finds some between
        # charge and answer — the case payment.succeeded is for.
        docker.run("exec", payments, "kansoku", "flags", "set", "paymentLatency", "1s")
        await asyncio.sleep(1.5)  # the services look at the flags file every 0.5 s
        try:
            rush_ends = asyncio.get_running_loop().time() + KILL_RUSH_SECONDS
            rush = [asyncio.create_task(buyer.rush(client, api, product, rush_ends))
                    for buyer in buyers]
            await asyncio.sleep(KILL_AT_SECOND)
            # Killed while it waits for a charge (it holds that order's lock), so that
            # at least one charge's answer dies with it.
            await eventually(lambda: asyncio.to_thread(
                _charging, docker, project, shop["postgres_password"], victim_address), 15,
                "a charge in flight in the orders container to kill")
            await asyncio.to_thread(docker.run, "kill", victim)
            await asyncio.gather(*rush)
        finally:
            docker.run("exec", payments, "kansoku", "flags", "set", "paymentLatency", "off")

    def ledger() -> list[list[str]]:
        """Each order of the product: id, status, Idempotency-Key, succeeded charges."""
        return _psql(docker, project, shop["postgres_password"], f"""
            SELECT o.id, o.status, o.idempotency_key,
                   (SELECT count(*) FROM payments.payments p
                    WHERE p.order_id = o.id AND p.status = 'succeeded')
            FROM orders.orders o
            WHERE o.id IN (SELECT order_id FROM orders.order_items
                           WHERE product_id = {int(product)})""")

    async def no_charge_waits() -> bool:
        rows = await asyncio.to_thread(ledger)
        return not any(status == "pending_payment" and int(charges) > 0
                       for _, status, _, charges in rows)

    await eventually(no_charge_waits, 60,
                     "every order with a succeeded charge settled (payment.succeeded)")
    rows = ledger()
    ((on_hand, reserved),) = _psql(docker, project, shop["postgres_password"],
                                   "SELECT on_hand, reserved FROM inventory.stock "
                                   f"WHERE product_id = {int(product)}")
    # Active reservations, by what became of their order. A container killed between
    # inventory's reservation and writing the order leaves one whose order never
    # existed (the buyer's retry placed it anew): it expires by itself
    # (KANSOKU_ORDERS_RESERVATION_SECONDS, 15 minutes).
    held = {status: (int(count), int(units)) for status, count, units in _psql(
        docker, project, shop["postgres_password"], f"""
            SELECT coalesce(o.status, 'never written'), count(*), sum(r.quantity)
            FROM inventory.reservations r LEFT JOIN orders.orders o ON o.id = r.order_id
            WHERE r.product_id = {int(product)} AND r.status = 'active' GROUP BY 1""")}
    settled_by_event = sum(
        "never heard the answer: settling it" in line
        for line in docker.run("logs", survivor).splitlines())
    outcomes: dict[str, int] = {}
    for buyer in buyers:
        for outcome, count in buyer.outcomes.items():
            outcomes[outcome] = outcomes.get(outcome, 0) + count
    by_status: dict[str, int] = {}
    for _, status, _, _ in rows:
        by_status[status] = by_status.get(status, 0) + 1
    print(f"kill test: {sum(b.checkouts for b in buyers)} checkouts; buyers' outcomes "  # noqa: T201
          f"{dict(sorted(outcomes.items()))}; orders {by_status}; settled from "
          f"payment.succeeded {settled_by_event}; stock sold {stock - int(on_hand)}, "
          f"reserved {reserved}, active reservations by their order's status {held}")

    charges = {order: int(count) for order, _, _, count in rows}
    statuses = {order: status for order, status, _, _ in rows}
    keys = [key for _, _, key, _ in rows]
    paid = [order for order, status in statuses.items() if status == "paid"]
    assert all(charges[order] == 1 for order in paid), \
        f"each paid order has exactly one succeeded charge: {rows}"
    assert all(statuses[order] == "paid" for order, count in charges.items() if count), \
        f"every succeeded charge's order is paid: {rows}"
    assert len(keys) == len(set(keys)), f"one order per Idempotency-Key: {rows}"
    told = {order for buyer in buyers for order in buyer.orders}
    assert told <= set(statuses), f"orders buyers were given are missing: {told - set(statuses)}"
    assert set(keys) <= {key for buyer in buyers for key in buyer.keys}
    assert {order for buyer in buyers for order in buyer.paid} <= set(paid), \
        "an order answered 201 to its payment is not paid"
    assert stock - int(on_hand) == len(paid), "stock sold is the paid orders"
    assert set(held) <= {"pending_payment", "never written"}, \
        f"a paid or cancelled order still holds stock: {held}"
    assert sum(units for _, units in held.values()) == int(reserved), (held, reserved)
    assert sum(outcomes.get(outcome, 0) for outcome in _Buyer.FAILURES) == 0, outcomes
    assert any(outcome.startswith("payment-outcome-unknown") for outcome in outcomes), \
        "the kill took no charge's answer with it: nothing was tested"


class _Buyer:
    """One customer of the kill test: checks out one unit at a time until the rush
    ends, doing after each 503 what its answer says (after its Retry-After)."""

    #: Outcomes that are findings: answers no buyer should get, or a step that never
    #: got a final answer within KILL_RETRY_SECONDS.
    FAILURES = ("unexpected answer", "gave up")
    SETTLED_BY_ITSELF = "paid: settled by itself before the buyer paid again"

    def __init__(self, token: str) -> None:
        self.token = token
        self.checkouts = 0
        #: What happened, counted: final answers and each 503 (with its reason).
        self.outcomes: dict[str, int] = {}
        self.keys: list[str] = []
        self.orders: list[str] = []
        self.paid: list[str] = []

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    def unexpected(self, step: str, answer: httpx.Response) -> None:
        self.count("unexpected answer")
        print(f"unexpected answer to {step}: {answer.status_code} {answer.text}")  # noqa: T201

    async def rush(self, client: httpx.AsyncClient, api: str, product: int,
                   ends: float) -> None:
        while asyncio.get_running_loop().time() < ends:
            self.checkouts += 1
            order = await self.place(client, api, product)
            if order is not None:
                await self.pay(client, api, order)

    async def place(self, client: httpx.AsyncClient, api: str, product: int) -> str | None:
        """Place an order, sending the same Idempotency-Key again after a 503."""
        key = str(uuid.uuid4())
        self.keys.append(key)
        deadline = asyncio.get_running_loop().time() + KILL_RETRY_SECONDS
        while asyncio.get_running_loop().time() < deadline:
            placed = await client.post(f"{api}/orders", json={
                "items": [{"product_id": product, "quantity": 1}], "shipping_address": ADDRESS,
            }, headers={**_bearer(self.token), "Idempotency-Key": key})
            if placed.status_code in (200, 201):
                order: str = placed.json()["id"]
                self.orders.append(order)
                return order
            if not self.retry_after(placed):
                self.unexpected("an order", placed)
                return None
            await asyncio.sleep(_retry_after(placed))
        self.count("gave up")
        return None

    async def pay(self, client: httpx.AsyncClient, api: str, order: str) -> None:
        """Pay the order; after `payment-outcome-unknown`, look at it (a charge that went
        through pays it by itself) and pay again if it still waits."""
        deadline = asyncio.get_running_loop().time() + KILL_RETRY_SECONDS
        while asyncio.get_running_loop().time() < deadline:
            paid = await client.post(f"{api}/payments", json={
                "order_id": order, "payment_method": "credit_card",
                "payment_details": CARD}, headers=_bearer(self.token))
            if paid.status_code == 201:
                self.paid.append(order)
                self.count("paid")
                return
            if paid.status_code == 503 and _problem(paid) == "payments-unavailable":
                self.count("cancelled: payments-unavailable")  # the order was cancelled
                return
            if not self.retry_after(paid):
                self.unexpected("a payment", paid)
                return
            await asyncio.sleep(_retry_after(paid))
            if _problem(paid) == "payment-outcome-unknown":
                looked = await client.get(f"{api}/orders/{order}", headers=_bearer(self.token))
                if looked.status_code == 200 and looked.json()["status"] == "paid":
                    self.paid.append(order)
                    self.count(self.SETTLED_BY_ITSELF)
                    return
        self.count("gave up")

    def retry_after(self, answer: httpx.Response) -> bool:
        """Whether `answer` says to send the same again: `payment-outcome-unknown`, or
        `dependency-unavailable` (orders could not be reached, or broke off)."""
        code = _problem(answer) if answer.status_code == 503 else ""
        if code not in ("payment-outcome-unknown", "dependency-unavailable"):
            return False
        self.count(f"{code} ({_reason(answer)})")
        return True


def _retry_after(answer: httpx.Response) -> float:
    """The answer's Retry-After in seconds (at most 10; 1 without one)."""
    try:
        return min(float(answer.headers.get("retry-after", "1")), 10.0)
    except ValueError:
        return 1.0


def _problem(answer: httpx.Response) -> str:
    """The code of a problem+json answer (the end of its `type`)."""
    try:
        return str(answer.json().get("type", "")).rsplit("/", 1)[-1]
    except ValueError:
        return ""


def _reason(answer: httpx.Response) -> str:
    """What a 503 says went wrong, in short: its detail up to the first full stop."""
    try:
        return str(answer.json().get("detail", ""))[:90].split(". ")[0]
    except ValueError:
        return answer.text[:90]


def _charging(docker: containers.Docker, project: str, password: str, address: str
              ) -> bool:
    """Whether the orders container at `address` is waiting for a charge: paying an
    order holds the order's row lock (FOR UPDATE: a RowShareLock on orders.orders) in a
    transaction that stays idle while payments answers."""
    ((waiting,),) = _psql(docker, project, password, f"""
        SELECT count(*) FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid
        WHERE a.client_addr = '{address}' AND a.state = 'idle in transaction'
          AND l.relation = 'orders.orders'::regclass AND l.mode = 'RowShareLock'""")
    return int(waiting) > 0


def _psql(docker: containers.Docker, project: str, password: str, query: str
          ) -> list[list[str]]:
    """Rows of `query`, run by psql in the project's PostgreSQL container."""
    (postgres,) = _project_containers(docker, project, "postgres")
    output = docker.run("exec", "--env", f"PGPASSWORD={password}", postgres, "psql",
                        "--username=kansoku", "--dbname=kansoku", "--no-psqlrc",
                        "--tuples-only", "--no-align", "--field-separator=|",
                        "--set=ON_ERROR_STOP=1", "--command", query)
    return [line.split("|") for line in output.splitlines() if line]


async def test_a_crashed_service_restarts_and_docker_kill_is_a_stop(
    shop: dict[str, str], docker: containers.Docker,
) -> None:
    """`restart: unless-stopped`: a service whose process dies (killed from outside
    Docker, as a crash or the kernel's OOM killer would) is started again; `docker kill`
    is an operator's stop, and the container stays down. (Last: it takes the lab down.)"""
    (lab,) = _project_containers(docker, shop["project"], "lab")

    def state() -> tuple[str, int]:
        status, restarts = docker.run("inspect", "--format",
                                      "{{.State.Status}} {{.RestartCount}}", lab).split()
        return status, int(restarts)

    pid = int(docker.run("inspect", "--format", "{{.State.Pid}}", lab))
    os.kill(pid, signal.SIGKILL)

    async def restarted() -> bool:
        status, restarts = state()
        return status == "running" and restarts >= 1

    await eventually(restarted, 60, "the crashed lab container running again")
    _, restarts = state()
    docker.run("kill", lab)

    async def exited() -> bool:
        return state()[0] == "exited"

    await eventually(exited, 30, "the killed lab container exited")
    # Docker would restart a crash within a second or two; the killed one stays down.
    for _ in range(10):
        assert state() == ("exited", restarts), "docker kill was undone"
        await asyncio.sleep(0.5)


def _project_containers(docker: containers.Docker, project: str, service: str | None = None
                        ) -> list[str]:
    filters = ["--filter", f"label=com.docker.compose.project={project}"]
    if service is not None:
        filters += ["--filter", f"label=com.docker.compose.service={service}"]
    return docker.run("ps", "--all", "--quiet", *filters).split()


async def _ready(client: httpx.AsyncClient, gateway: str) -> bool:
    try:
        return (await client.get(f"{gateway}/health/ready")).status_code == 200
    except httpx.HTTPError:
        return False


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _login(client: httpx.AsyncClient, api: str, email: str, password: str) -> str:
    answer = await client.post(f"{api}/auth/login", json={"email": email,
                                                          "password": password})
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


async def _customer(client: httpx.AsyncClient, api: str) -> str:
    email, password = f"rush-{uuid.uuid4().hex[:10]}@example.com", "rush-pass-1234"
    created = await client.post(f"{api}/users", json={"name": "Rush Buyer", "email": email,
                                                      "password": password})
    assert created.status_code == 201, created.text
    return await _login(client, api, email, password)


def _requests_served(docker: containers.Docker, project: str, service: str) -> list[int]:
    """Access-log lines of each container of `service`: one per request it served."""
    ids = docker.run("ps", "--quiet", "--filter",
                     f"label=com.docker.compose.project={project}", "--filter",
                     f"label=com.docker.compose.service={service}").split()
    served = []
    for container in ids:
        lines = docker.run("logs", container).splitlines()
        served.append(sum(1 for line in lines
                          if line.startswith("{") and json.loads(line).get("logger")
                          == "kansoku.access"))
    return served
