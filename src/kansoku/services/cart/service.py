"""The cart's logic: each user's own cart, nothing else.

A cart is *abandoned* when it held items and then saw no change, and no checkout, for
the abandonment window (`abandon_after_seconds`). `count_abandoned_carts` finds such
carts and counts each one once, in `kansoku.cart.abandoned`; the cart service runs it
periodically in the background. A user who comes back to an abandoned cart and changes
it starts a new episode, which is counted again if they leave again.
"""

from __future__ import annotations

import logging

import redis.asyncio as redis
from opentelemetry import baggage, metrics
from opentelemetry import context as otel_context

from kansoku.kit import semconv
from kansoku.kit.errors import Problem
from kansoku.kit.i18n import _
from kansoku.services.cart import store
from kansoku.services.cart.schemas import MAX_QUANTITY, Cart, CartItem

logger = logging.getLogger(__name__)

_meter = metrics.get_meter("kansoku.cart")
_adds = _meter.create_counter(semconv.METRIC_CART_ADDS, unit="{unit}",
                              description="Units added to carts")


def abandoned_carts_counter(meter: metrics.Meter) -> metrics.Counter:
    """The `kansoku.cart.abandoned` counter, on `meter`.

    The app passes its telemetry's `kansoku.cart` meter (the same one `_meter` resolves
    to in a running service); tests pass a meter whose metrics they can read.
    """
    return meter.create_counter(semconv.METRIC_CART_ABANDONED, unit="{cart}",
                                description="Carts left with items, unchanged and not "
                                            "checked out, for the abandonment window")


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
        raise Problem(404, "not-in-cart", _("Product {product_id} is not in your cart.").format(
            product_id=product_id))
    return await cart(client, user_id)


async def remove(client: redis.Redis, user_id: str, product_id: int) -> Cart:
    if not await store.remove(client, user_id, product_id):
        raise Problem(404, "not-in-cart", _("Product {product_id} is not in your cart.").format(
            product_id=product_id))
    return await cart(client, user_id)


async def clear(client: redis.Redis, user_id: str) -> None:
    await store.clear(client, user_id)


async def count_abandoned_carts(client: redis.Redis, abandon_after_seconds: float,
                                abandoned: metrics.Counter) -> int:
    """Count, and log, the carts abandoned since the last sweep; returns how many.

    Safe to run from several cart instances at once: the store hands each abandoned
    cart to exactly one of them.
    """
    users = await store.take_idle_carts(client, abandon_after_seconds)
    for user_id in users:
        abandoned.add(1)
        # The user id goes in baggage, where request log lines carry it too, so this
        # line shows up among the user's other logs as `user_id`.
        token = otel_context.attach(baggage.set_baggage(semconv.BAGGAGE_USER_ID, user_id))
        try:
            logger.info("cart abandoned: it had items and no change for %g s",
                        abandon_after_seconds)
        finally:
            otel_context.detach(token)
    return len(users)
