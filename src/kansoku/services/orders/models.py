"""The orders tables, in the `orders` schema."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, MetaData, Numeric, String, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from kansoku.kit.outbox import OutboxColumns

SCHEMA = "orders"


class Base(DeclarativeBase):
    metadata = MetaData(schema=SCHEMA)


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    #: What people read and say on the phone: KS-000042.
    number: Mapped[str] = mapped_column(String(16), unique=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    #: pending_payment, paid or cancelled.
    status: Mapped[str] = mapped_column(String(20))
    total: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    currency: Mapped[str] = mapped_column(String(3))
    shipping_address: Mapped[dict[str, Any]] = mapped_column(JSON)
    idempotency_key: Mapped[str | None] = mapped_column(String(100), default=None)
    payment_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    #: Why it was cancelled, in English (what its event's `reason` says).
    cancel_reason: Mapped[str | None] = mapped_column(String(200), default=None)
    #: The same as codes, which pages word in their reader's language
    #: (`kansoku.contracts.reasons`): a `CancelReason`, and payments' `DeclineReason`
    #: when the payment was declined. None for orders cancelled before they were kept.
    cancel_reason_code: Mapped[str | None] = mapped_column(String(40), default=None)
    decline_reason: Mapped[str | None] = mapped_column(String(40), default=None)
    #: The trace of the request that placed it (32 hex digits), for a link to it.
    trace_id: Mapped[str | None] = mapped_column(String(32), default=None)
    #: Whom to write to about it, as the customer's token named them when they placed
    #: it (None for orders from before this was kept).
    customer_email: Mapped[str | None] = mapped_column(String(320), default=None)
    customer_name: Mapped[str | None] = mapped_column(String(200), default=None)
    #: The language the customer shopped in ("ja", "en"): the e-mails about the order
    #: speak it (None for orders from before this was kept: English).
    language: Mapped[str | None] = mapped_column(String(8), default=None)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(),
                                                 onupdate=func.now())

    items: Mapped[list[OrderItem]] = relationship(lazy="selectin", order_by="OrderItem.id",
                                                  cascade="all, delete-orphan")


class OrderItem(Base):
    __tablename__ = "order_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"),
                                                index=True)
    product_id: Mapped[int]
    #: Name and price as they were when ordered: the catalog may change later.
    name: Mapped[str] = mapped_column(String(200))
    unit_price: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    quantity: Mapped[int]
    line_total: Mapped[Decimal] = mapped_column(Numeric(12, 2))


class OutboxMessage(OutboxColumns, Base):
    """An event written in the same transaction as the change it reports, and relayed
    to NATS afterwards: the change and its event are never one without the other."""

    __tablename__ = "outbox"
