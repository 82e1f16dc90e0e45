"""The inventory's tables, in the `inventory` schema."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, MetaData, String, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kansoku.kit.outbox import OutboxColumns

SCHEMA = "inventory"


class Base(DeclarativeBase):
    metadata = MetaData(schema=SCHEMA)


class Stock(Base):
    """Units of one product: `on_hand` in the warehouse, `reserved` of those held for
    unpaid orders. What can be sold is the difference."""

    __tablename__ = "stock"
    __table_args__ = (
        CheckConstraint("on_hand >= 0", name="stock_on_hand_not_negative"),
        CheckConstraint("reserved >= 0 AND reserved <= on_hand", name="stock_reserved_held"),
    )

    product_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    on_hand: Mapped[int] = mapped_column(default=0)
    reserved: Mapped[int] = mapped_column(default=0)
    low_stock_threshold: Mapped[int] = mapped_column(default=5)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(),
                                                 onupdate=func.now())


class Reservation(Base):
    """Units held for one order until it is paid (committed), fails (released) or its
    time runs out (expired)."""

    __tablename__ = "reservations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    order_id: Mapped[uuid.UUID] = mapped_column(index=True)
    product_id: Mapped[int]
    quantity: Mapped[int]
    #: active, committed, released or expired.
    status: Mapped[str] = mapped_column(String(16), default="active")
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Adjustment(Base):
    """Every manual change of stock, with who made it and why."""

    __tablename__ = "adjustments"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    product_id: Mapped[int] = mapped_column(index=True)
    delta: Mapped[int]
    reason: Mapped[str] = mapped_column(String(200))
    actor: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class OutboxMessage(OutboxColumns, Base):
    """Inventory's events (inventory.low_stock), relayed to NATS after the commit."""

    __tablename__ = "outbox"
