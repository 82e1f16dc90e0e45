"""The payments routes (internal: orders calls them during checkout)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request

from kansoku.kit.auth import CurrentUser
from kansoku.kit.db import DbSession
from kansoku.kit.flags import Faults
from kansoku.kit.openapi import PROBLEM
from kansoku.services.payments import service
from kansoku.services.payments.schemas import Charge, PaymentOut

router = APIRouter(tags=["payments"])


@router.post("/charges", status_code=201, responses={402: PROBLEM, 409: PROBLEM})
async def charge(request: Charge, user: CurrentUser, session: DbSession, faults: Faults,
                 http: Request) -> PaymentOut:
    """Charge an order (once: a repeat returns the same payment). 402 when declined."""
    return await service.charge(session, user, request, faults, http.is_disconnected)


@router.get("/charges/{payment_id}", responses={404: PROBLEM})
async def get_charge(payment_id: uuid.UUID, user: CurrentUser, session: DbSession
                     ) -> PaymentOut:
    """One payment."""
    return await service.payment(session, payment_id)


@router.post("/charges/{payment_id}/refund", responses={404: PROBLEM})
async def refund(payment_id: uuid.UUID, user: CurrentUser, session: DbSession) -> PaymentOut:
    """Give the money back (checkout does this if the order cannot be completed)."""
    return await service.refund(session, payment_id)
