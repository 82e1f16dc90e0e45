"""Every Valkey command of the cart service. A cart is one hash per user,
`cart:<user id>`, product id → quantity, kept for a week after its last change."""

from __future__ import annotations

import redis.asyncio as redis

CART_TTL_SECONDS = 7 * 24 * 3600


def _key(user_id: str) -> str:
    return f"cart:{user_id}"


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
        new_quantity, _ = await pipe.execute()
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
        await pipe.execute()
    return True


async def remove(client: redis.Redis, user_id: str, product_id: int) -> bool:
    return bool(await client.hdel(_key(user_id), str(product_id)))


async def clear(client: redis.Redis, user_id: str) -> None:
    await client.delete(_key(user_id))
