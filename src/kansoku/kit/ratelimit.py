"""Request rate limits, counted in Valkey so every gateway instance shares them.

A fixed one-minute window per key (an IP address, a user): simple, cheap (one round
trip) and easy to reason about in a dashboard. Over the limit: 429 with Retry-After,
the seconds until the window turns. Valkey away: requests pass (and it is logged) —
an outage of the limiter must not become an outage of the shop.

A request the limit refuses is taken back from the count: a client that goes on
knocking after its 429 does not push its own window's count (or anyone's) any higher,
and what it sends past the limit costs one Valkey round trip more, no state.

Windows follow the limiter's wall clock (`time.time` unless given another), so every
instance turns them at the same minute and a test can move the clock to turn one.
"""

from __future__ import annotations

import logging

import redis.asyncio as redis
from opentelemetry import metrics

from kansoku.kit import semconv
from kansoku.kit.clock import WallClock, wall_time
from kansoku.kit.errors import Problem
from kansoku.kit.i18n import _

logger = logging.getLogger(__name__)
_meter = metrics.get_meter("kansoku.ratelimit")
_limited = _meter.create_counter(semconv.METRIC_RATE_LIMITED, unit="{request}",
                                 description="Requests refused by a rate limit, by kind")


class RateLimiter:
    """Fixed one-minute windows in Valkey under `<prefix>:<kind>:<key>:<minute>`; no
    `client`, no limits."""

    def __init__(self, client: redis.Redis | None, prefix: str = "ratelimit", *,
                 clock: WallClock = wall_time) -> None:
        self.client = client
        self.prefix = prefix
        self.clock = clock

    async def check(self, kind: str, key: str, per_minute: int) -> None:
        """Count one request for `key`; raise 429 if it is over `per_minute`."""
        if self.client is None or per_minute <= 0:
            return
        now = self.clock()
        window_key = f"{self.prefix}:{kind}:{key}:{int(now // 60)}"
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.incr(window_key)
                pipe.expire(window_key, 90)
                count, _expiry_set = await pipe.execute()
            if int(count) > per_minute:
                await self.client.decr(window_key)  # refused: not spent
        except redis.RedisError as exc:
            logger.warning("rate limits not enforced, Valkey is away: %s", exc)
            return
        if int(count) > per_minute:
            _limited.add(1, {"kind": kind})
            retry_after = max(1, int(60 - now % 60))
            raise Problem(429, "too-many-requests",
                          _too_many(kind).format(per_minute=per_minute, seconds=retry_after),
                          headers={"Retry-After": str(retry_after)}, limit=per_minute)


def _too_many(kind: str) -> str:
    """The 429's sentence, in the reader's language, for the kinds of key the gateway
    counts by (a user, an address, a page's telemetry session); any other kind goes
    unnamed."""
    if kind == "user":
        return _("Too many requests from this user: at most {per_minute} a minute. Try "
                 "again in {seconds} s.")
    if kind == "address":
        return _("Too many requests from this address: at most {per_minute} a minute. "
                 "Try again in {seconds} s.")
    if kind == "session":
        return _("Too many requests from this session: at most {per_minute} a minute. "
                 "Try again in {seconds} s.")
    return _("Too many requests: at most {per_minute} a minute. Try again in {seconds} s.")
