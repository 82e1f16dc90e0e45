"""The payments routes: internal, for orders (which calls them during checkout with its
own service token) and admins. A customer never charges or refunds directly: the amount
of a charge is the order's, from orders' own record."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Request

from kansoku.kit.auth import Principal, allow
from kansoku.kit.db import DbSession
from kansoku.kit.flags import Faults
from kansoku.kit.openapi import PROBLEM
from kansoku.services.payments import service
from kansoku.services.payments.schemas import Charge, PaymentOut

router = APIRouter(tags=["payments"])

#: Who may call what: only orders charges; orders or an admin refunds; a customer may
#: read their own payment (the service checks it is theirs).
OrdersOnly = Annotated[Principal, allow(services=["orders"])]
OrdersOrAdmin = Annotated[Principal, allow(services=["orders"], admin=True)]
OrdersAdminOrPayer = Annotated[Principal, allow(services=["orders"], admin=True, customers=True)]


@router.post("/charges", status_code=201, responses={402: PROBLEM, 409: PROBLEM})
async def charge(request: Charge, caller: OrdersOnly, session: DbSession, faults: Faults,
                 http: Request) -> PaymentOut:
    """Charge an order for its customer (once: a repeat returns the same payment; 409 if
    the order was already paid a different amount). 402 when declined. Orders only."""
    return await service.charge(session, request, faults, http.is_disconnected)


@router.get("/charges/{payment_id}", responses={404: PROBLEM})
async def get_charge(payment_id: uuid.UUID, caller: OrdersAdminOrPayer, session: DbSession
                     ) -> PaymentOut:
    """One payment: for orders, an admin, or the customer who paid it (404 for anyone
    else, who learns nothing of it)."""
    return await service.payment(session, payment_id, caller)


@router.post("/charges/{payment_id}/refund", responses={404: PROBLEM})
async def refund(payment_id: uuid.UUID, caller: OrdersOrAdmin, session: DbSession
                 ) -> PaymentOut:
    """Give the money back (checkout does this if the order cannot be completed; an
    admin may too). Orders or an admin."""
    return await service.refund(session, payment_id)
