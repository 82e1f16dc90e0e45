"""Every Valkey command of the cart service.

A cart is one hash per user, `cart:<user id>`, product id → quantity, kept for a week
after its last change.

Beside the carts, the sorted set `carts:active` indexes every cart that holds items:
member the user id, score the time of the cart's last change (Valkey's clock, in
seconds). Each change updates it in the same transaction as the change itself, so the
index never disagrees with the cart: a change that leaves items (re)sets the score, a
change that empties the cart removes the member. The abandonment sweep takes out the
members whose score is older than its window. The index's name starts with `carts:`, not
`cart:`, so it can never collide with the cart of a user whose id is "active".
"""

from __future__ import annotations

import redis.asyncio as redis

CART_TTL_SECONDS = 7 * 24 * 3600

#: Sorted set: user id → time of the last change of their cart, for carts with items.
ACTIVE_CARTS_KEY = "carts:active"

#: How many idle carts one sweep step takes at most, so a large backlog never holds
#: Valkey (which runs one command at a time) busy for long.
SWEEP_BATCH = 500

# Run after a change, inside the change's transaction, so it sees the cart as the change
# left it. The time comes from Valkey, not from the caller: several cart instances and
# the sweep then share one clock. KEYS: the cart, the index; ARGV: the user id.
_TRACK_ACTIVITY = """
if redis.call('HLEN', KEYS[1]) > 0 then
  local now = redis.call('TIME')
  redis.call('ZADD', KEYS[2], string.format('%d.%06d', now[1], now[2]), ARGV[1])
else
  redis.call('ZREM', KEYS[2], ARGV[1])
end
"""

# Select and remove in one script: Valkey runs a script atomically, so a member is
# returned to exactly one caller however many sweeps run at once, and a cart changed
# between the selection and the removal cannot be removed by mistake.
# KEYS: the index; ARGV: the idle time in seconds, the batch size.
_TAKE_IDLE = """
local now = redis.call('TIME')
local cutoff = string.format('%.6f', now[1] + now[2] / 1e6 - tonumber(ARGV[1]))
local idle = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cutoff, 'LIMIT', 0, ARGV[2])
if #idle > 0 then
  redis.call('ZREM', KEYS[1], unpack(idle))
end
return idle
"""


def _key(user_id: str) -> str:
    return f"cart:{user_id}"


def _track_activity(pipe: redis.client.Pipeline, user_id: str) -> None:
    """Queue the index update that must follow every change of `user_id`'s cart."""
    pipe.eval(_TRACK_ACTIVITY, 2, _key(user_id), ACTIVE_CARTS_KEY, user_id)


async def items(client: redis.Redis, user_id: str) -> dict[int, int]:
    raw = await client.hgetall(_key(user_id))
    return {int(product): int(quantity) for product, quantity in raw.items()}


async def add(client: redis.Redis, user_id: str, product_id: int, quantity: int, cap: int
              ) -> int:
    """Add units (capped at `cap`) atomically; returns the line's new quantity."""
    key = _key(user_id)
    async with client.pipeline(transaction=True) as pipe:
        pipe.hincrby(key, str(product_id), quantity)
        pipe.expire(key, CART_TTL_SECONDS)
        _track_activity(pipe, user_id)
        new_quantity, _, _ = await pipe.execute()
    if int(new_quantity) > cap:
        await client.hset(key, str(product_id), cap)
        return cap
    return int(new_quantity)


async def set_quantity(client: redis.Redis, user_id: str, product_id: int, quantity: int
                       ) -> bool:
    """Set a line's quantity (0 removes it). False if the product is not in the cart."""
    key = _key(user_id)
    if not await client.hexists(key, str(product_id)):
        return False
    async with client.pipeline(transaction=True) as pipe:
        if quantity:
            pipe.hset(key, str(product_id), quantity)
        else:
            pipe.hdel(key, str(product_id))
        pipe.expire(key, CART_TTL_SECONDS)
        _track_activity(pipe, user_id)
        await pipe.execute()
    return True


async def remove(client: redis.Redis, user_id: str, product_id: int) -> bool:
    """Remove a line. False if the product was not in the cart."""
    async with client.pipeline(transaction=True) as pipe:
        pipe.hdel(_key(user_id), str(product_id))
        _track_activity(pipe, user_id)
        removed, _ = await pipe.execute()
    return bool(removed)


async def clear(client: redis.Redis, user_id: str) -> None:
    """Empty the cart (what checkout does): an empty cart is no longer active."""
    async with client.pipeline(transaction=True) as pipe:
        pipe.delete(_key(user_id))
        pipe.zrem(ACTIVE_CARTS_KEY, user_id)
        await pipe.execute()


async def take_idle_carts(client: redis.Redis, idle_seconds: float) -> list[str]:
    """Remove from the active index every cart unchanged for `idle_seconds`; return
    their user ids.

    Each user id is returned to exactly one caller, even when several cart instances
    sweep at the same moment, so whoever receives it may count it.
    """
    taken: list[str] = []
    while True:
        batch = await client.eval(_TAKE_IDLE, 1, ACTIVE_CARTS_KEY, idle_seconds, SWEEP_BATCH)
        taken.extend(member.decode() if isinstance(member, bytes) else str(member)
                     for member in batch)
        if len(batch) < SWEEP_BATCH:
            return taken
