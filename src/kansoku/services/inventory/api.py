"""The inventory's routes (internal: the gateway and orders call them)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from kansoku.kit.auth import AdminUser, Principal, allow
from kansoku.kit.clock import UtcClock
from kansoku.kit.db import DbSession
from kansoku.kit.fields import DbId, Offset, id_list_pattern
from kansoku.kit.flags import Faults
from kansoku.kit.openapi import PROBLEM
from kansoku.services.inventory import service
from kansoku.services.inventory.schemas import (
    Adjust,
    AdjustmentOut,
    OrderReservation,
    ReservationRequest,
    StockLevel,
    StockPage,
)

router = APIRouter(tags=["inventory"])


def _now(request: Request) -> datetime:
    """Now by the clock the app was made with (`create_app(clock=...)`): a test moves it
    to expire reservations instead of waiting for them."""
    clock: UtcClock = request.app.state.clock
    return clock()


#: Now in UTC (naive), by the app's clock.
Now = Annotated[datetime, Depends(_now)]

# Who may call what. Reservations are checkout's steps: orders makes them with its own
# service token, never a customer (who could otherwise hold a product's whole stock, or
# release someone else's order). An admin may look at one and free it.
OrdersOnly = Annotated[Principal, allow(services=["orders"])]
OrdersOrAdmin = Annotated[Principal, allow(services=["orders"], admin=True)]
#: The worker's inventory report reads every level; so does the admin's page.
WorkerOrAdmin = Annotated[Principal, allow(services=["worker"], admin=True)]


@router.get("/stock")
async def stock_levels(
    session: DbSession,
    faults: Faults,
    product_ids: Annotated[str, Query(description="Comma-separated, at most 100",
                                      max_length=1100, pattern=id_list_pattern(100))],
) -> list[StockLevel]:
    """Stock of several products at once."""
    # The pattern took 1 to 100 ids only, so each part is one.
    ids = [int(part) for part in product_ids.split(",")]
    return await service.levels(session, ids, faults)


@router.get("/stock/{product_id}")
async def stock_level(product_id: DbId, session: DbSession, faults: Faults) -> StockLevel:
    """Stock of one product."""
    return (await service.levels(session, [product_id], faults))[0]


@router.get("/inventory")
async def inventory(
    caller: WorkerOrAdmin,
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[Offset, Query()] = 0,
    low_only: bool = False,
) -> StockPage:
    """Every product's levels, reserved units and low-stock flag (admin, or the worker,
    whose inventory report reads it with its service token)."""
    return await service.overview(session, limit=limit, offset=offset, low_only=low_only)


@router.post("/inventory/{product_id}/adjust", responses={409: PROBLEM})
async def adjust(product_id: DbId, change: Adjust, admin: AdminUser, session: DbSession
                 ) -> StockLevel:
    """Restock (positive delta) or remove units (negative), with a reason (admin)."""
    return await service.adjust(session, product_id, change, admin)


@router.get("/inventory/{product_id}/adjustments")
async def adjustments(
    product_id: DbId, admin: AdminUser, session: DbSession,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> list[AdjustmentOut]:
    """The product's restocks and adjustments, newest first, with their reason (admin)."""
    return await service.adjustments(session, product_id, limit=limit)


@router.post("/reservations", status_code=201, responses={409: PROBLEM})
async def reserve(request: ReservationRequest, caller: OrdersOnly, session: DbSession,
                  faults: Faults, now: Now) -> OrderReservation:
    """Hold every item of an order until it is paid or the TTL runs out (409 if short;
    orders only)."""
    return await service.reserve(session, request, now, faults)


@router.get("/reservations/{order_id}", responses={404: PROBLEM})
async def reservation(order_id: uuid.UUID, caller: OrdersOrAdmin, session: DbSession
                      ) -> OrderReservation:
    """What is held for an order."""
    return await service.reservation(session, order_id)


@router.post("/reservations/{order_id}/commit", responses={404: PROBLEM, 409: PROBLEM})
async def commit(order_id: uuid.UUID, caller: OrdersOnly, session: DbSession
                 ) -> OrderReservation:
    """The order is paid: its units leave the warehouse (orders only)."""
    return await service.commit(session, order_id)


@router.post("/reservations/{order_id}/release", responses={404: PROBLEM})
async def release(order_id: uuid.UUID, caller: OrdersOrAdmin, session: DbSession
                  ) -> OrderReservation:
    """The order will not be paid: its units are available again."""
    return await service.release(session, order_id)
