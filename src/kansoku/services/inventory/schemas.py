"""What the inventory service accepts and returns."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from kansoku.kit.fields import DbId, Text, UtcDateTime, Whole

StockStatus = Literal["in_stock", "low", "out"]


class StockLevel(BaseModel):
    product_id: int
    on_hand: int
    reserved: int
    available: int
    low_stock_threshold: int
    status: StockStatus
    low_stock: bool


class StockPage(BaseModel):
    items: list[StockLevel]
    total: int
    limit: int
    offset: int


class Adjust(BaseModel):
    delta: Whole = Field(ge=-1_000_000, le=1_000_000,
                       description="Units to add (restock) or remove (negative)")
    reason: Text = Field(min_length=1, max_length=200)


class ReservedItem(BaseModel):
    product_id: DbId
    quantity: Whole = Field(ge=1, le=1000)


class ReservationRequest(BaseModel):
    order_id: uuid.UUID
    items: list[ReservedItem] = Field(min_length=1, max_length=100)
    #: How long unpaid units stay held.
    ttl_seconds: Whole = Field(900, ge=1, le=86_400)


class ReservationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    product_id: int
    quantity: int
    status: str
    expires_at: UtcDateTime


class OrderReservation(BaseModel):
    order_id: uuid.UUID
    status: str
    items: list[ReservationOut]


class AdjustmentOut(BaseModel):
    """A manual change of stock: how many units, why, and who made it."""

    model_config = ConfigDict(from_attributes=True)

    delta: int
    reason: str
    #: The user id of the admin who made it.
    actor: str
    created_at: UtcDateTime
