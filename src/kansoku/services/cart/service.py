"""The cart's logic: each user's own cart, nothing else."""

from __future__ import annotations

import redis.asyncio as redis
from opentelemetry import metrics

from kansoku.kit import semconv
from kansoku.kit.errors import Problem
from kansoku.services.cart import store
from kansoku.services.cart.schemas import MAX_QUANTITY, Cart, CartItem

_meter = metrics.get_meter("kansoku.cart")
_adds = _meter.create_counter(semconv.METRIC_CART_ADDS, unit="{unit}",
                              description="Units added to carts")


async def cart(client: redis.Redis, user_id: str) -> Cart:
    lines = await store.items(client, user_id)
    return Cart(items=[CartItem(product_id=product, quantity=quantity)
                       for product, quantity in sorted(lines.items())])


async def add(client: redis.Redis, user_id: str, item: CartItem) -> Cart:
    await store.add(client, user_id, item.product_id, item.quantity, MAX_QUANTITY)
    _adds.add(item.quantity)
    return await cart(client, user_id)


async def change(client: redis.Redis, user_id: str, product_id: int, quantity: int) -> Cart:
    if not await store.set_quantity(client, user_id, product_id, quantity):
        raise Problem(404, "not-in-cart", f"Product {product_id} is not in your cart.")
    return await cart(client, user_id)


async def remove(client: redis.Redis, user_id: str, product_id: int) -> Cart:
    if not await store.remove(client, user_id, product_id):
        raise Problem(404, "not-in-cart", f"Product {product_id} is not in your cart.")
    return await cart(client, user_id)


async def clear(client: redis.Redis, user_id: str) -> None:
    await store.clear(client, user_id)
