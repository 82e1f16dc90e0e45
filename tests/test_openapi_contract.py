"""The API contract, checked by a tool nobody here wrote: schemathesis (`--checks all`)
against the gateway's public API — as an admin and as a customer — and against two
internal services, catalog and inventory, all served for real (`serve_shop`) on the test
session's PostgreSQL, NATS and Valkey.

Schemathesis generates requests from each OpenAPI document — valid ones, invalid ones,
boundary values, sequences that follow the API's links — and checks every answer: no
5xx, a documented status, content type, headers and schema, bad input refused, good
input taken, `Allow` on 405, a token that is checked. Each run is bounded (examples per
operation, a fixed seed, no example database) so the same cases run every time; all
four take about a minute and a half on a 2-core machine.

`tests/schemathesis.toml` holds the few facts a schema cannot say (which categories
exist, whether bytes are a picture, whether a card number passes the card network's
checks), each with its reason.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.services.shop import Infrastructure, ServedShop, serve_shop
from tests.support import new_customer, serve_in_thread

CONFIG = Path(__file__).with_name("schemathesis.toml")
#: Test cases per operation and phase: enough to reach every boundary the coverage
#: phase knows, bounded so the four runs stay near a minute and a half.
EXAMPLES = 10
SEED = 20260115
SERVICE_SECRET = "contract-test-service-secret"


@pytest.fixture(scope="module")
async def shop(postgres_url: str, valkey_url: str, nats_url: str, tmp_path_factory:
               pytest.TempPathFactory) -> AsyncIterator[ServedShop]:
    """Every service the gateway calls. The worker gets a service token (its reports);
    the lab's slow query sleeps milliseconds, not seconds."""
    secret = {"service_secret": SERVICE_SECRET}
    async with serve_shop(
            Infrastructure(postgres_url, valkey_url, nats_url),
            ["identity", "catalog", "inventory", "cart", "payments", "orders", "worker",
             "lab"],
            settings={"identity": secret, "worker": secret,
                      "lab": {"slow_query_min_seconds": 0.01,
                              "slow_query_max_seconds": 0.02}}) as served:
        yield served


@pytest.fixture(scope="module")
def gateway(shop: ServedShop, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The gateway in front of them, without rate limits (schemathesis sends a few
    thousand requests a minute from one address), with a flags file to switch."""
    flags = tmp_path_factory.mktemp("flags") / "flags.json"
    app = shop.gateway(rate_limit_per_ip=0, rate_limit_per_user=0, flags_file=flags)
    with serve_in_thread(app, lifespan="on") as url:
        yield url


async def access_token(gateway: str, email: str, password: str) -> str:
    async with httpx.AsyncClient(timeout=30) as client:
        answer = await client.post(f"{gateway}/api/v1/auth/login",
                                   json={"email": email, "password": password})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


@pytest.fixture(scope="module")
async def tokens(gateway: str) -> dict[str, str]:
    """An admin's and a new customer's access tokens, taken before any run: a run
    changes its user's password (`PATCH /users/me`), which a token outlives."""
    email, password = await new_customer(gateway, "Contract Tester")
    return {"admin": await access_token(gateway, "admin@example.com", "admin-pass-1234"),
            "customer": await access_token(gateway, email, password)}


def schemathesis(schema_url: str, base_url: str, token: str, workdir: Path
                 ) -> subprocess.CompletedProcess[str]:
    """`schemathesis run --checks all` against one OpenAPI document."""
    return subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run",
         schema_url, "--url", base_url, "--checks", "all",
         "--max-examples", str(EXAMPLES), "--seed", str(SEED),
         "--generation-database", "none", "--request-timeout", "20", "--no-color",
         "--header", f"Authorization: Bearer {token}"],
        capture_output=True, text=True, timeout=600, cwd=workdir,
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""})


def assert_no_failures(run: subprocess.CompletedProcess[str]) -> None:
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-20000:]


@pytest.mark.parametrize("who", ["admin", "customer"])
async def test_the_public_api_keeps_its_contract(gateway: str, tokens: dict[str, str],
                                                 who: str, tmp_path: Path) -> None:
    run = await asyncio.to_thread(schemathesis, f"{gateway}/api/openapi.json", gateway,
                                  tokens[who], tmp_path)
    assert_no_failures(run)


@pytest.mark.parametrize("service", ["catalog", "inventory"])
async def test_an_internal_api_keeps_its_contract(shop: ServedShop, tokens: dict[str, str],
                                                  service: str, tmp_path: Path) -> None:
    url = shop.urls[service]
    run = await asyncio.to_thread(schemathesis, f"{url}/openapi.json", url, tokens["admin"],
                                  tmp_path)
    assert_no_failures(run)
