"""What callers send to and read from other services, where the caller needs more than
passing JSON along: the fields orders reads from a payment and a reservation, the
charge it asks for. Each model ignores fields it does not name, so a service can add
to its answers without breaking its callers; the service's own `schemas.py` remains
what it accepts and answers (and its OpenAPI document what it promises)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ReservedLine(BaseModel):
    """Units of one product to hold for an order."""

    product_id: int
    quantity: int


class Reservation(_Answer):
    """What inventory holds for an order: `reserved`, `committed`, `released` or
    `expired`."""

    order_id: uuid.UUID
    status: str


class ChargeRequest(BaseModel):
    """Orders asking payments to charge one of its orders, for the customer who placed
    it: the amount and currency are the order's own, from orders' record."""

    order_id: uuid.UUID
    user_id: str
    amount: Decimal
    currency: str
    payment_method: str
    #: The card or wallet, as the customer gave them: passed on, never logged (repr).
    payment_details: dict[str, Any] = Field(repr=False)


class Payment(_Answer):
    """A payment as payments keeps it (never the card's number)."""

    id: uuid.UUID
    order_id: uuid.UUID
    amount: Decimal
    currency: str
    #: `succeeded`, `declined` or `refunded`.
    status: str
    method: str
    brand: str | None = None
    last4: str | None = None

    def settles(self, amount: Decimal, currency: str) -> bool:
        """Whether this payment is exactly `amount` in `currency`: what orders checks
        before it calls an order paid."""
        return self.amount == amount and self.currency == currency


class DeclineReason(StrEnum):
    """Why payments declined a charge: the `reason` of its 402 problem, kept on the
    payment and carried on to the order's `order.cancelled` event (`decline_reason`)."""

    INSUFFICIENT_FUNDS = "insufficient_funds"
    STOLEN_CARD = "stolen_card"
    PROCESSING_ERROR = "processing_error"


class CancelReason(StrEnum):
    """Why orders cancelled an order: the `reason_code` of its `order.cancelled` event,
    which the worker words in the customer's language (the event's `reason` says the
    same in English, for whoever reads the event or the order)."""

    PAYMENT_DECLINED = "payment-declined"
    PAYMENTS_UNAVAILABLE = "payments-unavailable"
    #: The charge's answer never came: it may have gone through, and is refunded.
    PAYMENTS_TIMED_OUT = "payments-timed-out"
    #: The order's stock was no longer reserved when it was paid: the payment is refunded.
    RESERVATION_EXPIRED = "reservation-expired"
