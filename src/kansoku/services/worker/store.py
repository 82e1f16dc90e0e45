"""Every SQL statement of the worker. Functions take a session."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from kansoku.services.worker.models import Mail, ProcessedEvent


async def claim(session: AsyncSession, function: str, event_id: str) -> bool:
    """Record that `function` handles `event_id`; False if it already has. Committed
    with the function's work, so a failure leaves the event unclaimed for the retry."""
    claimed = await session.scalar(
        insert(ProcessedEvent).values(function=function, event_id=event_id)
        .on_conflict_do_nothing().returning(ProcessedEvent.event_id))
    return claimed is not None


async def add_mail(session: AsyncSession, mail: Mail) -> None:
    session.add(mail)
    await session.flush()


async def recent_mail(session: AsyncSession, limit: int) -> Sequence[Mail]:
    query = select(Mail).order_by(Mail.received_at.desc(), Mail.id).limit(limit)
    return (await session.scalars(query)).all()
