"""The transactional outbox every event-producing service shares: the table's columns,
writing an event with the current trace context, and the relay's two statements.

A service declares `class OutboxMessage(OutboxColumns, Base): __tablename__ = "outbox"`
in its models (so the table lives in its own schema) and writes events with
`add_event(session, OutboxMessage, subject, payload)` in the same transaction as the
change they report.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import JSON, String, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from kansoku.kit.events import event_headers


class OutboxColumns:
    """An event waiting to be relayed to NATS."""

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    subject: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: Trace context and baggage of the request that wrote it (`events.event_headers`),
    #: so the publish and the consumers continue the trace, with the request's baggage.
    headers: Mapped[dict[str, str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    published_at: Mapped[datetime | None] = mapped_column(default=None)
    attempts: Mapped[int] = mapped_column(default=0)


Message = TypeVar("Message", bound=OutboxColumns)


async def add_event(session: AsyncSession, model: type[Message], subject: str,
                    payload: dict[str, Any]) -> None:
    """Write an event to the outbox, with the current trace context and baggage."""
    message = model()
    message.subject, message.payload, message.headers = subject, payload, event_headers()
    session.add(message)
    await session.flush()


async def unpublished(session: AsyncSession, model: type[Message], limit: int
                      ) -> Sequence[Message]:
    """The oldest events not yet relayed, locked so that relays in other instances skip
    them rather than publish them twice."""
    query = (select(model).where(model.published_at.is_(None))
             .order_by(model.created_at).limit(limit).with_for_update(skip_locked=True))
    return (await session.scalars(query)).all()


async def mark_published(session: AsyncSession, model: type[Message], message_id: uuid.UUID
                         ) -> None:
    await session.execute(update(model).where(model.id == message_id)
                          .values(published_at=func.now(), attempts=model.attempts + 1))
