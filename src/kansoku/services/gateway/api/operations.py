"""The admin's operations: stock, e-mails and notifications sent, reports, dead letters,
sales, and the fault flags. Every route is for the admin role (each service checks the
token again)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response

from kansoku.contracts.calls import Json
from kansoku.kit.auth import AdminUser
from kansoku.kit.fields import DbId, Offset, StreamSequence, ZonedDateTime
from kansoku.kit.openapi import PROBLEM
from kansoku.services.gateway import faults
from kansoku.services.gateway.api.catalog import passed_on
from kansoku.services.gateway.api.common import ApiCaller
from kansoku.services.gateway.api.schemas import (
    DeadLetter,
    FaultFlag,
    FlagChange,
    Mail,
    Notification,
    ReportSummary,
    SalesSummary,
    StockChange,
    StockLevel,
    StockPage,
)
from kansoku.services.gateway.state import GatewayDep

router = APIRouter(tags=["admin"])


# --- stock ----------------------------------------------------------------------------

@router.get("/inventory", response_model=StockPage, responses={403: PROBLEM})
async def inventory(
    admin: AdminUser, caller: ApiCaller, gateway: GatewayDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[Offset, Query()] = 0,
    low_only: bool = False,
) -> Json:
    """Stock levels, reserved units and the low-stock flag of every product (admin)."""
    return await gateway.clients.inventory.overview(caller, limit=limit, offset=offset,
                                                    low_only=low_only)


@router.post("/inventory/{product_id}/adjust", response_model=StockLevel,
             responses={403: PROBLEM, 409: PROBLEM, 422: PROBLEM})
async def adjust_stock(product_id: DbId, change: StockChange, admin: AdminUser,
                       caller: ApiCaller, gateway: GatewayDep) -> Json:
    """Restock or remove units, with a reason (admin)."""
    return await gateway.clients.inventory.adjust(caller, product_id, change.delta,
                                                  change.reason)


# --- what the worker did --------------------------------------------------------------

@router.get("/admin/mailbox", response_model=list[Mail], responses={403: PROBLEM})
async def mailbox(admin: AdminUser, caller: ApiCaller, gateway: GatewayDep,
                  limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[Json]:
    """E-mails the shop sent (the embedded mailbox), newest first (admin)."""
    return await gateway.clients.worker.mailbox(caller, limit=limit)


@router.get("/admin/dead-letters", response_model=list[DeadLetter],
            responses={403: PROBLEM, 503: PROBLEM})
async def dead_letters(admin: AdminUser, caller: ApiCaller, gateway: GatewayDep,
                       limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[Json]:
    """Events that failed every delivery, with their error (admin)."""
    return await gateway.clients.worker.dead_letters(caller, limit=limit)


@router.post("/admin/dead-letters/{sequence}/replay", responses={403: PROBLEM, 404: PROBLEM})
async def replay_dead_letter(sequence: StreamSequence, admin: AdminUser, caller: ApiCaller,
                             gateway: GatewayDep) -> Json:
    """Deliver a dead letter again (admin)."""
    return await gateway.clients.worker.replay_dead_letter(caller, sequence)


@router.get("/admin/notifications", response_model=list[Notification],
            responses={403: PROBLEM, 422: PROBLEM})
async def notifications(
    admin: AdminUser, caller: ApiCaller, gateway: GatewayDep,
    channel: Annotated[Literal["sms", "push"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[Json]:
    """Text messages and push notifications the shop sent (simulated), newest first
    (admin)."""
    return await gateway.clients.worker.notifications(caller, limit=limit, channel=channel)


@router.get("/admin/reports", response_model=list[ReportSummary], responses={403: PROBLEM})
async def reports(admin: AdminUser, caller: ApiCaller, gateway: GatewayDep,
                  limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[Json]:
    """Inventory reports (made every hour, and on request), newest first (admin)."""
    return await gateway.clients.worker.reports(caller, limit=limit)


@router.post("/admin/reports/inventory", status_code=201, response_model=ReportSummary,
             responses={403: PROBLEM, 503: PROBLEM})
async def make_inventory_report(admin: AdminUser, caller: ApiCaller, gateway: GatewayDep
                                ) -> Json:
    """Make an inventory report now (admin)."""
    return await gateway.clients.worker.make_inventory_report(caller)


@router.get("/admin/reports/{report_id}.{file_format}", response_class=Response,
            responses={200: {"content": {"text/csv": {}, "application/json": {}}},
                       403: PROBLEM, 404: PROBLEM})
async def download_report(report_id: uuid.UUID, file_format: Literal["csv", "json"],
                          admin: AdminUser, caller: ApiCaller, gateway: GatewayDep
                          ) -> Response:
    """Download a report as CSV (for a spreadsheet) or JSON (for a script) (admin)."""
    return passed_on(await gateway.clients.worker.report_file(caller, report_id,
                                                              file_format))


# --- sales ----------------------------------------------------------------------------

@router.get("/admin/sales", response_model=SalesSummary, responses={403: PROBLEM,
                                                                    422: PROBLEM})
async def sales(
    admin: AdminUser, caller: ApiCaller, gateway: GatewayDep,
    since: Annotated[ZonedDateTime | None, Query(
        description="RFC 3339, with its zone (`2026-01-31T00:00:00Z`). Default: "
                    "midnight UTC today")] = None,
) -> Json:
    """Orders placed since `since` by status, the paid ones' revenue per currency, and
    the newest cancelled orders with their reason (admin)."""
    return await gateway.clients.orders.sales_summary(caller, since=since)


# --- fault flags ----------------------------------------------------------------------

@router.get("/admin/flags", response_model=list[FaultFlag],
            responses={403: PROBLEM, 503: PROBLEM})
async def fault_flags(admin: AdminUser, request: Request) -> list[FaultFlag]:
    """Every fault flag with its current variant, its variants, and what it does (admin).
    See docs/faults.md."""
    return await faults.current(faults.flag_store(request))


@router.put("/admin/flags/{name}", response_model=FaultFlag,
            responses={403: PROBLEM, 404: PROBLEM, 422: PROBLEM, 503: PROBLEM})
async def set_fault_flag(name: str, change: FlagChange, admin: AdminUser, request: Request
                         ) -> FaultFlag:
    """Switch a fault flag to one of its variants (`off` turns it off); every service
    sees it within a second (admin). 404 names the flags, 422 the flag's variants."""
    return await faults.switch(faults.flag_store(request), name, change.variant)


@router.post("/admin/flags/reset", response_model=list[FaultFlag],
             responses={403: PROBLEM, 503: PROBLEM})
async def reset_fault_flags(admin: AdminUser, request: Request) -> list[FaultFlag]:
    """Turn every fault flag off (admin)."""
    return await faults.reset(faults.flag_store(request))
