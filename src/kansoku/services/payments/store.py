"""Every SQL statement of the payments service. Functions take the request's session (or
the event handler's own)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from kansoku.kit import outbox
from kansoku.services.payments.models import CancelledOrder, OutboxMessage, Payment


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


async def lock_order(session: AsyncSession, order_id: uuid.UUID) -> None:
    """Hold the order's lock until the transaction ends. Taking a charge and handling the
    order's cancellation both take it first, so one of them always sees what the other
    did: a charge committed before the cancellation is refunded by it, and a charge
    after the cancellation finds it and is refused. (A row lock cannot do this: before
    either commits there may be no row of that order to lock.)"""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('payments.order'), hashtext(:order_id))"),
        {"order_id": str(order_id)})


async def cancellation(session: AsyncSession, order_id: uuid.UUID) -> CancelledOrder | None:
    """The order's cancellation, if payments has heard of one."""
    return await session.get(CancelledOrder, order_id, populate_existing=True)


async def remember_cancellation(session: AsyncSession, order_id: uuid.UUID, reason: str,
                                event_id: str) -> bool:
    """Record that the order was cancelled; False if it already was (a repeated event)."""
    inserted = await session.scalar(
        insert(CancelledOrder)
        .values(order_id=order_id, reason=reason[:200], event_id=event_id[:100])
        .on_conflict_do_nothing().returning(CancelledOrder.order_id))
    return inserted is not None


async def refund_payment(session: AsyncSession, payment_id: uuid.UUID, reason: str
                         ) -> Payment | None:
    """Mark the payment refunded if it had succeeded; None if there was nothing to refund
    (unknown, declined, or refunded already), so a refund is done and counted once."""
    statement = (update(Payment)
                 .where(Payment.id == payment_id, Payment.status == "succeeded")
                 .values(status="refunded", refund_reason=reason, refunded_at=func.now())
                 .returning(Payment)
                 .execution_options(populate_existing=True, synchronize_session=False))
    return (await session.scalars(statement)).first()


async def refund_order_payments(session: AsyncSession, order_id: uuid.UUID, reason: str
                                ) -> Sequence[Payment]:
    """Refund every successful charge of the order (at most one, by the unique index)."""
    statement = (update(Payment)
                 .where(Payment.order_id == order_id, Payment.status == "succeeded")
                 .values(status="refunded", refund_reason=reason, refunded_at=func.now())
                 .returning(Payment)
                 .execution_options(populate_existing=True, synchronize_session=False))
    return (await session.scalars(statement)).all()


async def add_event(session: AsyncSession, subject: str, payload: dict[str, Any]) -> None:
    await outbox.add_event(session, OutboxMessage, subject, payload)


async def unpublished(session: AsyncSession, limit: int) -> Sequence[OutboxMessage]:
    return await outbox.unpublished(session, OutboxMessage, limit)


async def mark_published(session: AsyncSession, message_id: uuid.UUID) -> None:
    await outbox.mark_published(session, OutboxMessage, message_id)
