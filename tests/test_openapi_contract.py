"""The API contract, checked by a tool nobody here wrote: schemathesis (`--checks all`)
against the gateway's public API — as an admin and as a customer — and against every
internal service's own document (identity, catalog, inventory, cart, orders, payments,
worker, lab) and the explorer's, all served for real (`serve_shop`) on the test
session's PostgreSQL, NATS and Valkey, in a database of this module's own.

Schemathesis generates requests from each OpenAPI document — valid ones, invalid ones,
boundary values, sequences that follow the API's links — and checks every answer: no
5xx, a documented status, content type, headers and schema, bad input refused, good
input taken, `Allow` on 405, a token that is checked. Each run is bounded (examples per
operation, a fixed seed, no example database) so the same cases run every time: the
gateway's runs with `EXAMPLES` a operation, the services' with `SERVICE_EXAMPLES`; the
`deep_contract` tests (KANSOKU_DEEP_CONTRACT=1) run every document with
`DEEP_EXAMPLES`, as the security review did.

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
from tests.support import database_of_its_own, new_customer, serve_in_thread

CONFIG = Path(__file__).with_name("schemathesis.toml")
#: Test cases per operation and phase: enough to reach every boundary the coverage
#: phase knows, bounded so the default runs stay near four minutes on a 2-core machine.
EXAMPLES = 10
SERVICE_EXAMPLES = 5
DEEP_EXAMPLES = 50
SEED = 20260115
SERVICE_SECRET = "contract-test-service-secret"
DEEP = pytest.mark.skipif(os.environ.get("KANSOKU_DEEP_CONTRACT") != "1",
                          reason="set KANSOKU_DEEP_CONTRACT=1 (about 30 minutes)")

#: Every service's document, and whose token its run sends: a customer's where the
#: service serves its users, an admin's where it serves the back office, orders' where
#: only orders may call (payments). The explorer takes no token (its login is off, as
#: on a laptop).
SERVICE_CALLERS = {"identity": "customer", "catalog": "admin", "inventory": "admin",
                   "cart": "customer", "orders": "customer", "payments": "orders",
                   "worker": "admin", "lab": "customer", "explorer": None}


@pytest.fixture(scope="module")
async def shop(postgres_url: str, valkey_url: str, nats_url: str, tmp_path_factory:
               pytest.TempPathFactory) -> AsyncIterator[ServedShop]:
    """Every service, in a database of its own (what schemathesis creates and changes
    meets no other module's tests). The worker and orders get service tokens (reports;
    reserving and charging); the lab's slow query sleeps milliseconds, not seconds."""
    secret = {"service_secret": SERVICE_SECRET}
    database = await database_of_its_own(postgres_url, "contract")
    async with serve_shop(
            Infrastructure(database, valkey_url, nats_url), list(SERVICE_CALLERS),
            settings={"identity": secret, "worker": secret, "orders": secret,
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
async def tokens(shop: ServedShop, gateway: str) -> dict[str, str]:
    """An admin's and a new customer's access tokens, taken before any run (a run may
    change its user's name; a password or e-mail address needs the current password,
    which schemathesis does not know), and orders' service token (payments takes
    charges from orders only)."""
    email, password = await new_customer(gateway, "Contract Tester")
    async with httpx.AsyncClient(base_url=shop.urls["identity"], timeout=30) as identity:
        service = await identity.post("/auth/service-token",
                                      json={"service": "orders", "secret": SERVICE_SECRET})
    assert service.status_code == 200, service.text
    return {"admin": await access_token(gateway, "admin@example.com", "admin-pass-1234"),
            "customer": await access_token(gateway, email, password),
            "orders": str(service.json()["access_token"])}


def schemathesis(schema_url: str, base_url: str, token: str | None, workdir: Path,
                 examples: int = EXAMPLES) -> subprocess.CompletedProcess[str]:
    """`schemathesis run --checks all` against one OpenAPI document."""
    authorization = ["--header", f"Authorization: Bearer {token}"] if token else []
    return subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run",
         schema_url, "--url", base_url, "--checks", "all",
         "--max-examples", str(examples), "--seed", str(SEED),
         "--generation-database", "none", "--request-timeout", "20", "--no-color",
         *authorization],
        capture_output=True, text=True, timeout=3600, cwd=workdir,
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


@pytest.mark.parametrize("service", list(SERVICE_CALLERS))
async def test_an_internal_api_keeps_its_contract(shop: ServedShop, tokens: dict[str, str],
                                                  service: str, tmp_path: Path) -> None:
    url, caller = shop.urls[service], SERVICE_CALLERS[service]
    run = await asyncio.to_thread(schemathesis, f"{url}/openapi.json", url,
                                  tokens[caller] if caller else None, tmp_path,
                                  SERVICE_EXAMPLES)
    assert_no_failures(run)


@DEEP
@pytest.mark.deep_contract
@pytest.mark.parametrize("service", ["gateway", *SERVICE_CALLERS])
async def test_every_api_keeps_its_contract_under_many_examples(
        shop: ServedShop, gateway: str, tokens: dict[str, str], service: str,
        tmp_path: Path) -> None:
    url, caller = ((gateway, "customer") if service == "gateway"
                   else (shop.urls[service], SERVICE_CALLERS[service]))
    document = f"{url}/api/openapi.json" if service == "gateway" else f"{url}/openapi.json"
    run = await asyncio.to_thread(schemathesis, document, url,
                                  tokens[caller] if caller else None, tmp_path, DEEP_EXAMPLES)
    assert_no_failures(run)
