"""Cache-aside in Valkey, for reads that are asked far more often than they change.

- Invalidation by generation: every key includes a namespace's generation number;
  a change bumps it, and every earlier entry is unreachable at once (they expire by
  their TTL). No key listing, no stale reads after a change.
- Stampede protection: when a hot entry expires, one caller recomputes it (it holds a
  short lock) while the others wait briefly for its result instead of all hitting the
  database at once.
- Valkey being away is never an error: reads fall through to the source.
- Hits and misses are counted (`kansoku.cache.requests`), so the hit ratio is a metric.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as redis
from opentelemetry import metrics

from kansoku.kit import semconv

logger = logging.getLogger(__name__)
_meter = metrics.get_meter("kansoku.cache")
_requests = _meter.create_counter(semconv.METRIC_CACHE_REQUESTS, unit="{request}",
                                  description="Cache lookups, by result (hit or miss)")


class Cache:
    def __init__(self, client: redis.Redis | None, namespace: str, ttl_seconds: float = 60,
                 lock_seconds: float = 2.0) -> None:
        self.client = client
        self.namespace = namespace
        self.ttl = ttl_seconds
        self.lock_seconds = lock_seconds

    async def _generation(self) -> int:
        assert self.client is not None
        value = await self.client.get(f"{self.namespace}:generation")
        return int(value or 0)

    async def get_or_load(self, key: str, load: Callable[[], Awaitable[Any]]) -> Any:
        """The cached value of `key`, or `load()`'s result, stored for next time. Values
        must be JSON-serialisable."""
        if self.client is None:
            return await load()
        try:
            full_key = f"{self.namespace}:{await self._generation()}:{key}"
            cached = await self.client.get(full_key)
        except redis.RedisError as exc:
            logger.warning("cache unavailable, reading from the source: %s", exc)
            return await load()
        if cached is not None:
            _requests.add(1, {semconv.CACHE_NAME: self.namespace, "result": "hit"})
            return json.loads(cached)
        _requests.add(1, {semconv.CACHE_NAME: self.namespace, "result": "miss"})
        return await self._load_once(full_key, load)

    async def _load_once(self, full_key: str, load: Callable[[], Awaitable[Any]]) -> Any:
        assert self.client is not None
        lock = f"{full_key}:lock"
        try:
            leader = await self.client.set(lock, "1", nx=True,
                                           px=int(self.lock_seconds * 1000))
            if not leader:
                # Someone is loading it: wait for their result, a little while.
                for _ in range(int(self.lock_seconds / 0.05)):
                    await asyncio.sleep(0.05)
                    cached = await self.client.get(full_key)
                    if cached is not None:
                        return json.loads(cached)
            value = await load()
            # Jitter, so entries made together do not all expire together.
            ttl = self.ttl * random.uniform(0.9, 1.1)  # noqa: S311 - not for security
            await self.client.set(full_key, json.dumps(value, default=str), px=int(ttl * 1000))
            if leader:
                await self.client.delete(lock)
            return value
        except redis.RedisError as exc:
            logger.warning("cache unavailable, reading from the source: %s", exc)
            return await load()

    async def invalidate(self) -> None:
        """Forget every entry of this namespace (after a change)."""
        if self.client is None:
            return
        try:
            await self.client.incr(f"{self.namespace}:generation")
        except redis.RedisError as exc:
            # Entries expire by their TTL; say loudly that they may be stale until then.
            logger.error("could not invalidate the %s cache: %s", self.namespace, exc)
