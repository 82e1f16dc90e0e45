"""Every SQL statement of the orders service. Functions take the request's session."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from kansoku.kit import outbox
from kansoku.services.orders.models import Order, OutboxMessage


async def next_order_number(session: AsyncSession) -> str:
    value = await session.scalar(text("SELECT nextval('order_number_seq')"))
    return f"KS-{int(value or 0):06d}"


async def order_by_key(session: AsyncSession, user_id: str, key: str) -> Order | None:
    query = select(Order).where(Order.user_id == user_id, Order.idempotency_key == key)
    return (await session.scalars(query)).first()


async def add_order(session: AsyncSession, order: Order) -> None:
    session.add(order)
    await session.flush()


async def users_order(session: AsyncSession, user_id: str, order_id: uuid.UUID, *,
                      lock: bool = False) -> Order | None:
    """The order if it is this user's; locked for the rest of the transaction if asked,
    so two payments of one order are handled one after the other."""
    query = select(Order).where(Order.id == order_id, Order.user_id == user_id)
    if lock:
        query = query.with_for_update()
    return (await session.scalars(query.execution_options(populate_existing=True))).first()


async def order_for_update(session: AsyncSession, order_id: uuid.UUID) -> Order | None:
    """The order, whoever's it is, locked for the rest of the transaction: settling it
    from an event waits for a payment request of the same order, and the other way
    round."""
    query = select(Order).where(Order.id == order_id).with_for_update()
    return (await session.scalars(query.execution_options(populate_existing=True))).first()


async def users_orders(session: AsyncSession, user_id: str, *, limit: int, offset: int
                       ) -> Sequence[Order]:
    query = (select(Order).where(Order.user_id == user_id)
             .order_by(Order.created_at.desc(), Order.number.desc()).limit(limit).offset(offset))
    return (await session.scalars(query)).all()


async def count_users_orders(session: AsyncSession, user_id: str) -> int:
    query = select(func.count()).select_from(Order).where(Order.user_id == user_id)
    return int(await session.scalar(query) or 0)


async def add_event(session: AsyncSession, subject: str, payload: dict[str, Any]) -> None:
    await outbox.add_event(session, OutboxMessage, subject, payload)


async def unpublished(session: AsyncSession, limit: int) -> Sequence[OutboxMessage]:
    return await outbox.unpublished(session, OutboxMessage, limit)


async def mark_published(session: AsyncSession, message_id: uuid.UUID) -> None:
    await outbox.mark_published(session, OutboxMessage, message_id)


async def orders_by_status_since(session: AsyncSession, since: datetime
                                 ) -> Sequence[tuple[str, str, int, Decimal]]:
    """(status, currency, how many, their total) of the orders placed since `since`."""
    query = (select(Order.status, Order.currency, func.count(), func.sum(Order.total))
             .where(Order.created_at >= since)
             .group_by(Order.status, Order.currency))
    rows = (await session.execute(query)).all()
    return [(status, currency, int(count), Decimal(total or 0))
            for status, currency, count, total in rows]


async def cancelled_since(session: AsyncSession, since: datetime, *, limit: int
                          ) -> Sequence[Order]:
    """The newest orders placed since `since` that were cancelled."""
    query = (select(Order).where(Order.created_at >= since, Order.status == "cancelled")
             .order_by(Order.created_at.desc(), Order.number.desc()).limit(limit))
    return (await session.scalars(query)).all()
