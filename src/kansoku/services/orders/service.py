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

from kansoku.kit import semconv
from kansoku.kit.auth import Principal
from kansoku.kit.clock import utc_now
from kansoku.kit.errors import DependencyUnavailable, Problem
from kansoku.kit.http import ServiceClient
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
    """The services checkout calls."""

    catalog: ServiceClient
    inventory: ServiceClient
    cart: ServiceClient
    payments: ServiceClient


def _as_problem(response: httpx.Response, service: str) -> Problem:
    """A 4xx answer from another service, handed on to the caller as it was."""
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        body = {}
    extensions = {key: value for key, value in body.items()
                  if key not in {"type", "title", "status", "detail", "instance", "request_id"}}
    return Problem(response.status_code, str(body.get("type", "error")).rsplit("/", 1)[-1],
                   str(body.get("detail", f"The {service} service refused the request.")),
                   **extensions)


def _event(order: Order, principal: Principal, **extra: Any) -> dict[str, Any]:
    """The payload of an event about `order`."""
    return {
        "order_id": str(order.id), "number": order.number, "status": order.status,
        "user_id": order.user_id, "email": principal.email, "name": principal.name,
        "total": str(order.total), "currency": order.currency,
        "items": [{"product_id": item.product_id, "name": item.name,
                   "quantity": item.quantity, "unit_price": str(item.unit_price)}
                  for item in order.items],
        **extra,
    }


def _current_trace_id() -> str | None:
    """The trace this request is part of (32 hex digits), kept on the order it places so
    the order's pages can link to it in the explorer; None when nothing is traced."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def _tag_span(order: Order) -> None:
    span = trace.get_current_span()
    span.set_attribute(semconv.ORDER_ID, str(order.id))
    span.set_attribute(semconv.ORDER_NUMBER, order.number)


async def _lines(downstream: Downstream, auth: dict[str, str], request: PlaceOrder
                 ) -> tuple[list[LineRequest], bool]:
    """The lines to order, and whether they came from the cart."""
    if request.items is not None:
        return request.items, False
    response = await downstream.cart.get("/cart", headers=auth)
    if response.status_code != 200:
        raise _as_problem(response, "cart")
    lines = [LineRequest(**item) for item in response.json()["items"]]
    if not lines:
        # The request is well-formed; the cart it points at is what is lacking.
        raise Problem(409, "cart-empty", "Your cart is empty: add products first, or send "
                      "the items with the order.", field="items")
    return lines, True


async def _priced_items(downstream: Downstream, lines: list[LineRequest]
                        ) -> tuple[list[OrderItem], str]:
    """Order items at today's catalog prices, and their common currency."""
    quantities: dict[int, int] = {}
    for line in lines:
        quantities[line.product_id] = quantities.get(line.product_id, 0) + line.quantity
    response = await downstream.catalog.get("/products", params={
        "ids": ",".join(map(str, sorted(quantities))), "limit": 100})
    if response.status_code != 200:
        raise DependencyUnavailable("catalog", f"it answered HTTP {response.status_code}")
    products = {product["id"]: product for product in response.json()["items"]}
    missing = sorted(set(quantities) - set(products))
    if missing:
        raise Problem(404, "unknown-products",
                      f"These products do not exist: {', '.join(map(str, missing))}.",
                      field="items", product_ids=missing)
    currencies = {products[product_id]["currency"] for product_id in quantities}
    if len(currencies) > 1:
        raise Problem(409, "mixed-currencies", "One order cannot mix currencies "
                      f"({', '.join(sorted(currencies))}): order them separately.",
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
                      f"The order's total would be more than {MAX_AMOUNT:,} {currency}: "
                      "split it into smaller orders.", field="items")
    return items, currency


async def place_order(session: AsyncSession, principal: Principal, request: PlaceOrder,
                      idempotency_key: str | None, downstream: Downstream,
                      auth: dict[str, str], reservation_seconds: int) -> OrderOut:
    """Create an order and reserve its stock (step one of the saga)."""
    if idempotency_key:
        existing = await store.order_by_key(session, principal.user_id, idempotency_key)
        if existing is not None:
            return OrderOut.model_validate(existing)
        # End the read's transaction: its connection goes back to the pool instead of
        # being held through the calls to other services below.
        await session.commit()

    lines, from_cart = await _lines(downstream, auth, request)
    items, currency = await _priced_items(downstream, lines)
    # Reserve before writing anything here: most buyers of a sold-out product are turned
    # away by inventory, and they should not hold one of this service's database
    # connections while they wait for that answer. The order id is made up front, so
    # the reservation names the order that is written next.
    order_id = uuid.uuid4()
    reserved = await downstream.inventory.request("POST", "/reservations", headers=auth, json={
        "order_id": str(order_id), "ttl_seconds": reservation_seconds,
        "items": [{"product_id": i.product_id, "quantity": i.quantity} for i in items]})
    if reserved.status_code != 201:
        _orders.add(1, {"status": "rejected"})
        raise _as_problem(reserved, "inventory")
    try:
        order = Order(id=order_id, number=await store.next_order_number(session),
                      user_id=principal.user_id, status="pending_payment",
                      total=sum((item.line_total for item in items), Decimal("0")),
                      currency=currency,
                      shipping_address=request.shipping_address.model_dump(),
                      idempotency_key=idempotency_key, items=items,
                      trace_id=_current_trace_id())
        async with session.begin_nested():
            await store.add_order(session, order)
    except IntegrityError:
        # The same Idempotency-Key, in a request that got there first: hand back its
        # order, and free what this request reserved.
        await _release(downstream, auth, order_id, "duplicate request")
        existing = (await store.order_by_key(session, principal.user_id, idempotency_key)
                    if idempotency_key else None)
        if existing is None:
            raise
        return OrderOut.model_validate(existing)
    except BaseException:
        await _release(downstream, auth, order_id, "the order could not be written")
        raise
    _tag_span(order)

    await store.add_event(session, "order.placed", _event(order, principal))
    if from_cart:
        try:
            await downstream.cart.request("DELETE", "/cart", headers=auth)
        except DependencyUnavailable:
            logger.warning("order %s placed, but the cart could not be emptied", order.number)
    _orders.add(1, {"status": "placed"})
    logger.info("order %s placed", order.number,
                extra={"order_id": str(order.id), "order_number": order.number})
    return OrderOut.model_validate(order)


async def _release(downstream: Downstream, auth: dict[str, str], order_id: uuid.UUID,
                   what: str) -> None:
    """Free the stock reserved for `order_id` (a compensation). Stock that cannot be
    released now is freed by its reservation's expiry."""
    try:
        await downstream.inventory.request("POST", f"/reservations/{order_id}/release",
                                           headers=auth)
    except DependencyUnavailable:
        logger.warning("could not release the stock reserved for %s now; the reservation "
                       "expires by itself", what)


async def _cancel(session: AsyncSession, order: Order, principal: Principal, reason: str,
                  downstream: Downstream, auth: dict[str, str]) -> None:
    """Compensate: free the stock and record why. Stock that cannot be released now is
    freed by its reservation's expiry."""
    await _release(downstream, auth, order.id, f"order {order.number}")
    order.status, order.cancel_reason = "cancelled", reason
    # In the waterfall, between the failed step and the order.cancelled publish.
    trace.get_current_span().add_event("order cancelled",
                                       {semconv.ORDER_CANCEL_REASON: reason})
    await store.add_event(session, "order.cancelled", _event(order, principal, reason=reason))
    await session.flush()
    _orders.add(1, {"status": "cancelled"})
    logger.info("order %s cancelled: %s", order.number, reason,
                extra={"order_id": str(order.id), "order_number": order.number})


async def pay_order(session: AsyncSession, principal: Principal, order_id: uuid.UUID,
                    request: PayOrder, downstream: Downstream, auth: dict[str, str]
                    ) -> PaymentResult:
    """Charge the order and commit its stock (steps two and three of the saga)."""
    order = await store.users_order(session, principal.user_id, order_id, lock=True)
    if order is None:
        raise Problem(404, "order-not-found", f"You have no order {order_id}.")
    _tag_span(order)
    if order.status == "cancelled":
        raise Problem(409, "order-cancelled",
                      f"Order {order.number} was cancelled ({order.cancel_reason}).")

    try:
        charged = await downstream.payments.request("POST", "/charges", headers=auth, json={
            "order_id": str(order.id), "amount": str(order.total), "currency": order.currency,
            "payment_method": request.payment_method,
            "payment_details": request.payment_details})
    except DependencyUnavailable as exc:
        # After a timeout the charge may still go through: payments refunds it when it
        # receives order.cancelled (the reason says so to whoever reads the order).
        timed_out = isinstance(exc.__cause__, httpx.TimeoutException)
        await _cancel(session, order, principal,
                      "payments did not answer in time; any charge is refunded" if timed_out
                      else "payments unavailable", downstream, auth)
        raise Problem(503, "payments-unavailable",
                      f"Payments are unavailable right now, so order {order.number} was "
                      "cancelled and its items released. Please order again shortly.",
                      headers={"Retry-After": "10"}, keep_changes=True,
                      order_status=order.status, dependency="payments") from exc
    if charged.status_code == 402:
        problem = _as_problem(charged, "payments")
        await _cancel(session, order, principal,
                      f"payment declined: {problem.extensions.get('reason', 'declined')}",
                      downstream, auth)
        problem.keep_changes = True
        problem.extensions["order_status"] = order.status
        raise problem
    if charged.status_code != 201:
        # A card that fails the checks (422): nothing happened, the order waits.
        raise _as_problem(charged, "payments")
    payment: dict[str, Any] = charged.json()

    if order.status != "paid":
        committed = await downstream.inventory.request(
            "POST", f"/reservations/{order.id}/commit", headers=auth)
        if committed.status_code != 200:
            try:
                await downstream.payments.request(
                    "POST", f"/charges/{payment['id']}/refund", headers=auth)
            except DependencyUnavailable:
                logger.warning("could not refund payment %s of order %s now; payments "
                               "refunds it when it receives order.cancelled",
                               payment["id"], order.number)
            await _cancel(session, order, principal, "stock no longer reserved; refunded",
                          downstream, auth)
            raise Problem(409, "reservation-expired",
                          f"Order {order.number} waited too long: its items were released. "
                          "The payment was refunded.", keep_changes=True,
                          order_status=order.status)
        order.status, order.payment_id = "paid", uuid.UUID(payment["id"])
        await store.add_event(session, "order.paid",
                              _event(order, principal, payment_id=payment["id"]))
        await session.flush()
        _orders.add(1, {"status": "paid"})
        _revenue.add(float(order.total), {"currency": order.currency})
        _items_sold.add(sum(item.quantity for item in order.items))
        logger.info("order %s paid", order.number,
                    extra={"order_id": str(order.id), "order_number": order.number})
    return PaymentResult(
        id=payment["id"], order_id=order.id, order_number=order.number,
        order_status=order.status, status=payment["status"], amount=Decimal(payment["amount"]),
        currency=payment["currency"], method=payment["method"], brand=payment["brand"],
        last4=payment["last4"])


async def order(session: AsyncSession, principal: Principal, order_id: uuid.UUID) -> OrderOut:
    found = await store.users_order(session, principal.user_id, order_id)
    if found is None:
        raise Problem(404, "order-not-found", f"You have no order {order_id}.")
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
