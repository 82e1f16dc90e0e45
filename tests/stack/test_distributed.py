"""Distributed mode: with KANSOKU_DATABASE_URL, KANSOKU_NATS_URL and KANSOKU_REDIS_URL
set, `kansoku up` starts no embedded server and the services use the given ones."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from kansoku import topology
from tests.support import run_cli, stack_environment

pytestmark = pytest.mark.stack


async def test_external_servers_are_used_and_embedded_ones_not_started(
    tmp_path: Path, postgres_url: str, nats_url: str, valkey_url: str
) -> None:
    env = stack_environment(tmp_path / "data")
    env.update(KANSOKU_DATABASE_URL=postgres_url, KANSOKU_NATS_URL=nats_url,
               KANSOKU_REDIS_URL=valkey_url)
    result = await asyncio.to_thread(run_cli, "up", "--detach", env=env)
    assert result.returncode == 0, result.stderr
    try:
        status = json.loads((await asyncio.to_thread(run_cli, "status", "--json", env=env)
                             ).stdout)
        names = {component["name"] for component in status["components"]}
        assert names == set(topology.SERVICES_BY_NAME)
        assert not (tmp_path / "data" / "postgres").exists()
        gateway = f"http://127.0.0.1:{env['KANSOKU_GATEWAY_PORT']}"
        cart = f"http://127.0.0.1:{env['KANSOKU_CART_PORT']}"
        orders = f"http://127.0.0.1:{env['KANSOKU_ORDERS_PORT']}"
        async with httpx.AsyncClient(timeout=10) as client:
            home = await client.get(gateway + "/")
            cart_ready = (await client.get(cart + "/health/ready")).json()
            orders_ready = (await client.get(orders + "/health/ready")).json()
        assert home.status_code == 200 and "Orion Refractor" in home.text
        assert cart_ready["checks"]["valkey"]["status"] == "up"
        assert set(orders_ready["checks"]) == {"postgresql", "nats"}
    finally:
        await asyncio.to_thread(run_cli, "down", env=env)
