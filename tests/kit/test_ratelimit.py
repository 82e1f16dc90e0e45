"""Rate limits on a real Valkey, with a clock the test moves: the one-minute window turns
exactly at the minute, a refusal says how many seconds are left, and a limiter whose
Valkey is away lets every request through."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from datetime import datetime

import pytest
import redis.asyncio as redis

from kansoku.kit.errors import Problem
from kansoku.kit.ratelimit import RateLimiter
from tests.support import ManualClock, free_ports

#: A minute's first second: windows are minutes since the epoch, so they turn here.
MINUTE = datetime(2031, 5, 6, 7, 8, 0)


@pytest.fixture
async def valkey(valkey_url: str) -> AsyncIterator[redis.Redis]:
    client = redis.from_url(valkey_url)
    yield client
    await client.aclose()


def limiter(client: redis.Redis, clock: ManualClock) -> RateLimiter:
    """A limiter with keys of its own (tests share the Valkey)."""
    return RateLimiter(client, prefix=f"test-{uuid.uuid4().hex}", clock=clock.time)


async def refusal(limits: RateLimiter, kind: str = "address", key: str = "203.0.113.7",
                  per_minute: int = 3) -> Problem:
    """The problem `check` raises for one more request (failing if it lets it through)."""
    with pytest.raises(Problem) as refused:
        await limits.check(kind, key, per_minute)
    return refused.value


async def test_the_window_turns_exactly_at_the_minute(valkey: redis.Redis) -> None:
    clock = ManualClock(MINUTE)
    clock.advance(50)
    limits = limiter(valkey, clock)
    for _ in range(3):
        await limits.check("address", "203.0.113.7", 3)
    assert (await refusal(limits)).status == 429

    clock.advance(9.999)  # the window's last millisecond: still refused
    assert (await refusal(limits)).status == 429

    clock.advance(0.001)  # the next minute: a fresh window
    for _ in range(3):
        await limits.check("address", "203.0.113.7", 3)
    assert (await refusal(limits)).status == 429, "the new window counts from zero"


async def test_retry_after_is_the_seconds_left_in_the_window(valkey: redis.Redis) -> None:
    clock = ManualClock(MINUTE)
    clock.advance(15.5)
    limits = limiter(valkey, clock)
    await limits.check("user", "u-1", 1)

    refused = await refusal(limits, kind="user", key="u-1", per_minute=1)
    assert refused.headers == {"Retry-After": "44"}, "44.5 s left, in whole seconds"
    assert refused.code == "too-many-requests"
    assert refused.extensions == {"limit": 1}
    assert "at most 1 a minute" in refused.detail and "in 44 s" in refused.detail

    clock.advance(44.4)  # 0.1 s left: never "retry in 0 s"
    last = await refusal(limits, kind="user", key="u-1", per_minute=1)
    assert last.headers["Retry-After"] == "1"


async def test_keys_and_kinds_are_counted_apart(valkey: redis.Redis) -> None:
    clock = ManualClock(MINUTE)
    limits = limiter(valkey, clock)
    await limits.check("address", "203.0.113.7", 1)
    await limits.check("address", "198.51.100.2", 1)  # another address
    await limits.check("user", "203.0.113.7", 1)  # another kind, same key
    assert (await refusal(limits, per_minute=1)).status == 429


async def test_requests_pass_while_valkey_is_away(caplog: pytest.LogCaptureFixture) -> None:
    (closed,) = free_ports(1)
    client = redis.from_url(f"redis://127.0.0.1:{closed}/0", socket_connect_timeout=0.5)
    try:
        limits = limiter(client, ManualClock(MINUTE))
        with caplog.at_level(logging.WARNING, logger="kansoku.kit.ratelimit"):
            for _ in range(5):
                await limits.check("address", "203.0.113.7", 1)  # over the limit, no 429
    finally:
        await client.aclose()
    assert any("rate limits not enforced" in record.getMessage()
               for record in caplog.records), "the outage is logged"


async def test_a_refused_request_is_not_counted(valkey: redis.Redis) -> None:
    """Knocking on after a 429 spends nothing: the window's count stays at the limit."""
    clock = ManualClock(MINUTE)
    limits = limiter(valkey, clock)
    for _ in range(3):
        await limits.check("address", "203.0.113.7", 3)
    for _ in range(5):
        assert (await refusal(limits)).status == 429
    window = f"{limits.prefix}:address:203.0.113.7:{int(clock.time() // 60)}"
    assert await valkey.get(window) == b"3"
