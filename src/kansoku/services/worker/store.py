"""Every SQL statement of the worker. Functions take a session."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from kansoku.services.worker.models import Mail, Notification, ProcessedEvent, Report


async def claim(session: AsyncSession, function: str, event_id: str) -> bool:
    """Record that `function` handles `event_id`; False if it already has. Committed
    with the function's work, so a failure leaves the event unclaimed for the retry.

    A second claim of the same event while the first is still in progress waits for
    the first transaction: it gets True if that one rolled back, False if it committed."""
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


async def add_notification(session: AsyncSession, notification: Notification) -> None:
    session.add(notification)
    await session.flush()


async def recent_notifications(session: AsyncSession, channel: str | None, limit: int
                               ) -> Sequence[Notification]:
    query = select(Notification)
    if channel is not None:
        query = query.where(Notification.channel == channel)
    query = query.order_by(Notification.created_at.desc(), Notification.id).limit(limit)
    return (await session.scalars(query)).all()


async def add_report(session: AsyncSession, report: Report) -> None:
    session.add(report)
    await session.flush()


async def recent_reports(session: AsyncSession, limit: int) -> Sequence[Report]:
    """The newest reports' summaries; their CSV and JSON stay in the database."""
    query = (select(Report).options(defer(Report.csv), defer(Report.document))
             .order_by(Report.created_at.desc(), Report.id).limit(limit))
    return (await session.scalars(query)).all()


async def get_report(session: AsyncSession, report_id: uuid.UUID) -> Report | None:
    return await session.get(Report, report_id)
