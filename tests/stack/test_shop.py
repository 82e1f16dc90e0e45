"""The shop through its public API, on a running stack: seed 004's calls, concurrent
buyers, payments going away, and no secret anywhere afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import re
import signal
import time
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import nats
import pytest
from opentelemetry import propagate
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from PIL import Image

from tests.browser import BrowserPage
from tests.stack.test_up import RunningStack, _trace_id_from_logs
from tests.support import eventually, run_cli, stack_environment

pytestmark = pytest.mark.stack

CARD = {"card_number": "4111111111111111", "expiry_month": 12, "expiry_year": 2099,
        "cvv": "123"}
ADDRESS = {"street": "123 Main St", "city": "San Francisco", "state": "CA", "zip": "94105",
           "country": "US"}


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    data_dir = tmp_path_factory.mktemp("shop") / "data"
    env = stack_environment(data_dir)
    # Give up on a failing event after two deliveries, to see dead letters quickly.
    env["KANSOKU_WORKER_MAX_DELIVERIES"] = "2"
    result = run_cli("up", "--detach", env=env)
    assert result.returncode == 0, f"kansoku up failed:\n{result.stdout}\n{result.stderr}"
    try:
        yield RunningStack(env, data_dir)
    finally:
        run_cli("down", env=env)


class Api:
    def __init__(self, client: httpx.AsyncClient, base: str) -> None:
        self.client, self.base = client, base

    async def call(self, method: str, path: str, token: str | None = None,
                   **kwargs: Any) -> httpx.Response:
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return await self.client.request(method, f"{self.base}{path}", headers=headers,
                                         **kwargs)

    async def login(self, email: str, password: str) -> str:
        answer = await self.call("POST", "/auth/login",
                                 json={"email": email, "password": password})
        assert answer.status_code == 200, answer.text
        return str(answer.json()["access_token"])

    async def new_customer(self) -> str:
        email = f"buyer-{uuid.uuid4().hex[:10]}@example.com"
        created = await self.call("POST", "/users", json={
            "name": "Buyer", "email": email, "password": "buyer-pass-1234"})
        assert created.status_code == 201, created.text
        return await self.login(email, "buyer-pass-1234")

    async def new_product(self, admin: str, units: int) -> int:
        created = await self.call("POST", "/products", admin, json={
            "name": f"Limited Edition {uuid.uuid4().hex[:6]}", "price": "49.99",
            "currency": "USD", "inventory": units, "category": "telescopes"})
        assert created.status_code == 201, created.text
        return int(created.json()["id"])


def api_for(shop: RunningStack, client: httpx.AsyncClient) -> Api:
    return Api(client, shop.url("gateway") + "/api/v1")


async def test_seed_004_calls_work_as_written(shop: RunningStack) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        api = api_for(shop, client)
        user = await api.call("POST", "/users", json={
            "name": "John Doe", "email": "john.doe@example.com", "password": "securepassword"})
        assert user.status_code == 201
        token = await api.login("john.doe@example.com", "securepassword")
        admin = await api.login("admin@example.com", "admin-pass-1234")
        laptop = {"name": "Premium Laptop", "description": "High-performance laptop for "
                  "professionals", "price": "1299.99", "currency": "USD", "inventory": 100}
        assert (await api.call("POST", "/products", token, json=laptop)).status_code == 403
        product = (await api.call("POST", "/products", admin, json=laptop)).json()

        order = await api.call("POST", "/orders", token, json={
            "items": [{"product_id": product["id"], "quantity": 1}],
            "shipping_address": ADDRESS})
        assert order.status_code == 201, order.text
        placed = order.json()
        assert placed["status"] == "pending_payment"
        assert placed["total"] == "1299.99" and placed["number"].startswith("KS-")

        payment = await api.call("POST", "/payments", token, json={
            "order_id": placed["id"], "payment_method": "credit_card",
            "payment_details": {"card_number": "4111111111111111", "expiry_month": "12",
                                "expiry_year": "2099", "cvv": "123"}})
        assert payment.status_code == 201, payment.text
        assert payment.json()["status"] == "succeeded"
        assert payment.json()["last4"] == "1111"
        paid = (await api.call("GET", f"/orders/{placed['id']}", token)).json()
        assert paid["status"] == "paid"
        detail = (await api.call("GET", f"/products/{product['id']}")).json()
        assert detail["stock"] == 99

        assert (await client.get(shop.url("gateway") + "/health")).status_code == 200
        metrics = (await client.get(shop.url("orders") + "/metrics")).text
        assert "kansoku_orders_total" in metrics and "kansoku_orders_revenue" in metrics
        assert (await client.get(shop.url("gateway") + "/api/docs")).status_code == 200
        # Another customer cannot see the order.
        other = await api.new_customer()
        assert (await api.call("GET", f"/orders/{placed['id']}", other)).status_code == 404


async def test_cart_checkout_and_idempotency(shop: RunningStack) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        api = api_for(shop, client)
        token = await api.new_customer()
        await api.call("POST", "/cart/items", token, json={"product_id": 1, "quantity": 2})
        cart = (await api.call("POST", "/cart/items", token,
                               json={"product_id": 2, "quantity": 1})).json()
        assert [line["quantity"] for line in cart["items"]] == [2, 1]
        assert float(cart["total"]) == sum(float(line["line_total"]) for line in cart["items"])
        missing = await api.call("POST", "/cart/items", token,
                                 json={"product_id": 999999, "quantity": 1})
        assert missing.status_code == 404

        key = {"Idempotency-Key": uuid.uuid4().hex}
        first, again = await asyncio.gather(*(
            api.call("POST", "/orders", token, headers=dict(key),
                     json={"shipping_address": ADDRESS}) for _ in range(2)))
        assert first.status_code == again.status_code == 201, (first.text, again.text)
        assert first.json()["id"] == again.json()["id"], "one key, one order"
        assert len(first.json()["items"]) == 2
        assert (await api.call("GET", "/cart", token)).json()["items"] == []
        listed = (await api.call("GET", "/orders", token)).json()
        assert listed["total"] == 1


async def test_declined_card_cancels_the_order_and_frees_its_stock(shop: RunningStack
                                                                   ) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        api = api_for(shop, client)
        admin = await api.login("admin@example.com", "admin-pass-1234")
        product = await api.new_product(admin, units=3)
        token = await api.new_customer()
        order = (await api.call("POST", "/orders", token, json={
            "items": [{"product_id": product, "quantity": 3}],
            "shipping_address": ADDRESS})).json()
        assert (await api.call("GET", f"/products/{product}")).json()["stock"] == 0
        bad_number = await api.call("POST", "/payments", token, json={
            "order_id": order["id"], "payment_method": "credit_card",
            "payment_details": {**CARD, "card_number": "4111111111111112"}})
        assert bad_number.status_code == 422
        assert bad_number.json()["field"] == "payment_details.card_number"
        declined = await api.call("POST", "/payments", token, json={
            "order_id": order["id"], "payment_method": "credit_card",
            "payment_details": {**CARD, "card_number": "4000000000007775"}})
        assert declined.status_code == 402
        assert declined.json()["reason"] == "insufficient_funds"
        cancelled = (await api.call("GET", f"/orders/{order['id']}", token)).json()
        assert cancelled["status"] == "cancelled"
        assert "insufficient_funds" in cancelled["cancel_reason"]
        assert (await api.call("GET", f"/products/{product}")).json()["stock"] == 3


async def test_200_concurrent_buyers_for_20_units(shop: RunningStack) -> None:
    limits = httpx.Limits(max_connections=250, max_keepalive_connections=250)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        api = api_for(shop, client)
        admin = await api.login("admin@example.com", "admin-pass-1234")
        product = await api.new_product(admin, units=20)
        buyers = await asyncio.gather(*(api.new_customer() for _ in range(20)))

        unexpected: list[str] = []

        async def buy(token: str) -> tuple[int, int | None]:
            order = await api.call("POST", "/orders", token, json={
                "items": [{"product_id": product, "quantity": 1}],
                "shipping_address": ADDRESS})
            if order.status_code not in (201, 409):
                unexpected.append(f"{order.status_code} {order.json().get('detail')}")
            if order.status_code != 201:
                return order.status_code, None
            paid = await api.call("POST", "/payments", token, json={
                "order_id": order.json()["id"], "payment_method": "credit_card",
                "payment_details": CARD})
            return order.status_code, paid.status_code

        outcomes = await asyncio.gather(*(buy(buyers[i % 20]) for i in range(200)))
        stock = (await api.call("GET", f"/products/{product}")).json()
    placed = [outcome for outcome in outcomes if outcome[0] == 201]
    assert len(placed) == 20, sorted(outcomes)
    assert all(payment == 201 for _, payment in placed), placed
    assert sorted({status for status, _ in outcomes}) == [201, 409], unexpected
    assert stock["stock"] == 0 and stock["stock_status"] == "out"


@contextlib.contextmanager
def outage(shop: RunningStack, component: str, how: str) -> Iterator[None]:
    """`component` away for the block: stopped for real (`kansoku stop`: connections are
    refused) or paused with SIGSTOP (connections hang: the timeouts' turn)."""
    if how == "stopped":
        stopped = run_cli("stop", component, env=shop.env)
        assert stopped.returncode == 0, stopped.stderr
        try:
            yield
        finally:
            started = run_cli("start", component, env=shop.env)
            assert started.returncode == 0, started.stderr
        return
    pid = shop.component(component)["pid"]
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


@pytest.mark.parametrize("how", ["stopped", "paused"])
async def test_payments_away_fails_fast_frees_stock_and_recovers(shop: RunningStack, how: str
                                                                  ) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        api = api_for(shop, client)
        admin = await api.login("admin@example.com", "admin-pass-1234")
        product = await api.new_product(admin, units=50)
        token = await api.new_customer()

        async def checkout() -> tuple[httpx.Response, float]:
            order = await api.call("POST", "/orders", token, json={
                "items": [{"product_id": product, "quantity": 1}],
                "shipping_address": ADDRESS})
            assert order.status_code == 201, order.text
            started = time.monotonic()
            paid = await api.call("POST", "/payments", token, json={
                "order_id": order.json()["id"], "payment_method": "credit_card",
                "payment_details": CARD})
            return paid, time.monotonic() - started

        with outage(shop, "payments", how):
            answers = [await checkout() for _ in range(7)]
        assert all(paid.status_code == 503 for paid, _ in answers), [a.text for a, _ in answers]
        assert answers[0][0].headers["content-type"] == "application/problem+json"
        # Once the breaker has opened, checkout fails at once instead of waiting.
        assert answers[-1][1] < 1.0, [round(seconds, 2) for _, seconds in answers]
        assert (await api.call("GET", f"/products/{product}")).json()["stock"] == 50
        metrics = (await client.get(shop.url("orders") + "/metrics")).text
        assert re.search(r'kansoku_circuit_breaker_state\{[^}]*peer_service="payments"\} 2\.0',
                         metrics), "the open breaker shows in the metrics"

        async def works_again() -> bool:
            paid, _ = await checkout()
            return paid.status_code == 201

        await eventually(works_again, 30, "checkout working after payments returned")


async def test_one_checkout_is_one_trace_across_the_services(shop: RunningStack) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        api = api_for(shop, client)
        token = await api.new_customer()
        await api.call("POST", "/cart/items", token, json={"product_id": 3, "quantity": 1})
        order = await api.call("POST", "/orders", token, json={"shipping_address": ADDRESS})
        paid = await api.call("POST", "/payments", token, json={
            "order_id": order.json()["id"], "payment_method": "credit_card",
            "payment_details": CARD})
        assert paid.status_code == 201
        request_ids = [order.headers["x-request-id"], paid.headers["x-request-id"]]
        services: set[str] = set()
        databases: set[str] = set()

        async def traced() -> bool:
            nonlocal services, databases
            services, databases = set(), set()
            for request_id in request_ids:
                trace_id = _trace_id_from_logs(shop.data_dir / "logs" / "gateway.log",
                                               request_id)
                answer = await client.get(f"{shop.url('explorer')}/api/spans/{trace_id}")
                if answer.status_code == 200:
                    spans = answer.json()["data"]["spans"]
                    services |= {span["service"] for span in spans}
                    databases |= {span["attributes"].get("db.system") for span in spans}
            return {"gateway", "orders", "cart", "catalog", "inventory", "payments",
                    "worker"} <= services and {"postgresql", "redis"} <= databases

        await eventually(traced, 20, "the checkout traces reaching the explorer, "
                                     "through NATS into the worker")


async def test_a_checkout_is_one_whole_trace_in_the_jaeger_api(shop: RunningStack) -> None:
    """An instrumented client's checkout (place the order, pay it) under one span of its
    own: the explorer shows one trace, one root, no orphan, the user on the spans."""
    explorer = shop.url("explorer")
    otlp = f"http://127.0.0.1:{shop.env['KANSOKU_EXPLORER_OTLP_PORT']}"
    provider = TracerProvider(resource=Resource.create({"service.name": "shop-client"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(
        endpoint=f"{otlp}/v1/traces")))
    async with httpx.AsyncClient(timeout=30) as client:
        api = api_for(shop, client)
        token = await api.new_customer()
        with provider.get_tracer("client").start_as_current_span("checkout") as root:
            trace_id = format(root.get_span_context().trace_id, "032x")
            headers: dict[str, str] = {}
            propagate.inject(headers)
            order = await api.call("POST", "/orders", token, headers=dict(headers), json={
                "items": [{"product_id": 8, "quantity": 1}], "shipping_address": ADDRESS})
            paid = await api.call("POST", "/payments", token, headers=dict(headers), json={
                "order_id": order.json()["id"], "payment_method": "credit_card",
                "payment_details": CARD})
        assert paid.status_code == 201, paid.text
        provider.force_flush()
        provider.shutdown()
        spans: list[dict[str, Any]] = []

        async def whole() -> bool:
            nonlocal spans
            found = (await client.get(f"{explorer}/api/traces", params={
                "service": "gateway", "limit": 50, "lookback": "5m"})).json()["data"]
            mine = [trace for trace in found if trace["traceID"] == trace_id]
            if not mine:
                return False
            processes = mine[0]["processes"]
            spans = [{**span, "service": processes[span["processID"]]["serviceName"]}
                     for span in mine[0]["spans"]]
            # A parent ends (and is exported) after its children: the trace is whole
            # once every span's parent has arrived too.
            return {"gateway", "orders", "inventory", "payments", "worker"} <= {
                span["service"] for span in spans} and not orphans()

        def orphans() -> list[tuple[str, str]]:
            ids = {span["spanID"] for span in spans}
            return [(span["service"], span["operationName"]) for span in spans
                    if span["references"] and span["references"][0]["spanID"] not in ids]

        try:
            await eventually(whole, 10, "the checkout as one whole trace in /api/traces")
        except AssertionError:
            raise AssertionError(f"orphan spans: {orphans()}") from None
    roots = [span for span in spans if not span["references"]]
    assert [root["operationName"] for root in roots] == ["checkout"]
    with_user = {span["service"] for span in spans
                 if any(tag["key"] == "enduser.id" for tag in span["tags"])}
    assert len(with_user) >= 3, with_user


async def test_the_explorer_pages_show_the_shops_traffic(shop: RunningStack,
                                                         page: BrowserPage) -> None:
    """After the checkouts above: the services, the map, a route's slowest traces and a
    waterfall, in Chromium, with no JavaScript error."""
    explorer, browser = shop.url("explorer"), page.page
    await browser.goto(f"{explorer}/?lookback=15m")
    services = browser.get_by_role("table")
    for name in ("gateway", "orders", "payments", "worker"):
        await services.get_by_role("link", name=name, exact=True).wait_for()
    await page.screenshot("shop-explorer-services")

    await browser.goto(f"{explorer}/map?lookback=15m")
    await browser.get_by_role("img", name="Service map").wait_for()
    await browser.locator("svg.map a.node").first.wait_for()
    nodes = set(await browser.locator("svg.map a.node").evaluate_all(
        "nodes => nodes.map((node) => node.dataset.id)"))
    assert {"gateway", "orders", "inventory", "payments", "worker", "postgresql",
            "redis"} <= nodes, nodes
    await page.screenshot("shop-explorer-map")

    await browser.goto(f"{explorer}/services/orders?lookback=15m")
    await browser.get_by_role("link", name="/orders", exact=True).click()
    await browser.locator("ol.traces a").first.click()
    await browser.get_by_role("button").first.wait_for()
    assert await browser.locator("li.span").count() >= 3
    await page.screenshot("shop-explorer-trace")

    await browser.goto(f"{explorer}/charts?lookback=15m")
    funnel = browser.get_by_role("region", name="Funnel")
    await funnel.wait_for()
    counts = dict(zip(await funnel.locator(".label").all_inner_texts(),
                      await funnel.locator(".count").all_inner_texts(), strict=True))
    assert int(counts["Orders paid"]) >= 1, counts
    await browser.locator("figure.metric").first.wait_for()  # charts of the metrics
    await page.screenshot("shop-explorer-metrics")
    assert page.errors == []


async def test_no_card_number_cvv_password_or_token_anywhere(shop: RunningStack) -> None:
    secret_card, secret_cvv, password = "5555555555554444", "918", "very-secret-pass-77"
    async with httpx.AsyncClient(timeout=30) as client:
        api = api_for(shop, client)
        email = f"secrets-{uuid.uuid4().hex[:8]}@example.com"
        await api.call("POST", "/users", json={"name": "S", "email": email,
                                               "password": password})
        token = await api.login(email, password)
        order = await api.call("POST", "/orders", token, json={
            "items": [{"product_id": 4, "quantity": 1}], "shipping_address": ADDRESS})
        paid = await api.call("POST", "/payments", token, json={
            "order_id": order.json()["id"], "payment_method": "credit_card",
            "payment_details": {**CARD, "card_number": secret_card, "cvv": secret_cvv}})
        assert paid.status_code == 201 and paid.json()["last4"] == "4444"
        await asyncio.sleep(1.5)  # let the spans and logs be exported
        traces = (await client.get(f"{shop.url('explorer')}/api/traces",
                                   params={"limit": 1000})).json()["data"]
    forbidden = [secret_card, password, token, f'"{secret_cvv}"']
    spans = json.dumps(traces)
    logs = "\n".join(path.read_text(errors="replace")
                     for path in (shop.data_dir / "logs").iterdir())
    database = await _database_dump(shop)
    for text, where in ((spans, "spans"), (logs, "logs"), (database, "database")):
        for secret in forbidden:
            assert secret not in text, f"a secret is in the {where}"
    assert "4444" in database, "the search really looked at the payments"


async def _database_dump(shop: RunningStack) -> str:
    secret = (shop.data_dir / "secret").read_text().strip()
    connection = await asyncpg.connect(host="127.0.0.1", user="postgres", password=secret,
                                       port=int(shop.env["KANSOKU_POSTGRES_PORT"]),
                                       database="kansoku")
    try:
        tables = await connection.fetch(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')")
        rows = []
        for table in tables:
            name = f'"{table["table_schema"]}"."{table["table_name"]}"'
            rows += [row[0] for row in await connection.fetch(
                f"SELECT row_to_json(t)::text FROM {name} t")]
    finally:
        await connection.close()
    return "\n".join(rows)


async def _mail_for(api: Api, admin: str, number: str) -> list[dict[str, Any]]:
    mails = (await api.call("GET", "/admin/mailbox", admin, params={"limit": 500})).json()
    return [mail for mail in mails if number in mail["subject"]]


async def test_paid_orders_are_confirmed_by_email_exactly_once(shop: RunningStack) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        api = api_for(shop, client)
        admin = await api.login("admin@example.com", "admin-pass-1234")
        token = await api.new_customer()
        order = (await api.call("POST", "/orders", token, json={
            "items": [{"product_id": 5, "quantity": 1}], "shipping_address": ADDRESS})).json()
        await api.call("POST", "/payments", token, json={
            "order_id": order["id"], "payment_method": "credit_card", "payment_details": CARD})

        async def confirmed() -> bool:
            return len(await _mail_for(api, admin, order["number"])) >= 1

        await eventually(confirmed, 20, "the confirmation e-mail")
        await asyncio.sleep(1)
        mails = await _mail_for(api, admin, order["number"])
        assert len(mails) == 1
        assert "confirmed" in mails[0]["subject"] and "Buyer" in mails[0]["body"]
        customer = await api.call("GET", "/admin/mailbox", token)
        assert customer.status_code == 403


def photo(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (20, 60, 160)).save(out, "JPEG")
    return out.getvalue()


async def test_an_uploaded_image_gets_a_thumbnail_from_the_worker(shop: RunningStack
                                                                   ) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        api = api_for(shop, client)
        admin = await api.login("admin@example.com", "admin-pass-1234")
        product = await api.new_product(admin, units=3)
        generated = await api.call("GET", f"/products/{product}/image")
        assert generated.headers["content-type"] == "image/svg+xml"

        customer = await api.call("POST", f"/products/{product}/image", await api.new_customer(),
                                  files={"image": ("photo.jpg", photo((900, 600)), "image/jpeg")})
        uploaded = await api.call("POST", f"/products/{product}/image", admin,
                                  files={"image": ("photo.jpg", photo((900, 600)), "image/jpeg")})
        not_an_image = await api.call("POST", f"/products/{product}/image", admin,
                                      files={"image": ("notes.txt", b"hello", "text/plain")})
        assert customer.status_code == 403
        assert uploaded.status_code == 200, uploaded.text
        assert not_an_image.status_code == 422 and "not an image" in not_an_image.json()["detail"]
        assert uploaded.json()["image_version"] == 1

        async def thumbnail_made() -> bool:
            detail = (await api.call("GET", f"/products/{product}")).json()
            return detail["thumbnail_url"] is not None

        await eventually(thumbnail_made, 30, "the worker's thumbnail")
        detail = (await api.call("GET", f"/products/{product}")).json()
        thumbnail = await client.get(shop.url("gateway") + detail["thumbnail_url"])
        assert thumbnail.headers["content-type"] == "image/webp"
        with Image.open(io.BytesIO(thumbnail.content)) as small:
            assert max(small.size) <= 320 and small.size[0] > small.size[1]
        image = await client.get(shop.url("gateway") + detail["image_url"])
        assert image.headers["content-type"] == "image/jpeg"
        unchanged = await client.get(shop.url("gateway") + detail["image_url"],
                                     headers={"If-None-Match": image.headers["etag"]})
        assert unchanged.status_code == 304


async def test_low_stock_alerts_the_admin_once(shop: RunningStack) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        api = api_for(shop, client)
        admin = await api.login("admin@example.com", "admin-pass-1234")
        product = await api.new_product(admin, units=7)
        token = await api.new_customer()
        for quantity in (3, 1):  # 4 left (low), then 3 (still low: no second alert)
            await api.call("POST", "/orders", token, json={
                "items": [{"product_id": product, "quantity": quantity}],
                "shipping_address": ADDRESS})
        subject = f"Low stock: product {product}"

        async def alerted() -> bool:
            return bool(await _mail_for(api, admin, subject))

        await eventually(alerted, 20, "the low-stock alert")
        await asyncio.sleep(1)
        mails = await _mail_for(api, admin, subject)
        assert len(mails) == 1 and mails[0]["recipients"] == ["admin@example.com"]
        assert "down to 4 units" in mails[0]["body"]
        texts = (await api.call("GET", "/admin/notifications", admin,
                                params={"channel": "sms"})).json()
        about = [text for text in texts if f"product {product} is low" in text["text"]]
        assert len(about) == 1 and about[0]["recipient"] == "+15550100"


async def test_inventory_report_as_csv_and_json(shop: RunningStack) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        api = api_for(shop, client)
        admin = await api.login("admin@example.com", "admin-pass-1234")
        refused = await api.call("POST", "/admin/reports/inventory", await api.new_customer())
        made = await api.call("POST", "/admin/reports/inventory", admin)
        assert refused.status_code == 403
        assert made.status_code == 201, made.text
        summary = made.json()
        assert summary["row_count"] >= 200 and summary["low_stock_count"] >= 1
        listed = (await api.call("GET", "/admin/reports", admin)).json()
        assert summary["id"] in {report["id"] for report in listed}

        csv = await api.call("GET", f"/admin/reports/{summary['id']}.csv", admin)
        assert csv.headers["content-type"].startswith("text/csv")
        assert "attachment" in csv.headers["content-disposition"]
        header, first = csv.text.splitlines()[:2]
        assert header.startswith("product_id,sku,name,category,on_hand,reserved,available")
        assert first.startswith("1,TEL-101,Orion Refractor,Telescopes,")
        document = (await api.call("GET", f"/admin/reports/{summary['id']}.json",
                                   admin)).json()
        assert len(document["items"]) == summary["row_count"]
        missing = await api.call("GET", f"/admin/reports/{uuid.uuid4()}.csv", admin)
        assert missing.status_code == 404


@pytest.mark.parametrize("how", ["stopped", "paused"])
async def test_checkouts_go_on_while_nats_is_away_and_no_event_is_lost(
    shop: RunningStack, how: str,
) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        api = api_for(shop, client)
        admin = await api.login("admin@example.com", "admin-pass-1234")
        token = await api.new_customer()
        numbers = []
        with outage(shop, "nats", how):
            for _ in range(3):
                order = await api.call("POST", "/orders", token, json={
                    "items": [{"product_id": 6, "quantity": 1}], "shipping_address": ADDRESS})
                assert order.status_code == 201, order.text
                paid = await api.call("POST", "/payments", token, json={
                    "order_id": order.json()["id"], "payment_method": "credit_card",
                    "payment_details": CARD})
                assert paid.status_code == 201, paid.text
                numbers.append(order.json()["number"])
            await asyncio.sleep(1)
            assert [await _mail_for(api, admin, n) for n in numbers] == [[], [], []]

        async def all_delivered() -> bool:
            return all([await _mail_for(api, admin, n) for n in numbers])

        await eventually(all_delivered, 60, "the events waiting in the outbox being delivered")
        await asyncio.sleep(1)
        assert [len(await _mail_for(api, admin, n)) for n in numbers] == [1, 1, 1]


async def test_a_poison_event_ends_in_the_dead_letters_and_can_be_replayed(
    shop: RunningStack,
) -> None:
    secret = (shop.data_dir / "secret").read_text().strip()
    connection = await nats.connect(f"nats://{secret}@127.0.0.1:{shop.env['KANSOKU_NATS_PORT']}")
    try:
        await connection.jetstream().publish(
            "order.paid", json.dumps({"number": "KS-POISON"}).encode(),
            headers={"Nats-Msg-Id": f"poison-{uuid.uuid4().hex}"})
    finally:
        await connection.close()
    async with httpx.AsyncClient(timeout=30) as client:
        api = api_for(shop, client)
        admin = await api.login("admin@example.com", "admin-pass-1234")
        found: list[dict[str, Any]] = []

        async def dead() -> bool:
            nonlocal found
            letters = (await api.call("GET", "/admin/dead-letters", admin)).json()
            found = [d for d in letters if (d["payload"] or {}).get("number") == "KS-POISON"]
            return bool(found)

        await eventually(dead, 30, "the poison event reaching the dead letters")
        letter = found[0]
        assert letter["subject"] == "order.paid"
        assert letter["consumer"] == "order-confirmation"
        # The error names what the event lacks (the first field the function reads).
        assert "user_id" in letter["error"]
        replayed = await api.call("POST", f"/admin/dead-letters/{letter['sequence']}/replay",
                                  admin)
        assert replayed.status_code == 200 and replayed.json()["subject"] == "order.paid"

        async def dead_again() -> bool:
            await dead()
            return bool(found) and found[0]["sequence"] != letter["sequence"]

        # Still poison: it fails again and comes back as a new dead letter.
        await eventually(dead_again, 30, "the replayed poison event failing again")
