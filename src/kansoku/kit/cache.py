"""Cache-aside in Valkey, for reads that are asked far more often than they change.

- Invalidation by generation: every entry is stored with the namespace's generation
  number at the time it was loaded; a change bumps the generation, and every earlier
  entry reads as a miss at once (they expire by their TTL). No key listing, no stale
  reads after a change.
- One round trip per read: the generation and the entry come back in one `MGET`, so a
  hit is one command (and one span), not two.
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
#: What `_read` returns for "no usable entry" (None is a value that can be cached).
_MISSING = object()

_requests = _meter.create_counter(semconv.METRIC_CACHE_REQUESTS, unit="{request}",
                                  description="Cache lookups, by result (hit or miss)")


class Cache:
    def __init__(self, client: redis.Redis | None, namespace: str, ttl_seconds: float = 60,
                 lock_seconds: float = 2.0) -> None:
        self.client = client
        self.namespace = namespace
        self.ttl = ttl_seconds
        self.lock_seconds = lock_seconds

    @property
    def _generation_key(self) -> str:
        return f"{self.namespace}:generation"

    async def _read(self, full_key: str) -> tuple[int, Any]:
        """The namespace's generation and the entry's value, or `_MISSING` when there is
        no entry of this generation."""
        assert self.client is not None
        generation, stored = await self.client.mget(self._generation_key, full_key)
        current = int(generation or 0)
        if stored is not None:
            try:
                entry_generation, value = json.loads(stored)
            except (ValueError, TypeError):  # not an entry this code wrote: reload it
                return current, _MISSING
            if entry_generation == current:
                return current, value
        return current, _MISSING

    async def get_or_load(self, key: str, load: Callable[[], Awaitable[Any]]) -> Any:
        """The cached value of `key`, or `load()`'s result, stored for next time. Values
        must be JSON-serialisable."""
        if self.client is None:
            return await load()
        full_key = f"{self.namespace}:{key}"
        try:
            generation, value = await self._read(full_key)
        except redis.RedisError as exc:
            logger.warning("cache unavailable, reading from the source: %s", exc)
            return await load()
        if value is not _MISSING:
            _requests.add(1, {semconv.CACHE_NAME: self.namespace, "result": "hit"})
            return value
        _requests.add(1, {semconv.CACHE_NAME: self.namespace, "result": "miss"})
        return await self._load_once(full_key, generation, load)

    async def _load_once(self, full_key: str, generation: int,
                         load: Callable[[], Awaitable[Any]]) -> Any:
        assert self.client is not None
        lock = f"{full_key}:{generation}:lock"
        try:
            leader = await self.client.set(lock, "1", nx=True,
                                           px=int(self.lock_seconds * 1000))
            if not leader:
                # Someone is loading it: wait for their result, a little while.
                for _ in range(int(self.lock_seconds / 0.05)):
                    await asyncio.sleep(0.05)
                    _, value = await self._read(full_key)
                    if value is not _MISSING:
                        return value
            value = await load()
            # Stored with the generation read before loading: if the data changed while
            # it loaded, the generation has moved on and this entry already reads as a
            # miss. Jitter, so entries made together do not all expire together.
            ttl = self.ttl * random.uniform(0.9, 1.1)  # noqa: S311 - not for security
            await self.client.set(full_key, json.dumps([generation, value], default=str),
                                  px=int(ttl * 1000))
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
            await self.client.incr(self._generation_key)
        except redis.RedisError as exc:
            # Entries expire by their TTL; say loudly that they may be stale until then.
            logger.error("could not invalidate the %s cache: %s", self.namespace, exc)
