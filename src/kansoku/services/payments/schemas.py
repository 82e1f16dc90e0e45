"""What the payments service accepts and returns."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from kansoku.kit.fields import Price, UtcDateTime, Whole


class CardDetails(BaseModel):
    #: repr=False everywhere here: card data never reaches a log line or a repr.
    card_number: str = Field(min_length=12, max_length=23, repr=False,
                             examples=["4111111111111111"])
    expiry_month: Whole = Field(ge=1, le=12, examples=[12])
    expiry_year: Whole = Field(ge=2000, le=2100, examples=[2030])
    cvv: str = Field(pattern=r"^[0-9]{3,4}$", repr=False, examples=["123"])


class WalletDetails(BaseModel):
    wallet_id: str = Field(min_length=3, max_length=64, repr=False,
                           examples=["wallet-alice"])


class _Charge(BaseModel):
    order_id: uuid.UUID
    #: The customer the order is for (the caller is orders, with its service token).
    user_id: str = Field(min_length=1, max_length=64)
    amount: Price
    currency: str = Field(pattern=r"^[A-Z]{3}$")


class CardCharge(_Charge):
    payment_method: Literal["credit_card"]
    payment_details: CardDetails


class WalletCharge(_Charge):
    payment_method: Literal["wallet"]
    payment_details: WalletDetails


#: A charge: its `payment_method` says which details it carries.
Charge = Annotated[CardCharge | WalletCharge, Field(discriminator="payment_method")]


class PaymentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    order_id: uuid.UUID
    amount: Decimal
    currency: str
    method: str
    status: str
    brand: str | None
    last4: str | None
    decline_reason: str | None
    created_at: UtcDateTime
    #: `order_cancelled` (refunded by payments after the order's cancellation) or
    #: `requested`; None while the money is kept.
    refund_reason: str | None = None
    refunded_at: UtcDateTime | None = None
