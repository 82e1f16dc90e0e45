"""A simulated card processor: real checks (Luhn, expiry), documented test cards that
decline, tokens instead of card numbers. Card number and CVV are used to decide and
then forgotten: only brand and last four digits are stored, logged or traced.

Payments never keeps money for a cancelled order. Orders may give up waiting for a charge
(a read timeout) and cancel the order while the charge is still running here, or after
it finished; orders cannot tell which. So payments consumes `order.cancelled` itself
(`on_order_cancelled`): it refunds the order's successful charge and remembers the
cancellation, and a charge that completes afterwards is refused. A charge and a
cancellation of the same order take the order's lock, so one always sees the other.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, NoReturn

from opentelemetry import metrics, trace
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kansoku.contracts.schemas import DeclineReason
from kansoku.kit import semconv
from kansoku.kit.auth import Principal
from kansoku.kit.db import Database
from kansoku.kit.errors import Problem
from kansoku.kit.flags import ActiveFault, FaultFlags
from kansoku.kit.i18n import _
from kansoku.services.payments import store
from kansoku.services.payments.models import Payment
from kansoku.services.payments.schemas import CardDetails, Charge, PaymentOut

logger = logging.getLogger(__name__)

#: Test cards that pass every check and are then declined, with the reason the
#: processor gives. Any other valid card succeeds (4111 1111 1111 1111, for example).
DECLINING_CARDS = {
    "4000000000007775": DeclineReason.INSUFFICIENT_FUNDS,
    "4000000000008880": DeclineReason.STOLEN_CARD,
    "4000000000006660": DeclineReason.PROCESSING_ERROR,
}
#: The wallet that is always empty.
EMPTY_WALLET = "empty-wallet"

_tracer = trace.get_tracer("kansoku.payments")
_meter = metrics.get_meter("kansoku.payments")
_declines = _meter.create_counter(semconv.METRIC_PAYMENT_DECLINES, unit="{payment}",
                                  description="Declined payments, by reason")
_charged = _meter.create_counter(semconv.METRIC_PAYMENTS, unit="{payment}",
                                 description="Successful payments, by method")
_refunds = _meter.create_counter(semconv.METRIC_PAYMENT_REFUNDS, unit="{payment}",
                                 description="Refunded payments, by reason")

#: Why a payment was refunded (`kansoku.payment.refund_reason`).
REFUND_ORDER_CANCELLED = "order_cancelled"
REFUND_REQUESTED = "requested"
#: The durable JetStream consumer through which payments hears of cancelled orders.
CANCELLATIONS_CONSUMER = "payments-order-cancelled"
#: The event of a charge that went through (see `succeeded_event`).
PAYMENT_SUCCEEDED = "payment.succeeded"


def succeeded_event(payment: Payment) -> dict[str, Any]:
    """The payload of `payment.succeeded`: the payment as orders reads it
    (`contracts.schemas.Payment`) — never card data beyond brand and last four."""
    return {"id": str(payment.id), "order_id": str(payment.order_id),
            "user_id": payment.user_id, "amount": str(payment.amount),
            "currency": payment.currency, "status": payment.status,
            "method": payment.method, "brand": payment.brand, "last4": payment.last4}


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


def _declined(reason: str) -> str:
    """The 402's sentence for a decline `reason`, in the reader's language. The reason
    itself (`insufficient_funds`) goes along unchanged, as the problem's `reason`."""
    if reason == "insufficient_funds":
        return _("The payment was declined (insufficient funds).")
    if reason == "stolen_card":
        return _("The payment was declined (stolen card).")
    if reason == "processing_error":
        return _("The payment was declined (processing error).")
    return _("The payment was declined ({reason}).").format(reason=reason.replace("_", " "))


def _check_card(card: CardDetails) -> str:
    """The card's digits if it can be charged at all; else a 422 naming the field."""
    digits = card.card_number.replace(" ", "").replace("-", "")
    if not digits.isdigit() or not 12 <= len(digits) <= 19 or not luhn_valid(digits):
        raise Problem(422, "invalid-card-number",
                      _("The card number is not valid: check the digits."),
                      field="payment_details.card_number")
    now = datetime.now(UTC)
    if (card.expiry_year, card.expiry_month) < (now.year, now.month):
        raise Problem(422, "card-expired", _("The card has expired."),
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


async def _refuse_if_cancelled(session: AsyncSession, order_id: uuid.UUID) -> None:
    """A 409 if the order was cancelled: its money must not be taken any more."""
    cancelled = await store.cancellation(session, order_id)
    if cancelled is None:
        return
    span = trace.get_current_span()
    span.set_attribute(semconv.ORDER_ID, str(order_id))
    span.set_attribute(semconv.ORDER_CANCEL_REASON, cancelled.reason)
    span.add_event("charge refused: the order was cancelled",
                   {semconv.ORDER_CANCEL_REASON: cancelled.reason})
    logger.warning("refused a charge for order %s: the order was cancelled (%s)",
                   order_id, cancelled.reason,
                   extra={"order_id": str(order_id), "cancel_reason": cancelled.reason})
    # The reason is the one orders gave (English, as stored).
    raise Problem(409, "order-cancelled",
                  _("Order {order_id} was cancelled ({reason}), so it cannot be paid any "
                    "more; nothing was charged.").format(order_id=order_id,
                                                         reason=cancelled.reason),
                  order_id=str(order_id), cancel_reason=cancelled.reason)


async def charge(session: AsyncSession, request: Charge,
                 faults: FaultFlags | None = None,
                 caller_gone: Callable[[], Awaitable[bool]] = _no_caller_check,
                 ) -> PaymentOut:
    """Charge an order once. Asking again for an order already paid returns that payment:
    a retry can never charge twice — and asking for a different amount (or currency)
    for an order already paid is a 409, never the old payment passed off as the new
    one. A decline is kept on record and answered with 402. The charge is for
    `request.user_id`, the customer orders names; its amount is the order's.

    `faults` may make the charge hang (paymentUnreachable), slow (paymentLatency) or fail
    (paymentFailure); `caller_gone` tells a hanging charge when to stop."""
    if faults and (unreachable := faults.active("paymentUnreachable")):
        await _never_answer(unreachable, caller_gone)
    await _refuse_if_cancelled(session, request.order_id)
    existing = await store.settled_payment(session, request.order_id)
    if existing is not None:
        return _same_charge(existing, request)

    payment = Payment(id=uuid.uuid4(), order_id=request.order_id, user_id=request.user_id,
                      amount=request.amount, currency=request.currency,
                      method=request.payment_method, token=f"tok_{secrets.token_hex(12)}")
    # The schema decides which details come with which method (`payment_method`).
    details = request.payment_details
    if isinstance(details, CardDetails):
        digits = _check_card(details)
        payment.brand, payment.last4 = card_brand(digits), digits[-4:]
        decline = DECLINING_CARDS.get(digits)
    else:
        decline = (DeclineReason.INSUFFICIENT_FUNDS if details.wallet_id == EMPTY_WALLET
                   else None)

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
    # The caller may have given up during the round trip above and cancelled the order.
    # Checked again under the order's lock, which the cancellation takes too: either it
    # is already recorded (refuse), or it will find this charge once committed (refund).
    await store.lock_order(session, request.order_id)
    await _refuse_if_cancelled(session, request.order_id)
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
        raise Problem(402, "payment-declined", _declined(decline),
                      reason=decline, payment_id=str(payment.id), keep_changes=True)

    payment.status = "succeeded"
    try:
        async with session.begin_nested():
            await store.add_payment(session, payment)
            # With the charge, in its transaction: orders hears of every charge that
            # went through, even when this answer never reaches it.
            await store.add_event(session, PAYMENT_SUCCEEDED, succeeded_event(payment))
    except IntegrityError:
        # Another request charged this order at the same moment, and won.
        existing = await store.settled_payment(session, request.order_id)
        assert existing is not None
        return _same_charge(existing, request)
    _charged.add(1, {"method": payment.method})
    return PaymentOut.model_validate(payment)


def _same_charge(existing: Payment, request: Charge) -> PaymentOut:
    """The payment already taken for the order, when the request asks for the same
    money; a 409 when it asks for another amount or currency."""
    if (existing.amount, existing.currency) != (request.amount, request.currency):
        logger.warning("refused a charge of %s %s for order %s: it was already paid "
                       "%s %s", request.amount, request.currency, request.order_id,
                       existing.amount, existing.currency,
                       extra={"order_id": str(request.order_id),
                              "payment_id": str(existing.id)})
        raise Problem(409, "charge-mismatch",
                      f"Order {request.order_id} was already paid {existing.amount} "
                      f"{existing.currency}, not {request.amount} {request.currency}; "
                      "nothing more was charged.",
                      payment_id=str(existing.id), order_id=str(request.order_id))
    return PaymentOut.model_validate(existing)


async def refund(session: AsyncSession, payment_id: uuid.UUID) -> PaymentOut:
    """Give a successful payment's money back; asking again changes nothing."""
    refunded = await store.refund_payment(session, payment_id, REFUND_REQUESTED)
    if refunded is not None:
        _refunds.add(1, {semconv.PAYMENT_REFUND_REASON: REFUND_REQUESTED})
        trace.get_current_span().set_attribute(semconv.PAYMENT_ID, str(payment_id))
        logger.info("payment %s of order %s refunded on request", payment_id,
                    refunded.order_id, extra={"payment_id": str(payment_id),
                                              "order_id": str(refunded.order_id)})
        return PaymentOut.model_validate(refunded)
    return await payment(session, payment_id)


async def order_cancelled(session: AsyncSession, event: dict[str, Any], event_id: str
                          ) -> list[Payment] | None:
    """Handle an `order.cancelled` event: remember the cancellation (so a later charge is
    refused) and refund the order's successful charge, if there is one. Returns the
    refunded payments, or None when this cancellation had already been handled (a
    redelivery): nothing is done twice."""
    order_id = uuid.UUID(str(event["order_id"]))
    reason = str(event.get("reason") or "cancelled")
    span = trace.get_current_span()
    span.set_attribute(semconv.ORDER_ID, str(order_id))
    if event.get("number"):
        span.set_attribute(semconv.ORDER_NUMBER, str(event["number"]))
    span.set_attribute(semconv.ORDER_CANCEL_REASON, reason)
    await store.lock_order(session, order_id)
    if not await store.remember_cancellation(session, order_id, reason, event_id):
        span.set_attribute(semconv.EVENT_DUPLICATE, True)
        logger.info("cancellation of order %s already handled; nothing to do", order_id,
                    extra={"order_id": str(order_id), "event_id": event_id})
        return None
    refunded = list(await store.refund_order_payments(session, order_id,
                                                      REFUND_ORDER_CANCELLED))
    for paid in refunded:
        attributes = {semconv.PAYMENT_ID: str(paid.id),
                      semconv.PAYMENT_REFUND_REASON: REFUND_ORDER_CANCELLED}
        span.set_attributes(attributes)
        span.add_event("payment refunded: the order was cancelled after it was charged",
                       attributes)
        # The amount and order, never card data.
        logger.warning("refunded payment %s (%s %s) of order %s: the order was cancelled "
                       "(%s) after it was charged", paid.id, paid.amount,
                       paid.currency, order_id, reason,
                       extra={"order_id": str(order_id), "payment_id": str(paid.id),
                              "cancel_reason": reason,
                              "refund_reason": REFUND_ORDER_CANCELLED})
    if not refunded:
        logger.info("order %s cancelled (%s): no charge to refund", order_id, reason,
                    extra={"order_id": str(order_id), "cancel_reason": reason})
    return refunded


async def on_order_cancelled(db: Database, event: dict[str, Any], event_id: str) -> None:
    """The `order.cancelled` consumer: `order_cancelled` in a transaction of its own,
    with its refunds counted once committed (a failed try is redelivered and counted by
    the one that succeeds)."""
    async with db.transaction() as session:
        refunded = await order_cancelled(session, event, event_id)
    if refunded:
        _refunds.add(len(refunded), {semconv.PAYMENT_REFUND_REASON: REFUND_ORDER_CANCELLED})


async def payment(session: AsyncSession, payment_id: uuid.UUID,
                  caller: Principal | None = None) -> PaymentOut:
    """One payment. A customer `caller` sees only their own: someone else's is "not
    found", as if it did not exist."""
    found = await store.get_payment(session, payment_id)
    if found is None or (caller is not None and not (caller.is_service or caller.is_admin)
                         and found.user_id != caller.user_id):
        raise Problem(404, "payment-not-found", f"There is no payment {payment_id}.")
    return PaymentOut.model_validate(found)
