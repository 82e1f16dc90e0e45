"""The inventory's logic: levels, restocking, and reservations that never oversell."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime, timedelta
from typing import NoReturn

from opentelemetry import metrics
from sqlalchemy.ext.asyncio import AsyncSession

from kansoku.kit import semconv
from kansoku.kit.auth import Principal
from kansoku.kit.errors import Problem
from kansoku.kit.flags import FaultFlags
from kansoku.kit.i18n import _
from kansoku.services.inventory import store
from kansoku.services.inventory.models import Adjustment, Reservation, Stock
from kansoku.services.inventory.schemas import (
    Adjust,
    AdjustmentOut,
    OrderReservation,
    ReservationOut,
    ReservationRequest,
    StockLevel,
    StockPage,
)

_meter = metrics.get_meter("kansoku.inventory")
_expired = _meter.create_counter(semconv.METRIC_RESERVATIONS_EXPIRED, unit="{reservation}",
                                 description="Unpaid reservations released after their TTL")
_out_of_stock = _meter.create_counter(semconv.METRIC_OUT_OF_STOCK, unit="{request}",
                                      description="Reservations refused for lack of stock")



def level(stock: Stock) -> StockLevel:
    available = stock.on_hand - stock.reserved
    low = available <= stock.low_stock_threshold
    return StockLevel(
        product_id=stock.product_id, on_hand=stock.on_hand, reserved=stock.reserved,
        available=available, low_stock_threshold=stock.low_stock_threshold,
        status="out" if available <= 0 else "low" if low else "in_stock", low_stock=low,
    )


class StockServiceError(Exception):
    """The stock store failed a request (fault inventoryFailure)."""


def _fail_if_faulty(faults: FaultFlags | None, what: str) -> None:
    """With inventoryFailure on, fail its share of requests as a broken store would."""
    fault = faults.active("inventoryFailure") if faults else None
    if fault and fault.hits():
        raise fault.fail(StockServiceError(f"the stock store failed to {what}"), 500,
                         "inventory-failed", f"Inventory could not {what}. "
                         "Please try again.")


async def levels(session: AsyncSession, product_ids: list[int],
                 faults: FaultFlags | None = None) -> list[StockLevel]:
    """Levels of these products; a product never stocked counts as out of stock."""
    _fail_if_faulty(faults, "read stock levels")
    found = {stock.product_id: level(stock) for stock in await store.levels(session, product_ids)}
    return [found.get(product_id) or level(Stock(product_id=product_id, on_hand=0, reserved=0,
                                                 low_stock_threshold=5))
            for product_id in product_ids]


async def overview(session: AsyncSession, *, limit: int, offset: int, low_only: bool
                   ) -> StockPage:
    rows = await store.list_levels(session, limit=limit, offset=offset, low_only=low_only)
    return StockPage(items=[level(stock) for stock in rows],
                     total=await store.count_levels(session, low_only=low_only),
                     limit=limit, offset=offset)


async def _announce_if_low(session: AsyncSession, product_id: int, after: int,
                           threshold: int, units_taken: int) -> None:
    """Write inventory.low_stock when taking `units_taken` left `after` units, crossing
    the threshold — once per crossing, not on every sale below it."""
    if after <= threshold < after + units_taken:
        await store.add_event(session, "inventory.low_stock", {
            "product_id": product_id, "available": after, "low_stock_threshold": threshold})


async def adjust(session: AsyncSession, product_id: int, change: Adjust, actor: Principal
                 ) -> StockLevel:
    if change.delta >= 0:
        stock: Stock | None = await store.add_stock(session, product_id, change.delta)
        if stock is None:
            raise Problem(409, "stock-too-high",
                          _("Cannot add {units} units of product {product_id}: that would be "
                            "more units than the shop can count.").format(
                                units=change.delta, product_id=product_id), field="delta")
    else:
        stock = await store.remove_stock(session, product_id, -change.delta)
    if stock is None:
        raise Problem(409, "stock-too-low",
                      _("Cannot remove {units} units of product {product_id}: stock cannot "
                        "go below zero or below what is reserved for unpaid orders.").format(
                            units=-change.delta, product_id=product_id), field="delta")
    await store.add_adjustment(session, Adjustment(
        product_id=product_id, delta=change.delta, reason=change.reason, actor=actor.user_id))
    if change.delta < 0:
        await _announce_if_low(session, product_id, stock.on_hand - stock.reserved,
                               stock.low_stock_threshold, -change.delta)
    return level(stock)


def _describe(order_id: uuid.UUID, reservations: list[Reservation]) -> OrderReservation:
    statuses = {reservation.status for reservation in reservations}
    return OrderReservation(
        order_id=order_id,
        status=statuses.pop() if len(statuses) == 1 else "mixed",
        items=[ReservationOut.model_validate(reservation) for reservation in reservations],
    )


async def reserve(session: AsyncSession, request: ReservationRequest, now: datetime,
                  faults: FaultFlags | None = None) -> OrderReservation:
    """Hold every item of an order, or none of them (409 names what is short), until
    `ttl_seconds` after `now` (naive UTC, the app's clock).

    Asking again for the same order returns what was reserved the first time: a retried
    request cannot reserve twice.
    """
    _fail_if_faulty(faults, "reserve stock")
    existing = list(await store.reservations_of(session, request.order_id))
    if existing:
        return _describe(request.order_id, existing)
    wanted = Counter[int]()
    for item in request.items:
        wanted[item.product_id] += item.quantity
    # A popular product's stock row is a hot spot: every buyer must lock it. So the
    # cheap checks come first and the lock last, held only until the commit right after:
    # 1. without any lock, refuse what is visibly sold out already (the buyers who come
    #    after the last unit need not queue for the lock to be told no);
    for product_id, left in (await store.available(session, sorted(wanted))).items():
        if left < wanted[product_id]:
            _refuse(product_id, wanted[product_id], left)
    # 2. write the reservations (rows of this order alone, nobody waits for them);
    expires_at = now + timedelta(seconds=request.ttl_seconds)
    reservations = [Reservation(order_id=request.order_id, product_id=product_id,
                                quantity=quantity, status="active", expires_at=expires_at)
                    for product_id, quantity in sorted(wanted.items())]
    await store.add_reservations(session, reservations)
    # 3. take the units, all products in one statement after locking their rows in
    #    product order; the UPDATE re-checks what is available.
    held = await store.hold(session, dict(wanted))
    for product_id in sorted(wanted):
        if product_id not in held:
            # Raising rolls back the reservations and the holds already made.
            _refuse(product_id, wanted[product_id],
                    (await store.available(session, [product_id]))[product_id])
        after, threshold = held[product_id]
        await _announce_if_low(session, product_id, after, threshold, wanted[product_id])
    return _describe(request.order_id, reservations)


def _refuse(product_id: int, wanted: int, left: int) -> NoReturn:
    _out_of_stock.add(1)
    raise Problem(409, "out-of-stock",
                  _("Product {product_id}: {wanted} wanted, {left} left.").format(
                      product_id=product_id, wanted=wanted, left=max(left, 0)),
                  product_id=product_id, available=max(left, 0))


async def reservation(session: AsyncSession, order_id: uuid.UUID) -> OrderReservation:
    found = list(await store.reservations_of(session, order_id))
    if not found:
        raise Problem(404, "reservation-not-found", f"Nothing is reserved for order {order_id}.")
    return _describe(order_id, found)


async def commit(session: AsyncSession, order_id: uuid.UUID) -> OrderReservation:
    """The order is paid. Safe to repeat; 409 if its reservation expired or was released."""
    await store.commit(session, order_id)
    current = await reservation(session, order_id)
    if current.status != "committed":
        raise Problem(409, "reservation-gone",
                      f"The reservation of order {order_id} is {current.status}: its units "
                      "are no longer held.", reservation_status=current.status)
    return current


async def release(session: AsyncSession, order_id: uuid.UUID) -> OrderReservation:
    """The order will not be paid. Safe to repeat; committed units stay sold."""
    await store.release(session, order_id)
    return await reservation(session, order_id)


async def expire_due(session: AsyncSession, now: datetime) -> int:
    """Release the active reservations that expired before `now` (naive UTC, the app's
    clock); returns how many."""
    expired = await store.expire(session, now)
    if expired:
        _expired.add(expired)
    return expired


async def adjustments(session: AsyncSession, product_id: int, *, limit: int
                      ) -> list[AdjustmentOut]:
    """The product's recent restocks and adjustments, newest first."""
    return [AdjustmentOut.model_validate(row)
            for row in await store.adjustments_of(session, product_id, limit=limit)]
