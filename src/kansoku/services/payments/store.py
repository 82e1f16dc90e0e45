"""Every SQL statement of the payments service. Functions take the request's session."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kansoku.services.payments.models import Payment


async def settled_payment(session: AsyncSession, order_id: uuid.UUID) -> Payment | None:
    """The order's successful (or refunded) charge, if there is one."""
    query = select(Payment).where(Payment.order_id == order_id,
                                  Payment.status.in_(("succeeded", "refunded")))
    return (await session.scalars(query)).first()


async def get_payment(session: AsyncSession, payment_id: uuid.UUID) -> Payment | None:
    return await session.get(Payment, payment_id)


async def add_payment(session: AsyncSession, payment: Payment) -> None:
    session.add(payment)
    await session.flush()
