"""The payments tables, in the `payments` schema. A card number and CVV are never
stored: only the brand, the last four digits and an opaque token."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import MetaData, Numeric, String, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kansoku.kit.outbox import OutboxColumns

SCHEMA = "payments"


class Base(DeclarativeBase):
    metadata = MetaData(schema=SCHEMA)


class Payment(Base):
    __tablename__ = "payments"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    order_id: Mapped[uuid.UUID] = mapped_column(index=True)
    user_id: Mapped[str] = mapped_column(String(64))
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    currency: Mapped[str] = mapped_column(String(3))
    method: Mapped[str] = mapped_column(String(20))
    #: succeeded, declined or refunded.
    status: Mapped[str] = mapped_column(String(16))
    brand: Mapped[str | None] = mapped_column(String(20), default=None)
    last4: Mapped[str | None] = mapped_column(String(4), default=None)
    token: Mapped[str] = mapped_column(String(40))
    decline_reason: Mapped[str | None] = mapped_column(String(40), default=None)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    #: Why the money was given back: `order_cancelled` (payments did it on its own,
    #: after the order.cancelled event) or `requested` (a caller asked).
    refund_reason: Mapped[str | None] = mapped_column(String(40), default=None)
    refunded_at: Mapped[datetime | None] = mapped_column(default=None)


class CancelledOrder(Base):
    """An order that orders cancelled (from its `order.cancelled` event). Payments never
    keeps money for one: a charge it already took is refunded when the event arrives,
    and a charge that comes later is refused."""

    __tablename__ = "cancelled_orders"

    order_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    reason: Mapped[str] = mapped_column(String(200))
    #: The event that said so: a redelivery of it, or of another event about the same
    #: cancellation, finds this row and does nothing again.
    event_id: Mapped[str] = mapped_column(String(100))
    cancelled_at: Mapped[datetime] = mapped_column(server_default=func.now())


class OutboxMessage(OutboxColumns, Base):
    """`payment.succeeded`, waiting to be relayed to NATS (written with the charge)."""

    __tablename__ = "outbox"
