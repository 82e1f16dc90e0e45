"""The worker's tables, in the `worker` schema."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, MetaData, String, Text, func
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


class Notification(Base):
    """A text message or push notification the shop sent. Both channels are simulated:
    this row is the message, as the mailbox's rows are the e-mails."""

    __tablename__ = "notifications"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    #: `sms` or `push`.
    channel: Mapped[str] = mapped_column(String(8))
    #: A phone number for SMS, `user:<user id>` for push.
    recipient: Mapped[str] = mapped_column(String(320))
    text: Mapped[str] = mapped_column(Text)
    #: The event that caused it, to follow a notification back to its trace and order.
    event_id: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now())


class Report(Base):
    """A report the worker made: its summary, and the whole report as CSV and JSON."""

    __tablename__ = "reports"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    #: What the report is about; `inventory` so far.
    kind: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now())
    row_count: Mapped[int] = mapped_column(Integer)
    low_stock_count: Mapped[int] = mapped_column(Integer)
    csv: Mapped[str] = mapped_column(Text)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
