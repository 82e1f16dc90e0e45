"""Cache-aside on a real Valkey: one load per expired hot key, invalidation by
generation, and reads that survive Valkey being away."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from kansoku.kit.cache import Cache
from tests.support import free_ports


@pytest.fixture
async def valkey(valkey_url: str) -> AsyncIterator[redis.Redis]:
    client = redis.from_url(valkey_url)
    yield client
    await client.aclose()


async def test_a_hot_key_is_loaded_once_however_many_ask(valkey: redis.Redis) -> None:
    cache = Cache(valkey, f"test-{id(valkey)}", ttl_seconds=30)
    loads = 0

    async def slow_load() -> dict[str, int]:
        nonlocal loads
        loads += 1
        await asyncio.sleep(0.2)
        return {"answer": 42}

    results = await asyncio.gather(*(cache.get_or_load("hot", slow_load) for _ in range(25)))
    assert results == [{"answer": 42}] * 25
    assert loads == 1, "the others waited for the first load instead of stampeding"
    assert await cache.get_or_load("hot", slow_load) == {"answer": 42}
    assert loads == 1, "then served from the cache"


async def test_invalidation_makes_every_entry_stale_at_once(valkey: redis.Redis) -> None:
    cache = Cache(valkey, f"inv-{id(valkey)}", ttl_seconds=30)
    version = {"value": 1}

    async def load() -> int:
        return version["value"]

    assert await cache.get_or_load("a", load) == 1
    version["value"] = 2
    assert await cache.get_or_load("a", load) == 1, "cached"
    await cache.invalidate()
    assert await cache.get_or_load("a", load) == 2


async def test_reads_fall_through_when_valkey_is_away() -> None:
    (closed,) = free_ports(1)
    client = redis.from_url(f"redis://127.0.0.1:{closed}/0", socket_connect_timeout=0.5)
    try:
        cache = Cache(client, "away")

        async def load() -> str:
            return "from the database"

        assert await cache.get_or_load("k", load) == "from the database"
        await cache.invalidate()  # logged, not raised
    finally:
        await client.aclose()


async def _command_calls(client: redis.Redis) -> dict[str, int]:
    """Calls per command so far, from the server's own statistics."""
    stats = await client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"])
            for name, value in stats.items()}


async def test_a_hit_is_one_round_trip(valkey: redis.Redis) -> None:
    """Generation and entry come back together: one command (and one span) per hit."""
    cache = Cache(valkey, f"trip-{id(valkey)}", ttl_seconds=30)

    async def load() -> list[int]:
        return [1, 2, 3]

    assert await cache.get_or_load("k", load) == [1, 2, 3]
    before = await _command_calls(valkey)
    assert await cache.get_or_load("k", load) == [1, 2, 3]
    after = await _command_calls(valkey)
    # `info` itself is the one other command counted between the two snapshots.
    sent = {name: calls - before.get(name, 0) for name, calls in after.items()
            if calls != before.get(name, 0) and name != "info"}
    assert sent == {"mget": 1}


async def test_a_change_during_a_load_is_not_hidden_by_its_result(
        valkey: redis.Redis) -> None:
    """A load that read the old data stores it under the old generation, so the read
    after the invalidation loads again instead of serving what was stale."""
    cache = Cache(valkey, f"race-{id(valkey)}", ttl_seconds=30)
    data = {"price": 100}

    async def load_while_data_changes() -> int:
        price = data["price"]
        data["price"] = 120
        await cache.invalidate()  # the writer's change lands while this load runs
        return price

    async def load() -> int:
        return data["price"]

    assert await cache.get_or_load("p", load_while_data_changes) == 100
    assert await cache.get_or_load("p", load) == 120


async def test_a_none_value_is_cached_like_any_other(valkey: redis.Redis) -> None:
    cache = Cache(valkey, f"none-{id(valkey)}", ttl_seconds=30)
    loads = 0

    async def load() -> None:
        nonlocal loads
        loads += 1

    assert await cache.get_or_load("n", load) is None
    assert await cache.get_or_load("n", load) is None
    assert loads == 1
