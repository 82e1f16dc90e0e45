"""Health endpoints: live never checks dependencies; ready checks them with timeouts."""

from __future__ import annotations

import asyncio
import time

import httpx

from tests.kit.apps import make_app


async def healthy() -> None:
    return None


async def hangs() -> None:
    await asyncio.sleep(60)


async def refuses() -> None:
    raise ConnectionRefusedError("connection refused")


def client(**checks: object) -> httpx.AsyncClient:
    app = make_app(checks=checks, timeout=0.3)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_all_up() -> None:
    async with client(database=healthy) as http:
        ready = await http.get("/health/ready")
        summary = await http.get("/health")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"]["status"] == "up"
    assert summary.json()["ready"] is True
    assert summary.json()["service"] == "probe"


async def test_a_hanging_dependency_is_down_within_the_timeout() -> None:
    async with client(database=healthy, broker=hangs, cache=refuses) as http:
        started = time.monotonic()
        ready = await http.get("/health/ready")
        elapsed = time.monotonic() - started
        live = await http.get("/health/live")
    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert checks["database"]["status"] == "up"
    assert checks["broker"] == {"status": "down", "error": "no answer within 0.3s",
                                "duration_ms": checks["broker"]["duration_ms"]}
    assert "connection refused" in checks["cache"]["error"]
    # The checks run at once: the total is one timeout, not the sum.
    assert elapsed < 1.5
    assert live.status_code == 200
