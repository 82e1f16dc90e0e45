"""The whole platform, as a user starts it: `kansoku up --detach`, on private ports.

One stack serves every test in this module (starting it takes ~10 s); the last test
stops it and checks nothing is left behind.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
import pytest
import redis.asyncio as redis

from kansoku import topology
from kansoku.loadgen.outcomes import JOURNEY_NAMES, SKIPPED, SUCCESS
from tests.browser import missing_chromium
from tests.support import STACK_PORT_VARIABLES, eventually, port_is_free, run_cli, stack_environment

pytestmark = pytest.mark.stack


@dataclass
class RunningStack:
    env: dict[str, str]
    data_dir: Path

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.env[topology.port_variable(service)]}"

    def status(self) -> dict[str, Any]:
        result = run_cli("status", "--json", env=self.env, timeout=30)
        assert result.returncode == 0, result.stderr
        parsed: dict[str, Any] = json.loads(result.stdout)
        return parsed

    def component(self, name: str) -> dict[str, Any]:
        return next(c for c in self.status()["components"] if c["name"] == name)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    data_dir = tmp_path_factory.mktemp("stack") / "data"
    env = stack_environment(data_dir)
    result = run_cli("up", "--detach", env=env)
    assert result.returncode == 0, f"kansoku up failed:\n{result.stdout}\n{result.stderr}"
    assert "kansoku is ready" in result.stdout
    running = RunningStack(env, data_dir)
    try:
        yield running
    finally:
        run_cli("down", env=env)


def test_status_lists_every_component_healthy(stack: RunningStack) -> None:
    status = stack.status()
    assert status["state"] == "running"
    components = {c["name"]: c for c in status["components"]}
    expected = {"postgresql", "nats", "valkey", *topology.SERVICES_BY_NAME}
    assert set(components) == expected
    for name, component in components.items():
        assert component["state"] == "running", component
        assert component["health"] == "healthy", component
        assert psutil.pid_exists(component["pid"]), name
    assert components["catalog"]["url"] == stack.url("catalog")


async def test_embedded_servers_require_the_stack_secret(stack: RunningStack) -> None:
    """Other users of the machine cannot use the stack's servers without the secret."""
    postgres_port = int(stack.env["KANSOKU_POSTGRES_PORT"])
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(host="127.0.0.1", port=postgres_port, user="postgres",
                              password="guess", database="kansoku")
    valkey = redis.from_url(f"redis://127.0.0.1:{stack.env['KANSOKU_VALKEY_PORT']}/0")
    try:
        with pytest.raises(redis.AuthenticationError):
            await valkey.ping()
    finally:
        await valkey.aclose()
    secret = (stack.data_dir / "secret").read_text().strip()
    assert (stack.data_dir / "secret").stat().st_mode & 0o077 == 0
    connection = await asyncpg.connect(host="127.0.0.1", port=postgres_port, user="postgres",
                                       password=secret, database="kansoku")
    await connection.close()
    # The secret appears in no log and not in the state file.
    for path in [*(stack.data_dir / "logs").iterdir(), stack.data_dir / "run" / "state.json"]:
        assert secret not in path.read_text(errors="replace"), path


def test_status_says_whether_the_browser_synthetic_runs(stack: RunningStack) -> None:
    """On where Chromium and Playwright are (scripts/test installs both); then `status`
    says nothing of it (tests/stack/test_foreground.py: what it says when off)."""
    if reason := missing_chromium():
        pytest.skip(reason)
    assert stack.status()["browser_synthetic"] == {"on": True, "reason": None,
                                                   "command": None}
    assert "Browser synthetic" not in run_cli("status", env=stack.env, timeout=30).stdout


def test_status_table_for_people(stack: RunningStack) -> None:
    # Captured, as `kansoku status | cat` is: not a terminal, and no COLUMNS to go by
    # (nor colours forced on).
    env = {key: value for key, value in stack.env.items()
           if key not in ("COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE")}
    result = run_cli("status", env=env, timeout=30)
    assert result.returncode == 0
    rows = {line.split()[1]: line for line in result.stdout.splitlines()
            if line.startswith("│")}
    for component in stack.status()["components"]:
        # Each component on one line, with its whole URL (Rich used to cut the table
        # to 80 columns, and the URLs to "postgresql://127.0.0.1…").
        assert f" {component['url']} " in rows[component["name"]], result.stdout


def test_the_services_are_forked_from_one_template_and_share_its_pages(
        stack: RunningStack) -> None:
    state = json.loads((stack.data_dir / "run" / "state.json").read_text())
    template = psutil.Process(state["supervisor"]["template_pid"])
    assert template.ppid() == state["supervisor"]["pid"]
    for service in topology.SERVICES:
        process = psutil.Process(stack.component(service.name)["pid"])
        assert process.ppid() == template.pid, service.name
        assert process.name() == f"kansoku-{service.name}"[:15]
        # Its own session: a signal to the template's group never reaches it.
        assert os.getsid(process.pid) == process.pid
        # Much of what it holds is the template's pages, shared: its proportional share
        # (PSS) is well under what it maps (RSS). Started on its own, a service's PSS
        # was three quarters of its RSS; forked, under half.
        # (The explorer's DuckDB buffers are its own: not held to it.)
        memory = process.memory_full_info()
        assert service.name == "explorer" or memory.pss < 0.6 * memory.rss, \
            (service.name, memory)


def test_every_service_answers_its_health_endpoints(stack: RunningStack) -> None:
    for service in topology.SERVICES:
        for path in ("/health/live", "/health/ready", "/health"):
            response = httpx.get(stack.url(service.name) + path, timeout=5)
            assert response.status_code == 200, (service.name, path, response.text)
        summary = httpx.get(stack.url(service.name) + "/health", timeout=5).json()
        assert summary["service"] == service.name
        assert summary["ready"] is True


async def test_the_synthetic_monitors_start_last_and_walk_the_shop(stack: RunningStack
                                                                   ) -> None:
    """`synthetics` is started once every other service is ready, so its first round —
    which runs at once — finds a working shop: browse and checkout succeed, and the
    browser journey too (or is skipped where there is no Chromium)."""
    started = {c["name"]: c["process_started"] for c in stack.status()["components"]}
    assert started["synthetics"] > max(when for name, when in started.items()
                                       if name != "synthetics")
    runs: list[dict[str, Any]] = []

    async def first_round_done() -> bool:
        async with httpx.AsyncClient(timeout=10) as http:
            runs[:] = (await http.get(stack.url("synthetics") + "/runs")).json()["data"]
        return len(runs) >= len(JOURNEY_NAMES)

    await eventually(first_round_done, 60, "the monitors' first round")
    first_round = {run["journey"]: run for run in runs[-len(JOURNEY_NAMES):]}
    assert set(first_round) == set(JOURNEY_NAMES)
    for name, run in first_round.items():
        expected = SKIPPED if name == "storefront" and missing_chromium() else SUCCESS
        assert run["outcome"] == expected, run
    if missing_chromium():
        return

    # The browser journey leaves its last page as a person would, so the product page's
    # LCP (where imageSlowLoad shows) reaches the explorer too, not only the home page's.
    async def both_pages_measured() -> bool:
        async with httpx.AsyncClient(timeout=10) as http:
            vitals = (await http.get(stack.url("explorer") + "/api/vitals", params={
                "lookback": "15m"})).json()["data"]["vitals"]
        pages = {row["page"] for row in vitals if row["name"] == "LCP"}
        return "/" in pages and any(page.startswith("/products/") for page in pages)

    await eventually(both_pages_measured, 30, "the LCP of the journey's two pages")


def test_home_page_lists_products_from_the_catalog(stack: RunningStack) -> None:
    response = httpx.get(stack.url("gateway") + "/", headers={"Accept": "text/html"},
                         timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.text.count('class="card product"') == 24
    # The first demo product, read by the catalog from PostgreSQL.
    assert "Orion Refractor" in response.text
    assert "of 200 products" in response.text


def test_metrics_are_exposed_for_prometheus(stack: RunningStack) -> None:
    httpx.get(stack.url("gateway") + "/", timeout=10)
    text = httpx.get(stack.url("catalog") + "/metrics", timeout=5).text
    assert "kansoku_catalog_products_listed" in text
    assert "http_server_duration" in text or "http_server_request_duration" in text


async def _forget_cached_catalog_reads(stack: RunningStack) -> None:
    """Start a new cache generation, so the next catalog read goes to PostgreSQL."""
    secret = (stack.data_dir / "secret").read_text().strip()
    valkey = redis.from_url(f"redis://:{secret}@127.0.0.1:{stack.env['KANSOKU_VALKEY_PORT']}/0")
    try:
        await valkey.incr("catalog:generation")
    finally:
        await valkey.aclose()


async def test_one_trace_crosses_gateway_catalog_and_postgresql(stack: RunningStack) -> None:
    await _forget_cached_catalog_reads(stack)
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(stack.url("gateway") + "/",
                                    headers={"baggage": "enduser.id=user-42"})
        assert response.status_code == 200
        request_id = response.headers["x-request-id"]

        spans: list[dict[str, Any]] = []

        async def trace_complete() -> bool:
            nonlocal spans
            trace_id = _trace_id_from_logs(stack.data_dir / "logs" / "gateway.log", request_id)
            if trace_id is None:
                return False
            answer = await client.get(f"{stack.url('explorer')}/api/spans/{trace_id}")
            if answer.status_code != 200:
                return False
            spans = answer.json()["data"]["spans"]
            services = {span["service"] for span in spans}
            # A server span ends after its children, so it may arrive in a later export
            # than they do (the gateway's root, the catalog's server spans): the trace is
            # whole once every parent is there too.
            ids = {span["span_id"] for span in spans}
            return {"gateway", "catalog"} <= services and any(
                span["attributes"].get("db.statement") for span in spans) and all(
                span["parent_span_id"] is None or span["parent_span_id"] in ids
                for span in spans)

        await eventually(trace_complete, 15, "the trace reaching the explorer")

    by_id = {span["span_id"]: span for span in spans}
    roots = [span for span in spans if span["parent_span_id"] is None]
    assert len(roots) == 1 and roots[0]["service"] == "gateway"
    assert roots[0]["kind"] == "server"
    # Every other span's parent is in the trace: no broken links.
    for span in spans:
        if span["parent_span_id"] is not None:
            assert span["parent_span_id"] in by_id, span
    # The home page asks the catalog for products (and, when not cached yet, for the
    # categories): each catalog server span is the child of a gateway client span.
    catalog_servers = [s for s in spans if s["service"] == "catalog" and s["kind"] == "server"]
    assert catalog_servers
    for catalog_server in catalog_servers:
        gateway_client = by_id[catalog_server["parent_span_id"]]
        assert gateway_client["service"] == "gateway" and gateway_client["kind"] == "client"
    db_spans = [s for s in spans if s["attributes"].get("db.statement")]
    assert db_spans and all(s["service"] == "catalog" for s in db_spans)
    assert any("FROM catalog.products" in s["attributes"]["db.statement"] for s in db_spans)
    catalog_server_ids = {s["span_id"] for s in catalog_servers}
    for span in db_spans:
        assert span["parent_span_id"] in catalog_server_ids
    # The user id from baggage is on every span, in both services.
    assert all(span["attributes"].get("enduser.id") == "user-42" for span in spans)


def _trace_id_from_logs(log: Path, request_id: str) -> str | None:
    for line in log.read_text().splitlines():
        if line.startswith("{") and request_id in line:
            record = json.loads(line)
            if record.get("request_id") == request_id and record.get("trace_id"):
                return str(record["trace_id"])
    return None


def test_logs_are_json_with_trace_and_request_ids(stack: RunningStack) -> None:
    response = httpx.get(stack.url("gateway") + "/", headers={"baggage": "enduser.id=ana"},
                         timeout=10)
    request_id = response.headers["x-request-id"]
    time.sleep(0.3)
    for service in ("gateway", "catalog"):
        records = [json.loads(line) for line in
                   (stack.data_dir / "logs" / f"{service}.log").read_text().splitlines()
                   if line.startswith("{")]
        mine = [r for r in records if r.get("request_id") == request_id]
        assert mine, f"no {service} record with the gateway's request id"
        for record in mine:
            assert {"time", "level", "service", "message", "trace_id", "span_id"} <= set(record)
            assert record["service"] == service
            assert record["user_id"] == "ana"


async def test_killed_catalog_gives_503_then_is_restarted(stack: RunningStack) -> None:
    before = stack.component("catalog")
    os.kill(before["pid"], signal.SIGKILL)
    async with httpx.AsyncClient(timeout=30) as client:
        started = time.monotonic()
        response = await client.get(stack.url("gateway") + "/")
        elapsed = time.monotonic() - started
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["dependency"] == "catalog"
        assert problem["request_id"] == response.headers["x-request-id"]
        assert "Traceback" not in response.text
        assert elapsed < 3, f"the gateway took {elapsed:.1f}s to give up"

        async def page_works() -> bool:
            return (await client.get(stack.url("gateway") + "/")).status_code == 200

        await eventually(page_works, 30, "the storefront recovering")

    after = stack.component("catalog")
    assert after["restarts"] == before["restarts"] + 1
    assert after["pid"] != before["pid"]
    assert after["state"] == "running"
    log = (stack.data_dir / "logs" / "supervisor.log").read_text()
    assert "catalog exited with code -9; restarting" in log


async def test_hanging_catalog_times_out_instead_of_hanging(stack: RunningStack) -> None:
    pid = stack.component("catalog")["pid"]
    os.kill(pid, signal.SIGSTOP)
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            started = time.monotonic()
            response = await client.get(stack.url("gateway") + "/",
                                        headers={"Accept": "text/html"})
            elapsed = time.monotonic() - started
        assert response.status_code == 503
        assert "right back" in response.text and "catalog" in response.text
        assert elapsed < 6, f"the gateway waited {elapsed:.1f}s"
    finally:
        os.kill(pid, signal.SIGCONT)


async def test_public_api_register_login_profile_with_the_user_on_every_span(
    stack: RunningStack,
) -> None:
    api = stack.url("gateway") + "/api/v1"
    async with httpx.AsyncClient(timeout=15) as client:
        created = await client.post(f"{api}/users", json={
            "name": "John Doe", "email": "john.doe@example.com", "password": "securepassword"})
        assert created.status_code == 201, created.text
        user_id = created.json()["id"]
        bad = await client.post(f"{api}/auth/login", json={
            "email": "john.doe@example.com", "password": "wrong-password"})
        assert bad.status_code == 401
        assert bad.headers["content-type"] == "application/problem+json"
        assert bad.json()["request_id"] == bad.headers["x-request-id"]
        tokens = (await client.post(f"{api}/auth/login", json={
            "email": "john.doe@example.com", "password": "securepassword"})).json()
        me = await client.get(f"{api}/users/me",
                              headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert me.status_code == 200 and me.json()["id"] == user_id
        request_id = me.headers["x-request-id"]
        anonymous = await client.get(f"{api}/users/me")
        assert anonymous.status_code == 401

        spans: list[dict[str, Any]] = []

        async def trace_complete() -> bool:
            nonlocal spans
            trace_id = _trace_id_from_logs(stack.data_dir / "logs" / "gateway.log", request_id)
            if trace_id is None:
                return False
            answer = await client.get(f"{stack.url('explorer')}/api/spans/{trace_id}")
            spans = answer.json()["data"]["spans"] if answer.status_code == 200 else []
            return {"gateway", "identity"} <= {span["service"] for span in spans}

        await eventually(trace_complete, 15, "the profile trace reaching the explorer")
    # The user comes from the verified token, not from anything the client claimed.
    for service in ("gateway", "identity"):
        assert any(span["attributes"].get("enduser.id") == user_id
                   for span in spans if span["service"] == service), service
    # No password or token is in any span attribute.
    text = json.dumps(spans)
    assert "securepassword" not in text and tokens["access_token"] not in text


async def test_demo_accounts_and_the_api_documentation(stack: RunningStack) -> None:
    api = stack.url("gateway") + "/api/v1"
    async with httpx.AsyncClient(timeout=15) as client:
        admin = await client.post(f"{api}/auth/login", json={
            "email": "admin@example.com", "password": "admin-pass-1234"})
        spec = (await client.get(stack.url("gateway") + "/api/openapi.json")).json()
        docs = await client.get(stack.url("gateway") + "/api/docs")
        page = await client.get(f"{api}/products", params={"q": "refractor", "sort": "-price"})
    assert admin.status_code == 200
    assert {"/api/v1/users", "/api/v1/auth/login", "/api/v1/products"} <= set(spec["paths"])
    assert "/" not in spec["paths"]
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    prices = [float(item["price"]) for item in page.json()["items"]]
    assert page.json()["total"] == 5 and prices == sorted(prices, reverse=True)


def test_every_service_documents_its_api_with_files_of_its_own(stack: RunningStack) -> None:
    """Swagger UI and ReDoc on every service, the explorer and the gateway load their
    scripts from the service itself, never a CDN (tests/kit/test_docs_in_browser.py shows
    them in a browser with no network)."""
    for service in topology.SERVICES:
        prefix = "/api" if service.name == "gateway" else ""
        for page, script in (("docs", "swagger-ui-bundle.js"), ("redoc", "redoc.standalone.js")):
            html = httpx.get(f"{stack.url(service.name)}{prefix}/{page}", timeout=5)
            assert html.status_code == 200, (service.name, page)
            assert f'src="{prefix}/docs/assets/{script}"' in html.text, (service.name, page)
            assert "cdn.jsdelivr.net" not in html.text, (service.name, page)
            asset = httpx.get(f"{stack.url(service.name)}{prefix}/docs/assets/{script}",
                              timeout=5)
            assert asset.status_code == 200, (service.name, script)


async def test_admin_creates_a_product_with_stock_and_customers_cannot(
    stack: RunningStack,
) -> None:
    api = stack.url("gateway") + "/api/v1"
    async with httpx.AsyncClient(timeout=15) as client:
        async def token(email: str, password: str) -> dict[str, str]:
            answer = await client.post(f"{api}/auth/login",
                                       json={"email": email, "password": password})
            return {"Authorization": f"Bearer {answer.json()['access_token']}"}

        admin = await token("admin@example.com", "admin-pass-1234")
        customer = await token("alice@example.com", "alice-pass-1234")
        laptop = {"name": "Premium Laptop", "price": "1299.99", "currency": "USD",
                  "description": "High-performance laptop for professionals",
                  "inventory": 100}
        refused = await client.post(f"{api}/products", json=laptop, headers=customer)
        created = await client.post(f"{api}/products", json=laptop, headers=admin)
        assert refused.status_code == 403
        assert created.status_code == 201, created.text
        product = created.json()
        assert (product["price"], product["stock"], product["stock_status"]) == (
            "1299.99", 100, "in_stock")
        detail = (await client.get(f"{api}/products/{product['id']}")).json()
        assert detail["stock"] == 100
        restocked = await client.post(f"{api}/inventory/{product['id']}/adjust",
                                      json={"delta": -98, "reason": "shelf count"},
                                      headers=admin)
        assert restocked.json()["status"] == "low"
        low = await client.get(f"{api}/inventory", params={"low_only": True, "limit": 200},
                               headers=admin)
        assert product["id"] in {item["product_id"] for item in low.json()["items"]}
        # The demo stock: product 23 is sold out, product 7 is low.
        sold_out = (await client.get(f"{api}/products/23")).json()
        assert (sold_out["stock"], sold_out["stock_status"]) == (0, "out")


def _refuses_connections(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_a_stopped_service_stays_stopped_until_started(stack: RunningStack) -> None:
    before = stack.component("payments")
    port = int(stack.env[topology.port_variable("payments")])
    stopped = run_cli("stop", "payments", env=stack.env, timeout=60)
    assert stopped.returncode == 0, stopped.stderr
    assert "payments stopped" in stopped.stdout
    try:
        assert _refuses_connections(port)
        # Longer than the first restart delays (0.5 s, 1 s, 2 s): it stays away.
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            assert _refuses_connections(port), "payments came back by itself"
            time.sleep(0.5)
        component = stack.component("payments")
        assert (component["state"], component["health"], component["pid"]) == (
            "stopped", "down", None)
        assert component["held"] is True
        assert component["restarts"] == before["restarts"]
        assert not _running(before["pid"])
        again = run_cli("stop", "payments", env=stack.env, timeout=30)
        assert again.returncode == 0 and "payments is already stopped" in again.stdout
        table = run_cli("status", env=stack.env, timeout=30).stdout
        assert any("payments" in line and "stopped" in line for line in table.splitlines())
    finally:
        started = run_cli("start", "payments", env=stack.env, timeout=120)
    assert started.returncode == 0, started.stderr
    assert "payments is running and ready" in started.stdout
    component = stack.component("payments")
    assert (component["state"], component["health"], component["held"]) == (
        "running", "healthy", False)
    assert component["pid"] != before["pid"]
    assert httpx.get(stack.url("payments") + "/health/ready", timeout=5).status_code == 200
    again = run_cli("start", "payments", env=stack.env, timeout=30)
    assert again.returncode == 0 and "payments is already running" in again.stdout


async def test_stopping_nats_is_seen_by_the_services_until_it_is_started(
    stack: RunningStack,
) -> None:
    port = int(stack.env["KANSOKU_NATS_PORT"])
    stopped = run_cli("stop", "nats", env=stack.env, timeout=60)
    assert stopped.returncode == 0, stopped.stderr
    async with httpx.AsyncClient(timeout=5) as client:
        try:
            assert _refuses_connections(port)

            async def orders_not_ready() -> bool:
                answer = await client.get(stack.url("orders") + "/health/ready")
                return answer.status_code != 200

            await eventually(orders_not_ready, 15, "orders noticing that NATS is away")
            assert _refuses_connections(port), "nats came back by itself"
            assert stack.component("nats")["state"] == "stopped"
        finally:
            started = run_cli("start", "nats", env=stack.env, timeout=120)
        assert started.returncode == 0, started.stderr
        assert "nats is running and ready" in started.stdout
        assert stack.component("nats")["state"] == "running"

        async def orders_ready() -> bool:
            answer = await client.get(stack.url("orders") + "/health/ready")
            return answer.status_code == 200

        await eventually(orders_ready, 30, "orders reconnecting to NATS")


def test_stop_and_start_name_the_components_they_know(stack: RunningStack,
                                                      tmp_path: Path) -> None:
    for command in ("stop", "start"):
        result = run_cli(command, "paymnets", env=stack.env, timeout=30)
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert "no component 'paymnets'" in lines[0]
        assert all(name in lines[0] for name in ("nats", "payments", "gateway"))
    unnamed = run_cli("stop", env=stack.env, timeout=30)
    assert unnamed.returncode == 2 and "kansoku down" in unnamed.stderr
    assert stack.status()["state"] == "running"
    elsewhere = {**stack.env, "KANSOKU_DATA_DIR": str(tmp_path / "nothing")}
    not_running = run_cli("stop", "payments", env=elsewhere, timeout=30)
    assert not_running.returncode == 1
    assert len(not_running.stderr.strip().splitlines()) == 1
    assert "kansoku is not running" in not_running.stderr
    assert "kansoku up" in not_running.stderr


def test_second_up_on_the_same_data_dir_is_refused(stack: RunningStack) -> None:
    result = run_cli("up", "--detach", env=stack.env)
    assert result.returncode == 1
    assert "kansoku is already running" in result.stderr
    assert "kansoku down" in result.stderr
    assert stack.status()["state"] == "running"


def test_down_leaves_no_process(stack: RunningStack) -> None:
    state = json.loads((stack.data_dir / "run" / "state.json").read_text())
    pids = [c["pid"] for c in state["components"] if c["pid"]] + [state["supervisor"]["pid"]]
    # The process the services were forked from goes too.
    assert state["supervisor"]["template_pid"] is not None
    pids.append(state["supervisor"]["template_pid"])
    result = run_cli("down", env=stack.env)
    assert result.returncode == 0
    assert "stopped" in result.stdout
    alive = [pid for pid in pids if _running(pid)]
    assert alive == []
    ports = [int(stack.env[variable]) for variable in STACK_PORT_VARIABLES]
    assert [port for port in ports if not port_is_free(port)] == []
    status = json.loads(run_cli("status", "--json", env=stack.env).stdout)
    assert status["state"] == "stopped"
    assert {c["state"] for c in status["components"]} == {"stopped"}
    assert all(c["pid"] is None for c in status["components"])


def _running(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False

