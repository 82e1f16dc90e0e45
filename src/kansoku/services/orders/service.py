"""Checkout, as a saga across services: reserve stock → charge → commit the stock.

Every step that fails undoes the ones before it (release the stock, refund the money)
and the order records why it was cancelled. A charge whose answer never came (a timeout)
may still have been taken: payments consumes `order.cancelled` and refunds it, and
refuses a charge that arrives after the cancellation. Each step is safe to repeat:
reservations are keyed by order id, charges too, and the order row is locked while it
is paid. A crash between steps is covered by the reservation's expiry.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
from opentelemetry import metrics, trace
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kansoku.contracts.calls import Caller, Refused
from kansoku.contracts.clients import CartClient, CatalogClient, InventoryClient, PaymentsClient
from kansoku.contracts.reasons import cancellation_words
from kansoku.contracts.schemas import CancelReason, ChargeRequest, Payment, ReservedLine
from kansoku.kit import approaches, i18n, semconv
from kansoku.kit.auth import Principal
from kansoku.kit.clock import utc_now
from kansoku.kit.db import Database
from kansoku.kit.errors import DependencyUnavailable, Problem
from kansoku.kit.i18n import _, ngettext
from kansoku.services.orders import store
from kansoku.services.orders.models import Order, OrderItem
from kansoku.services.orders.schemas import (
    CancelledOrder,
    CurrencyRevenue,
    LineRequest,
    OrderOut,
    OrderPage,
    PaymentResult,
    PayOrder,
    PlaceOrder,
    SalesSummary,
)

logger = logging.getLogger(__name__)

_meter = metrics.get_meter("kansoku.orders")
_orders = _meter.create_counter(semconv.METRIC_ORDERS, unit="{order}",
                                description="Orders, by status they reached")
_revenue = _meter.create_counter(semconv.METRIC_REVENUE, unit="{currency_unit}",
                                 description="Revenue of paid orders, by currency")
_items_sold = _meter.create_counter(semconv.METRIC_ITEMS_SOLD, unit="{unit}",
                                    description="Units sold in paid orders")

#: The largest amount an order (and a charge) holds: `numeric(12, 2)`.
MAX_AMOUNT = Decimal("9999999999.99")


@dataclass(frozen=True)
class Downstream:
    """The services checkout calls, and who it calls them as: the customer's own token
    for their cart; orders' service token (`orders`) for the steps only orders may
    take — reserving and committing stock, charging and refunding."""

    catalog: CatalogClient
    inventory: InventoryClient
    cart: CartClient
    payments: PaymentsClient
    #: Orders itself, with the service token identity issued to it.
    orders: Caller


def _event(order: Order, **extra: Any) -> dict[str, Any]:
    """The payload of an event about `order`."""
    return {
        "order_id": str(order.id), "number": order.number, "status": order.status,
        "user_id": order.user_id, "email": order.customer_email or "",
        "name": order.customer_name or "",
        "language": order.language or str(i18n.DEFAULT_LANGUAGE),
        "total": str(order.total), "currency": order.currency,
        "items": [{"product_id": item.product_id, "name": item.name,
                   "quantity": item.quantity, "unit_price": str(item.unit_price)}
                  for item in order.items],
        **extra,
    }


def _current_trace_id() -> str | None:
    """The trace this request is part of (32 hex digits), kept on the order it places so
    the order's pages can link to it in the explorer: OpenTelemetry's, else the vendor
    approach's (kit/approaches); None when nothing is traced."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        return format(context.trace_id, "032x")
    return approaches.running().current_trace_id()


def _tag_span(order: Order) -> None:
    span = trace.get_current_span()
    span.set_attribute(semconv.ORDER_ID, str(order.id))
    span.set_attribute(semconv.ORDER_NUMBER, order.number)


async def _lines(downstream: Downstream, customer: Caller, request: PlaceOrder
                 ) -> tuple[list[LineRequest], bool]:
    """The lines to order, and whether they came from the cart."""
    if request.items is not None:
        return request.items, False
    lines = [LineRequest(**item) for item in await downstream.cart.lines(customer)]
    if not lines:
        # The request is well-formed; the cart it points at is what is lacking.
        raise Problem(409, "cart-empty", _("Your cart is empty: add products first, or send "
                                           "the items with the order."), field="items")
    return lines, True


async def _priced_items(downstream: Downstream, lines: list[LineRequest]
                        ) -> tuple[list[OrderItem], str]:
    """Order items at today's catalog prices, and their common currency."""
    quantities: dict[int, int] = {}
    for line in lines:
        quantities[line.product_id] = quantities.get(line.product_id, 0) + line.quantity
    try:
        products = await downstream.catalog.products_by_id(sorted(quantities))
    except Refused as exc:
        # Catalog refusing a list of at most 100 known-good ids is catalog's fault.
        raise DependencyUnavailable("catalog", f"it answered HTTP {exc.status}") from exc
    missing = sorted(set(quantities) - set(products))
    if missing:
        raise Problem(404, "unknown-products",
                      ngettext("This product does not exist: {ids}.",
                               "These products do not exist: {ids}.", len(missing)).format(
                          ids=", ".join(map(str, missing))),
                      field="items", product_ids=missing)
    currencies = {products[product_id]["currency"] for product_id in quantities}
    if len(currencies) > 1:
        raise Problem(409, "mixed-currencies",
                      _("One order cannot mix currencies ({currencies}): order them "
                        "separately.").format(currencies=", ".join(sorted(currencies))),
                      field="items")
    currency = currencies.pop()
    items = []
    for product_id, quantity in sorted(quantities.items()):
        price = Decimal(products[product_id]["price"])
        items.append(OrderItem(product_id=product_id, name=products[product_id]["name"],
                               unit_price=price, quantity=quantity, line_total=price * quantity))
    if sum(item.line_total for item in items) > MAX_AMOUNT:
        # Prices are at most ten digits before the point, like every amount here: a
        # hundred lines of 99 such units would not fit the order's (or a charge's) column.
        raise Problem(409, "order-too-large",
                      _("The order's total would be more than {most} {currency}: split it "
                        "into smaller orders.").format(most=f"{MAX_AMOUNT:,}",
                                                       currency=currency), field="items")
    return items, currency


async def place_order(session: AsyncSession, principal: Principal, request: PlaceOrder,
                      idempotency_key: str | None, downstream: Downstream,
                      customer: Caller, reservation_seconds: int) -> OrderOut:
    """Create an order and reserve its stock (step one of the saga). `customer` is the
    caller's own token, for their cart."""
    if idempotency_key:
        existing = await store.order_by_key(session, principal.user_id, idempotency_key)
        if existing is not None:
            return OrderOut.model_validate(existing)
        # End the read's transaction: its connection goes back to the pool instead of
        # being held through the calls to other services below.
        await session.commit()

    lines, from_cart = await _lines(downstream, customer, request)
    items, currency = await _priced_items(downstream, lines)
    # Reserve before writing anything here: most buyers of a sold-out product are turned
    # away by inventory, and they should not hold one of this service's database
    # connections while they wait for that answer. The order id is made up front, so
    # the reservation names the order that is written next.
    order_id = uuid.uuid4()
    try:
        await downstream.inventory.reserve(
            downstream.orders, order_id,
            [ReservedLine(product_id=i.product_id, quantity=i.quantity) for i in items],
            reservation_seconds)
    except Refused:
        _orders.add(1, {"status": "rejected"})
        raise
    try:
        order = Order(id=order_id, number=await store.next_order_number(session),
                      user_id=principal.user_id, status="pending_payment",
                      total=sum((item.line_total for item in items), Decimal("0")),
                      currency=currency,
                      shipping_address=request.shipping_address.model_dump(),
                      idempotency_key=idempotency_key, items=items,
                      trace_id=_current_trace_id(), customer_email=principal.email or None,
                      customer_name=principal.name or None,
                      # The request's language (the gateway passes its reader's on).
                      language=str(i18n.current_language()))
        async with session.begin_nested():
            await store.add_order(session, order)
    except IntegrityError:
        # The same Idempotency-Key, in a request that got there first: hand back its
        # order, and free what this request reserved.
        await _release(downstream, order_id, "duplicate request")
        existing = (await store.order_by_key(session, principal.user_id, idempotency_key)
                    if idempotency_key else None)
        if existing is None:
            raise
        return OrderOut.model_validate(existing)
    except BaseException:
        await _release(downstream, order_id, "the order could not be written")
        raise
    _tag_span(order)

    await store.add_event(session, "order.placed", _event(order))
    if from_cart:
        try:
            await downstream.cart.empty(customer)
        except (DependencyUnavailable, Refused):
            logger.warning("order %s placed, but the cart could not be emptied", order.number)
    _orders.add(1, {"status": "placed"})
    logger.info("order %s placed", order.number,
                extra={"order_id": str(order.id), "order_number": order.number})
    return OrderOut.model_validate(order)


async def _release(downstream: Downstream, order_id: uuid.UUID, what: str) -> None:
    """Free the stock reserved for `order_id` (a compensation). Stock that cannot be
    released now is freed by its reservation's expiry."""
    try:
        await downstream.inventory.release(downstream.orders, order_id)
    except (DependencyUnavailable, Refused) as exc:
        logger.warning("could not release the stock reserved for %s now (%s); the "
                       "reservation expires by itself", what, exc.code)


async def _cancel(session: AsyncSession, order: Order, code: CancelReason, reason: str,
                  downstream: Downstream, decline: str | None = None) -> None:
    """Compensate: free the stock and record why — `reason` in English on the order and
    its event, and on both the `code` (and payments' `decline` code), which the worker's
    e-mails and the shop's pages word in their reader's language. Stock that cannot be
    released now is freed by its reservation's expiry."""
    await _release(downstream, order.id, f"order {order.number}")
    order.status, order.cancel_reason = "cancelled", reason
    order.cancel_reason_code, order.decline_reason = code.value, decline
    # In the waterfall, between the failed step and the order.cancelled publish.
    trace.get_current_span().add_event("order cancelled",
                                       {semconv.ORDER_CANCEL_REASON: reason})
    why: dict[str, str] = {"reason": reason, "reason_code": code.value}
    if decline:
        why["decline_reason"] = decline
    await store.add_event(session, "order.cancelled", _event(order, **why))
    await session.flush()
    _orders.add(1, {"status": "cancelled"})
    logger.info("order %s cancelled: %s", order.number, reason,
                extra={"order_id": str(order.id), "order_number": order.number})


async def pay_order(session: AsyncSession, principal: Principal, order_id: uuid.UUID,
                    request: PayOrder, downstream: Downstream) -> PaymentResult:
    """Charge the order and commit its stock (steps two and three of the saga). The
    charge is orders' own request, for the order's total from this service's record —
    never an amount the customer names — and the payment payments answers with is
    checked against that total before the order is called paid."""
    order = await store.users_order(session, principal.user_id, order_id, lock=True)
    if order is None:
        raise Problem(404, "order-not-found",
                      _("You have no order {order_id}.").format(order_id=order_id))
    _tag_span(order)
    if order.status == "cancelled":
        raise Problem(409, "order-cancelled",
                      _("Order {number} was cancelled ({reason}).").format(
                          number=order.number, reason=cancellation_words(
                              order.cancel_reason_code, order.decline_reason,
                              order.cancel_reason)))
    if order.customer_email is None:
        # Placed before orders kept whom an order is for.
        order.customer_email, order.customer_name = principal.email or None, principal.name or None

    try:
        payment = await downstream.payments.charge(downstream.orders, ChargeRequest(
            order_id=order.id, user_id=order.user_id, amount=order.total,
            currency=order.currency, payment_method=request.payment_method,
            payment_details=request.payment_details))
    except DependencyUnavailable as exc:
        if exc.dependency == "identity":
            # Orders could not get its own service token (identity away, no service
            # secret): no charge was asked for, and the order waits as it is.
            raise
        if exc.request_sent and not isinstance(exc.__cause__, httpx.TimeoutException):
            # Payments got the charge and the connection broke before its answer (it
            # stopped, or was killed): the charge may have gone through. If it did, its
            # `payment.succeeded` settles the order by itself (`payment_succeeded`);
            # if not, paying again charges once. So the order waits, untouched.
            raise Problem(503, "payment-outcome-unknown",
                          _("The payment service did not answer; the charge may have gone "
                            "through. Retry with the same key: paying order {number} again "
                            "never charges twice, and a charge that went through pays the "
                            "order by itself.").format(number=order.number),
                          headers={"Retry-After": "5"}, order_status=order.status,
                          dependency="payments") from exc
        # After a timeout the charge may still go through: payments refunds it when it
        # receives order.cancelled (the reason says so to whoever reads the order). The
        # order is cancelled so that its stock is not held through a payments outage.
        if exc.request_sent:
            await _cancel(session, order, CancelReason.PAYMENTS_TIMED_OUT,
                          "payments did not answer in time; any charge is refunded",
                          downstream)
        else:
            await _cancel(session, order, CancelReason.PAYMENTS_UNAVAILABLE,
                          "payments unavailable", downstream)
        raise Problem(503, "payments-unavailable",
                      _("Payments are unavailable right now, so order {number} was "
                        "cancelled and its items released. Please order again shortly."
                        ).format(number=order.number),
                      headers={"Retry-After": "10"}, keep_changes=True,
                      order_status=order.status, dependency="payments") from exc
    except Refused as refused:
        if refused.status == 402:
            decline = str(refused.extensions.get("reason") or "declined")
            await _cancel(session, order, CancelReason.PAYMENT_DECLINED,
                          f"payment declined: {decline}", downstream, decline=decline)
            refused.keep_changes = True
            refused.extensions["order_status"] = order.status
        # Otherwise a card that fails the checks (422): nothing happened, the order waits.
        raise
    await _settle(session, order, payment, downstream)
    return PaymentResult(
        id=payment.id, order_id=order.id, order_number=order.number,
        order_status=order.status, status=payment.status, amount=payment.amount,
        currency=payment.currency, method=payment.method, brand=payment.brand,
        last4=payment.last4)


async def _settle(session: AsyncSession, order: Order, payment: Payment,
                  downstream: Downstream) -> None:
    """The order's charge went through: commit its stock and call it paid — once. The
    caller holds the order's lock. An order already paid stays as it is; a payment that
    is not exactly the order's total never pays it (409); stock whose reservation ran
    out means the money goes back and the order is cancelled (409)."""
    if order.status == "paid":
        return
    if not payment.settles(order.total, order.currency):
        # Payments answered with a payment of another amount: never call that paid.
        logger.error("order %s was answered with payment %s of %s %s, not its total "
                     "%s %s; the order stays unpaid", order.number, payment.id,
                     payment.amount, payment.currency, order.total, order.currency,
                     extra={"order_id": str(order.id), "payment_id": str(payment.id)})
        raise Problem(409, "payment-mismatch",
                      _("Order {number} costs {total} {currency}, but the payment on record "
                        "is {paid} {paid_currency}: the order was not marked paid.").format(
                          number=order.number, total=order.total, currency=order.currency,
                          paid=payment.amount, paid_currency=payment.currency),
                      order_status=order.status)
    try:
        await downstream.inventory.commit(downstream.orders, order.id)
    except Refused:
        try:
            await downstream.payments.refund(downstream.orders, payment.id)
        except (DependencyUnavailable, Refused):
            logger.warning("could not refund payment %s of order %s now; payments "
                           "refunds it when it receives order.cancelled",
                           payment.id, order.number)
        await _cancel(session, order, CancelReason.RESERVATION_EXPIRED,
                      "stock no longer reserved; refunded", downstream)
        raise Problem(409, "reservation-expired",
                      _("Order {number} waited too long: its items were released. The "
                        "payment was refunded.").format(number=order.number), keep_changes=True,
                      order_status=order.status) from None
    order.status, order.payment_id = "paid", payment.id
    await store.add_event(session, "order.paid", _event(order, payment_id=str(payment.id)))
    await session.flush()
    _orders.add(1, {"status": "paid"})
    _revenue.add(float(order.total), {"currency": order.currency})
    _items_sold.add(sum(item.quantity for item in order.items))
    logger.info("order %s paid", order.number,
                extra={"order_id": str(order.id), "order_number": order.number})


#: The durable JetStream consumer through which orders hears of every charge.
PAYMENTS_CONSUMER = "orders-payment-succeeded"


async def payment_succeeded(session: AsyncSession, event: dict[str, Any],
                            downstream: Downstream) -> None:
    """Handle `payment.succeeded`: settle the order if it still waits for its payment.

    The usual checkout has already done it (the order is paid: nothing to do). This is
    for the charge whose answer never reached orders — orders stopped between the
    charge and the answer, or the connection broke — which would otherwise leave the
    order waiting with the customer's money taken. A cancelled order is not revived:
    payments refunds its charge on `order.cancelled`."""
    payment = Payment.model_validate(event)
    span = trace.get_current_span()
    span.set_attribute(semconv.ORDER_ID, str(payment.order_id))
    span.set_attribute(semconv.PAYMENT_ID, str(payment.id))
    order = await store.order_for_update(session, payment.order_id)
    if order is None or order.status != "pending_payment":
        # Paid is the usual case (the checkout got its answer): not worth an INFO line
        # per checkout. An unknown or cancelled order is.
        logger.log(logging.DEBUG if order is not None and order.status == "paid"
                   else logging.INFO, "payment %s: order %s is %s; nothing to settle",
                   payment.id, payment.order_id, order.status if order else "unknown",
                   extra={"order_id": str(payment.order_id), "payment_id": str(payment.id)})
        return
    _tag_span(order)
    span.add_event("settling an order whose payment answer was missed")
    logger.warning("order %s was charged but never heard the answer: settling it from "
                   "payment %s", order.number, payment.id,
                   extra={"order_id": str(order.id), "payment_id": str(payment.id)})
    try:
        await _settle(session, order, payment, downstream)
    except Problem as problem:
        # Settled another way — cancelled and refunded (kept), or a mismatch (logged, the
        # order left waiting): the event is handled; redelivering it changes nothing.
        logger.info("payment %s did not pay order %s: %s", payment.id, order.number,
                    problem.detail, extra={"order_id": str(order.id)})


async def on_payment_succeeded(db: Database, downstream: Downstream, event: dict[str, Any],
                               event_id: str) -> None:
    """The `payment.succeeded` consumer: `payment_succeeded` in a transaction of its
    own (a failed try is redelivered)."""
    async with db.transaction() as session:
        await payment_succeeded(session, event, downstream)


async def order(session: AsyncSession, principal: Principal, order_id: uuid.UUID) -> OrderOut:
    found = await store.users_order(session, principal.user_id, order_id)
    if found is None:
        raise Problem(404, "order-not-found",
                      _("You have no order {order_id}.").format(order_id=order_id))
    return OrderOut.model_validate(found)


async def orders(session: AsyncSession, principal: Principal, *, limit: int, offset: int
                 ) -> OrderPage:
    rows = await store.users_orders(session, principal.user_id, limit=limit, offset=offset)
    return OrderPage(items=[OrderOut.model_validate(row) for row in rows],
                     total=await store.count_users_orders(session, principal.user_id),
                     limit=limit, offset=offset)


def start_of_today() -> datetime:
    """Midnight UTC today, naive like the orders' timestamps: the dashboard's "today"."""
    return utc_now().replace(hour=0, minute=0, second=0, microsecond=0)


async def sales_summary(session: AsyncSession, since: datetime | None = None, *,
                        cancellations: int = 5) -> SalesSummary:
    """How many orders were placed since `since` (default: today, UTC), what became of
    them, and the revenue of the paid ones, per currency. An order counts on the day it
    was placed, even when it was paid a little later."""
    if since is None:
        since = start_of_today()
    elif since.tzinfo is not None:  # the columns hold UTC without a zone
        since = since.astimezone(UTC).replace(tzinfo=None)
    counts = {"paid": 0, "pending_payment": 0, "cancelled": 0}
    revenue: dict[str, CurrencyRevenue] = {}
    for status, currency, count, total in await store.orders_by_status_since(session, since):
        counts[status] = counts.get(status, 0) + count
        if status == "paid":
            revenue[currency] = CurrencyRevenue(currency=currency, paid_orders=count,
                                                revenue=total)
    cancelled = await store.cancelled_since(session, since, limit=cancellations)
    return SalesSummary(
        since=since, orders=sum(counts.values()), paid=counts["paid"],
        pending_payment=counts["pending_payment"], cancelled=counts["cancelled"],
        revenue=[revenue[currency] for currency in sorted(revenue)],
        recent_cancellations=[CancelledOrder.model_validate(row) for row in cancelled])
