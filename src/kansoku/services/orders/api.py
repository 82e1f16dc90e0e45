"""The orders routes (internal: the gateway's public API fronts them). A customer
places, pays and reads their own orders; the sales summary is an admin's."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request

from kansoku.contracts.calls import Bearer
from kansoku.kit.auth import AdminUser, CurrentUser
from kansoku.kit.db import DbSession
from kansoku.kit.fields import Offset, ZonedDateTime
from kansoku.kit.openapi import PROBLEM
from kansoku.services.orders import service
from kansoku.services.orders.schemas import (
    OrderOut,
    OrderPage,
    PaymentResult,
    PayOrder,
    PlaceOrder,
    SalesSummary,
)

router = APIRouter(tags=["orders"])


@router.post("/orders", status_code=201, responses={404: PROBLEM, 409: PROBLEM})
async def place_order(
    order: PlaceOrder, user: CurrentUser, session: DbSession, request: Request,
    idempotency_key: Annotated[str | None, Header(max_length=100)] = None,
) -> OrderOut:
    """Place an order (items, or the cart) and reserve its stock."""
    return await service.place_order(session, user, order, idempotency_key,
                                     request.app.state.downstream, Bearer.of(request),
                                     request.app.state.settings.reservation_seconds)


@router.get("/orders")
async def list_orders(
    user: CurrentUser, session: DbSession,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[Offset, Query()] = 0,
) -> OrderPage:
    """Your orders, newest first."""
    return await service.orders(session, user, limit=limit, offset=offset)


@router.get("/orders/{order_id}", responses={404: PROBLEM})
async def get_order(order_id: uuid.UUID, user: CurrentUser, session: DbSession) -> OrderOut:
    """One of your orders."""
    return await service.order(session, user, order_id)


@router.post("/orders/{order_id}/payment", status_code=201,
             responses={402: PROBLEM, 404: PROBLEM, 409: PROBLEM})
async def pay(order_id: uuid.UUID, payment: PayOrder, user: CurrentUser, session: DbSession,
              request: Request) -> PaymentResult:
    """Pay an order: charge, then commit its stock. Declined: 402, order cancelled."""
    return await service.pay_order(session, user, order_id, payment,
                                   request.app.state.downstream)


@router.get("/sales/summary", tags=["admin"])
async def sales_summary(
    caller: AdminUser, session: DbSession,
    since: Annotated[ZonedDateTime | None, Query(
        description="RFC 3339, with its zone. Default: midnight UTC today")] = None,
) -> SalesSummary:
    """Orders placed since `since` by status, the paid ones' revenue per currency, and
    the newest cancellations (admin)."""
    return await service.sales_summary(session, since)
