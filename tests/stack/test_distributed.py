"""Distributed mode: with KANSOKU_DATABASE_URL, KANSOKU_NATS_URL and KANSOKU_REDIS_URL
set, `kansoku up` starts no embedded server and the services use the given ones."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import asyncpg
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
               KANSOKU_REDIS_URL=valkey_url,
               # Another loopback address: the services listen and are probed there.
               KANSOKU_HOST="127.0.0.2")
    result = await asyncio.to_thread(run_cli, "up", "--detach", env=env)
    assert result.returncode == 0, result.stderr
    try:
        status = json.loads((await asyncio.to_thread(run_cli, "status", "--json", env=env)
                             ).stdout)
        names = {component["name"] for component in status["components"]}
        assert names == set(topology.SERVICES_BY_NAME)
        assert not (tmp_path / "data" / "postgres").exists()
        gateway = f"http://127.0.0.2:{env['KANSOKU_GATEWAY_PORT']}"
        cart = f"http://127.0.0.2:{env['KANSOKU_CART_PORT']}"
        orders = f"http://127.0.0.2:{env['KANSOKU_ORDERS_PORT']}"
        assert {c["url"].split(":")[1] for c in status["components"]} == {"//127.0.0.2"}
        async with httpx.AsyncClient(timeout=10) as client:
            home = await client.get(gateway + "/")
            cart_ready = (await client.get(cart + "/health/ready")).json()
            orders_ready = (await client.get(orders + "/health/ready")).json()
        assert home.status_code == 200 and "Orion Refractor" in home.text
        assert cart_ready["checks"]["valkey"]["status"] == "up"
        assert set(orders_ready["checks"]) == {"postgresql", "nats"}
    finally:
        await asyncio.to_thread(run_cli, "down", env=env)


async def test_a_failing_migration_stops_start_up_with_one_line(
    tmp_path: Path, postgres_url: str, nats_url: str, valkey_url: str
) -> None:
    """A database whose catalog schema claims a revision kansoku does not have."""
    broken = await _database_with_unknown_catalog_revision(postgres_url)
    env = stack_environment(tmp_path / "data")
    env.update(KANSOKU_DATABASE_URL=broken, KANSOKU_NATS_URL=nats_url,
               KANSOKU_REDIS_URL=valkey_url)
    result = await asyncio.to_thread(run_cli, "up", "--detach", env=env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert "migrations failed" in lines[0] and "migrating catalog failed" in lines[0]
    status = json.loads((await asyncio.to_thread(run_cli, "status", "--json", env=env)).stdout)
    assert status["state"] == "stopped"


async def _database_with_unknown_catalog_revision(postgres_url: str) -> str:
    connection = await asyncpg.connect(postgres_url)
    try:
        await connection.execute("DROP DATABASE IF EXISTS broken")
        await connection.execute("CREATE DATABASE broken")
    finally:
        await connection.close()
    broken_url = postgres_url.rsplit("/", 1)[0] + "/broken"
    connection = await asyncpg.connect(broken_url)
    try:
        await connection.execute("CREATE SCHEMA catalog")
        await connection.execute("CREATE TABLE catalog.alembic_version (version_num text)")
        await connection.execute("INSERT INTO catalog.alembic_version VALUES ('from_the_future')")
    finally:
        await connection.close()
    return broken_url
