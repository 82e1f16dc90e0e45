"""Every SQL statement of the inventory. Functions take the request's session.

Stock changes are single UPDATE statements whose WHERE clause states the rule (enough
available, never below what is reserved): concurrent checkouts are serialised by the
row lock, and no interleaving can oversell.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from kansoku.kit import outbox
from kansoku.kit.fields import INT32_MAX
from kansoku.services.inventory.models import Adjustment, OutboxMessage, Reservation, Stock


async def levels(session: AsyncSession, product_ids: Sequence[int]) -> Sequence[Stock]:
    query = select(Stock).where(Stock.product_id.in_(product_ids)).order_by(Stock.product_id)
    return (await session.scalars(query)).all()


async def list_levels(session: AsyncSession, *, limit: int, offset: int, low_only: bool
                      ) -> Sequence[Stock]:
    query = select(Stock).order_by(Stock.product_id).limit(limit).offset(offset)
    if low_only:
        query = query.where(Stock.on_hand - Stock.reserved <= Stock.low_stock_threshold)
    return (await session.scalars(query)).all()


async def count_levels(session: AsyncSession, *, low_only: bool) -> int:
    query = select(func.count()).select_from(Stock)
    if low_only:
        query = query.where(Stock.on_hand - Stock.reserved <= Stock.low_stock_threshold)
    return int(await session.scalar(query) or 0)


async def add_stock(session: AsyncSession, product_id: int, units: int) -> Stock | None:
    """Add units (creating the product's stock row the first time), unless on-hand would
    pass what its `integer` column holds."""
    row = (await session.execute(text(
        "INSERT INTO stock (product_id, on_hand) VALUES (:product_id, :units) "
        "ON CONFLICT (product_id) DO UPDATE SET on_hand = stock.on_hand + EXCLUDED.on_hand, "
        "updated_at = now() WHERE stock.on_hand <= :most - EXCLUDED.on_hand "
        "RETURNING product_id"),
        {"product_id": product_id, "units": units, "most": INT32_MAX})).scalar()
    return await _fresh(session, row) if row is not None else None


async def remove_stock(session: AsyncSession, product_id: int, units: int) -> Stock | None:
    """Remove units, unless that would take on-hand below what is reserved."""
    row = (await session.execute(text(
        "UPDATE stock SET on_hand = on_hand - :units, updated_at = now() "
        "WHERE product_id = :product_id AND on_hand - :units >= reserved "
        "RETURNING product_id"), {"product_id": product_id, "units": units})).scalar()
    return await _fresh(session, row) if row is not None else None


async def _fresh(session: AsyncSession, product_id: int) -> Stock:
    stock = await session.get(Stock, product_id, populate_existing=True)
    assert stock is not None
    return stock


async def add_adjustment(session: AsyncSession, adjustment: Adjustment) -> None:
    session.add(adjustment)
    await session.flush()


async def hold(session: AsyncSession, wanted: dict[int, int]
               ) -> dict[int, tuple[int, int]]:
    """Reserve `wanted[product_id]` units of each product that has that many available,
    in two statements whatever the number of products: lock the stock rows in product
    order (two orders for the same products then cannot deadlock), then take the units.
    Returns, per product held, (units available after, the low-stock threshold); a
    product missing from the answer had too few. The locks last until the transaction
    ends, so callers do this last, just before committing."""
    product_ids = sorted(wanted)
    await session.execute(text(
        "SELECT product_id FROM stock WHERE product_id = ANY(:product_ids) "
        "ORDER BY product_id FOR UPDATE"), {"product_ids": product_ids})
    held = await session.execute(text(
        "UPDATE stock SET reserved = stock.reserved + w.quantity, updated_at = now() "
        "FROM unnest(CAST(:product_ids AS bigint[]), CAST(:quantities AS int[])) "
        "AS w(product_id, quantity) "
        "WHERE stock.product_id = w.product_id "
        "AND stock.on_hand - stock.reserved >= w.quantity "
        "RETURNING stock.product_id, stock.on_hand - stock.reserved, "
        "stock.low_stock_threshold"),
        {"product_ids": product_ids, "quantities": [wanted[p] for p in product_ids]})
    return {int(row[0]): (int(row[1]), int(row[2])) for row in held}


async def available(session: AsyncSession, product_ids: Sequence[int]) -> dict[int, int]:
    """Units available (on hand less reserved) per product; a product never stocked
    has none."""
    rows = await session.execute(select(Stock.product_id, Stock.on_hand - Stock.reserved)
                                 .where(Stock.product_id.in_(product_ids)))
    found = {int(product_id): int(units) for product_id, units in rows}
    return {product_id: found.get(product_id, 0) for product_id in product_ids}


async def add_reservations(session: AsyncSession, reservations: Sequence[Reservation]) -> None:
    session.add_all(reservations)
    await session.flush()


async def reservations_of(session: AsyncSession, order_id: uuid.UUID) -> Sequence[Reservation]:
    query = (select(Reservation).where(Reservation.order_id == order_id)
             .order_by(Reservation.product_id).execution_options(populate_existing=True))
    return (await session.scalars(query)).all()


#: Ends an order's active reservations. `{stock_change}` says what happens to the stock:
#: a commit takes the units out of the warehouse; a release only frees them.
_SETTLE = """
WITH settled AS (
    UPDATE reservations SET status = :status
    WHERE order_id = :order_id AND status = 'active'
    RETURNING product_id, quantity
), totals AS (
    SELECT product_id, sum(quantity) AS quantity FROM settled GROUP BY product_id
)
UPDATE stock SET {stock_change}, updated_at = now()
FROM totals WHERE stock.product_id = totals.product_id
RETURNING stock.product_id
"""


async def commit(session: AsyncSession, order_id: uuid.UUID) -> list[int]:
    """The order is paid: its reserved units leave the warehouse. Returns the products."""
    result = await session.execute(text(_SETTLE.format(
        stock_change="on_hand = stock.on_hand - totals.quantity, "
                     "reserved = stock.reserved - totals.quantity")),
        {"order_id": order_id, "status": "committed"})
    return [row[0] for row in result]


async def release(session: AsyncSession, order_id: uuid.UUID) -> list[int]:
    """The order will not be paid: its units become available again."""
    result = await session.execute(text(_SETTLE.format(
        stock_change="reserved = stock.reserved - totals.quantity")),
        {"order_id": order_id, "status": "released"})
    return [row[0] for row in result]


async def expire(session: AsyncSession, now: datetime, batch: int = 500) -> int:
    """Release active reservations past their expiry. SKIP LOCKED lets several inventory
    instances sweep at once without waiting on each other. Returns how many expired."""
    result = await session.execute(text("""
        WITH due AS (
            SELECT id FROM reservations
            WHERE status = 'active' AND expires_at < :now
            ORDER BY expires_at LIMIT :batch FOR UPDATE SKIP LOCKED
        ), expired AS (
            UPDATE reservations SET status = 'expired' FROM due
            WHERE reservations.id = due.id RETURNING product_id, quantity
        ), totals AS (
            SELECT product_id, sum(quantity) AS quantity, count(*) AS reservations
            FROM expired GROUP BY product_id
        ), freed AS (
            UPDATE stock SET reserved = stock.reserved - totals.quantity, updated_at = now()
            FROM totals WHERE stock.product_id = totals.product_id
            RETURNING totals.reservations
        )
        SELECT coalesce(sum(reservations), 0) FROM freed
    """), {"now": now, "batch": batch})
    return int(result.scalar_one())


async def add_event(session: AsyncSession, subject: str, payload: dict[str, Any]) -> None:
    await outbox.add_event(session, OutboxMessage, subject, payload)


async def unpublished(session: AsyncSession, limit: int) -> Sequence[OutboxMessage]:
    return await outbox.unpublished(session, OutboxMessage, limit)


async def mark_published(session: AsyncSession, message_id: uuid.UUID) -> None:
    await outbox.mark_published(session, OutboxMessage, message_id)


async def adjustments_of(session: AsyncSession, product_id: int, *, limit: int
                         ) -> Sequence[Adjustment]:
    """The product's newest manual stock changes first."""
    query = (select(Adjustment).where(Adjustment.product_id == product_id)
             .order_by(Adjustment.created_at.desc(), Adjustment.id).limit(limit))
    return (await session.scalars(query)).all()
