"""What the orders service accepts and returns."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kansoku.kit.fields import DbId, Text, UtcDateTime, Whole


class Address(BaseModel):
    street: Text = Field(min_length=1, max_length=200, examples=["123 Main St"])
    city: Text = Field(min_length=1, max_length=100, examples=["San Francisco"])
    state: Text = Field("", max_length=100, examples=["CA"])
    zip: Text = Field(min_length=1, max_length=20, examples=["94105"])
    country: str = Field(min_length=2, max_length=2, pattern=r"^[A-Z]{2}$", examples=["US"])


class LineRequest(BaseModel):
    product_id: DbId
    quantity: Whole = Field(ge=1, le=99)


class PlaceOrder(BaseModel):
    #: Omitted: the caller's cart.
    items: list[LineRequest] | None = Field(None, min_length=1, max_length=100)
    shipping_address: Address


class OrderItemOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    product_id: int
    name: str
    unit_price: Decimal
    quantity: int
    line_total: Decimal


class OrderOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    number: str
    status: str
    total: Decimal
    currency: str
    items: list[OrderItemOut]
    shipping_address: dict[str, Any]
    payment_id: uuid.UUID | None
    cancel_reason: str | None
    #: Why, as codes (`kansoku.contracts.reasons` words them); None before they were kept.
    cancel_reason_code: str | None = None
    decline_reason: str | None = None
    #: The trace of the request that placed it, when it was traced.
    trace_id: str | None = None
    created_at: UtcDateTime


class OrderPage(BaseModel):
    items: list[OrderOut]
    total: int
    limit: int
    offset: int


class PayOrder(BaseModel):
    payment_method: Literal["credit_card", "wallet"]
    #: Passed to payments as it is; never stored or logged here.
    payment_details: dict[str, Any] = Field(repr=False)


class PaymentResult(BaseModel):
    id: uuid.UUID
    order_id: uuid.UUID
    order_number: str
    order_status: str
    status: str
    amount: Decimal
    currency: str
    method: str
    brand: str | None
    last4: str | None


class CurrencyRevenue(BaseModel):
    """Money taken in one currency: orders in different currencies are never added up."""

    currency: str
    paid_orders: int
    revenue: Decimal


class CancelledOrder(BaseModel):
    """An order that did not go through, and why (a decline, payments away, expiry)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    number: str
    total: Decimal
    currency: str
    cancel_reason: str | None
    #: Why, as codes (`kansoku.contracts.reasons` words them); None before they were kept.
    cancel_reason_code: str | None = None
    decline_reason: str | None = None
    created_at: UtcDateTime


class SalesSummary(BaseModel):
    """Orders placed since a moment (the admin dashboard's "today"), by what became of
    them, and the revenue of those that were paid."""

    since: UtcDateTime
    orders: int = Field(description="Orders placed since then, whatever became of them")
    paid: int
    pending_payment: int
    cancelled: int
    revenue: list[CurrencyRevenue] = Field(description="Paid orders' totals, per currency")
    recent_cancellations: list[CancelledOrder] = Field(
        description="The newest cancelled orders of the period, newest first")
