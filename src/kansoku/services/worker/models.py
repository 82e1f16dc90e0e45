"""The worker's tables, in the `worker` schema."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, MetaData, String, Text, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA = "worker"


class Base(DeclarativeBase):
    metadata = MetaData(schema=SCHEMA)


class ProcessedEvent(Base):
    """An event a function has handled: a redelivered event is recognised and skipped."""

    __tablename__ = "processed_events"

    function: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Mail(Base):
    """A message the embedded mailbox received over SMTP."""

    __tablename__ = "mailbox"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    sender: Mapped[str] = mapped_column(String(320))
    recipients: Mapped[list[str]] = mapped_column(JSON)
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())
