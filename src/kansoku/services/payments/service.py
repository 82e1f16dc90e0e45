"""A simulated card processor: real checks (Luhn, expiry), documented test cards that
decline, tokens instead of card numbers. Card number and CVV are used to decide and
then forgotten: only brand and last four digits are stored, logged or traced."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import NoReturn

from opentelemetry import metrics, trace
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kansoku.kit import semconv
from kansoku.kit.auth import Principal
from kansoku.kit.errors import Problem
from kansoku.kit.flags import ActiveFault, FaultFlags
from kansoku.services.payments import store
from kansoku.services.payments.models import Payment
from kansoku.services.payments.schemas import CardDetails, Charge, PaymentOut, WalletDetails

logger = logging.getLogger(__name__)

#: Test cards that pass every check and are then declined, with the reason the
#: processor gives. Any other valid card succeeds (4111 1111 1111 1111, for example).
DECLINING_CARDS = {
    "4000000000007775": "insufficient_funds",
    "4000000000008880": "stolen_card",
    "4000000000006660": "processing_error",
}
#: The wallet that is always empty.
EMPTY_WALLET = "empty-wallet"

_tracer = trace.get_tracer("kansoku.payments")
_meter = metrics.get_meter("kansoku.payments")
_declines = _meter.create_counter(semconv.METRIC_PAYMENT_DECLINES, unit="{payment}",
                                  description="Declined payments, by reason")
_charged = _meter.create_counter(semconv.METRIC_PAYMENTS, unit="{payment}",
                                 description="Successful payments, by method")


def luhn_valid(number: str) -> bool:
    total = 0
    for position, digit in enumerate(int(d) for d in reversed(number)):
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def card_brand(number: str) -> str:
    if number.startswith("4"):
        return "visa"
    if number[:2] in {"51", "52", "53", "54", "55"} or "2221" <= number[:4] <= "2720":
        return "mastercard"
    if number[:2] in {"34", "37"}:
        return "amex"
    if number.startswith("6011") or number.startswith("65"):
        return "discover"
    return "other"


def _check_card(card: CardDetails) -> str:
    """The card's digits if it can be charged at all; else a 422 naming the field."""
    digits = card.card_number.replace(" ", "").replace("-", "")
    if not digits.isdigit() or not 12 <= len(digits) <= 19 or not luhn_valid(digits):
        raise Problem(422, "invalid-card-number",
                      "The card number is not valid: check the digits.",
                      field="payment_details.card_number")
    now = datetime.now(UTC)
    if (card.expiry_year, card.expiry_month) < (now.year, now.month):
        raise Problem(422, "card-expired", "The card has expired.",
                      field="payment_details.expiry_year")
    return digits


class PaymentProcessingError(Exception):
    """The card network answered a charge with a processing error (fault paymentFailure)."""


class CardNetworkUnreachable(TimeoutError):
    """The charge was never answered (fault paymentUnreachable)."""


#: With paymentUnreachable, the longest a charge hangs when its caller stays connected.
UNREACHABLE_LONGEST_SECONDS = 60.0


async def _never_answer(fault: ActiveFault, caller_gone: Callable[[], Awaitable[bool]]
                        ) -> NoReturn:
    """Hold the charge unanswered, as a partitioned or stuck processor would, until the
    caller stops waiting (or, at most, `UNREACHABLE_LONGEST_SECONDS`)."""
    started = time.monotonic()
    with fault.span("card network unreachable"):
        while time.monotonic() - started < UNREACHABLE_LONGEST_SECONDS:
            await asyncio.sleep(0.25)
            if await caller_gone():
                break
    waited = time.monotonic() - started
    raise fault.fail(CardNetworkUnreachable(f"no answer from the card network after "
                                            f"{waited:.1f} s; the caller gave up"),
                     504, "payments-unreachable", "The card network did not answer.")


async def _no_caller_check() -> bool:
    return False


async def charge(session: AsyncSession, user: Principal, request: Charge,
                 faults: FaultFlags | None = None,
                 caller_gone: Callable[[], Awaitable[bool]] = _no_caller_check,
                 ) -> PaymentOut:
    """Charge an order once. Asking again for an order already paid returns that payment:
    a retry can never charge twice. A decline is kept on record and answered with 402.

    `faults` may make the charge hang (paymentUnreachable), slow (paymentLatency) or fail
    (paymentFailure); `caller_gone` tells a hanging charge when to stop."""
    if faults and (unreachable := faults.active("paymentUnreachable")):
        await _never_answer(unreachable, caller_gone)
    existing = await store.settled_payment(session, request.order_id)
    if existing is not None:
        return PaymentOut.model_validate(existing)

    payment = Payment(id=uuid.uuid4(), order_id=request.order_id, user_id=user.user_id,
                      amount=request.amount, currency=request.currency,
                      method=request.payment_method, token=f"tok_{secrets.token_hex(12)}")
    details = request.payment_details
    if request.payment_method == "credit_card":
        if not isinstance(details, CardDetails):
            raise Problem(422, "card-details-needed", "A credit card payment needs "
                          "card_number, expiry_month, expiry_year and cvv.",
                          field="payment_details")
        digits = _check_card(details)
        payment.brand, payment.last4 = card_brand(digits), digits[-4:]
        decline = DECLINING_CARDS.get(digits)
    else:
        if not isinstance(details, WalletDetails):
            raise Problem(422, "wallet-needed", "A wallet payment needs wallet_id.",
                          field="payment_details")
        decline = "insufficient_funds" if details.wallet_id == EMPTY_WALLET else None

    # The simulated network round-trip to the card scheme.
    latency = faults.active("paymentLatency") if faults else None
    if latency:
        latency.mark()  # the request's span, as well as the slow one inside it
    with _tracer.start_as_current_span("card network authorize") as network:
        if latency:
            latency.mark(network)
        await asyncio.sleep(0.02 + (float(latency.value) if latency else 0.0))
    failure = faults.active("paymentFailure") if faults else None
    if failure and failure.hits():
        raise failure.fail(
            PaymentProcessingError(f"the card network answered 'processing error' for "
                                   f"order {request.order_id}"),
            500, "payment-processing-failed",
            "The payment could not be processed; nothing was charged. Please try again.")
    span = trace.get_current_span()
    span.set_attribute(semconv.PAYMENT_METHOD, payment.method)
    if payment.brand:
        span.set_attribute(semconv.PAYMENT_CARD_BRAND, payment.brand)

    if decline:
        payment.status, payment.decline_reason = "declined", decline
        await store.add_payment(session, payment)
        _declines.add(1, {"reason": decline})
        span.set_attribute(semconv.PAYMENT_DECLINE_REASON, decline)
        logger.info("payment for order %s declined: %s", request.order_id, decline,
                    extra={"order_id": str(request.order_id), "decline_reason": decline})
        raise Problem(402, "payment-declined",
                      f"The payment was declined ({decline.replace('_', ' ')}).",
                      reason=decline, payment_id=str(payment.id), keep_changes=True)

    payment.status = "succeeded"
    try:
        async with session.begin_nested():
            await store.add_payment(session, payment)
    except IntegrityError:
        # Another request charged this order at the same moment, and won.
        existing = await store.settled_payment(session, request.order_id)
        assert existing is not None
        return PaymentOut.model_validate(existing)
    _charged.add(1, {"method": payment.method})
    return PaymentOut.model_validate(payment)


async def refund(session: AsyncSession, payment_id: uuid.UUID) -> PaymentOut:
    payment = await store.get_payment(session, payment_id)
    if payment is None:
        raise Problem(404, "payment-not-found", f"There is no payment {payment_id}.")
    if payment.status == "succeeded":
        payment.status = "refunded"
        await session.flush()
    return PaymentOut.model_validate(payment)


async def payment(session: AsyncSession, payment_id: uuid.UUID) -> PaymentOut:
    found = await store.get_payment(session, payment_id)
    if found is None:
        raise Problem(404, "payment-not-found", f"There is no payment {payment_id}.")
    return PaymentOut.model_validate(found)
