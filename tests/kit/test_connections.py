"""Connections to shared infrastructure: checked by readiness, never blocking start-up."""

from __future__ import annotations

import asyncio
import time

import pytest

from kansoku.kit.connections import Connections
from kansoku.kit.health import run_checks
from kansoku.kit.settings import ConfigurationError, ServiceSettings
from kansoku.kit.telemetry import Telemetry
from tests.support import eventually, free_ports


async def test_nats_away_at_start_up_is_reported_not_waited_for() -> None:
    (closed,) = free_ports(1)
    settings = ServiceSettings(nats_url=f"nats://127.0.0.1:{closed}")
    connections = Connections("orders", settings, Telemetry("orders"), nats_messaging=True)
    started = time.monotonic()
    await connections.open()
    assert time.monotonic() - started < 0.5, "start-up must not wait for NATS"
    results = await run_checks(connections.checks, timeout=1)
    assert results["nats"]["status"] == "down"
    assert "not connected" in results["nats"]["error"]
    started = time.monotonic()
    await connections.close()
    assert time.monotonic() - started < 2, "shutdown must not wait for NATS either"


async def test_all_three_connect_and_pass_readiness(
    postgres_url: str, nats_url: str, valkey_url: str
) -> None:
    settings = ServiceSettings(database_url=postgres_url, nats_url=nats_url,
                               redis_url=valkey_url)
    connections = Connections("orders", settings, Telemetry("orders"),
                              postgresql_schema="orders", valkey=True, nats_messaging=True)
    await connections.open()
    try:
        async def all_up() -> bool:
            results = await run_checks(connections.checks, timeout=1)
            return all(result["status"] == "up" for result in results.values())

        await eventually(all_up, 10, "postgresql, valkey and nats all up")
        assert set(connections.checks) == {"postgresql", "valkey", "nats"}
    finally:
        await asyncio.wait_for(connections.close(), 10)


def test_a_missing_url_names_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="KANSOKU_REDIS_URL is not set"):
        Connections("cart", ServiceSettings(), Telemetry("cart"), valkey=True)
