"""The worker's routes (admin): the mailbox, the simulated SMS and push notifications,
the reports, and the dead letters."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from nats.js.errors import APIError, NotFoundError

from kansoku.kit import events
from kansoku.kit.auth import AdminUser
from kansoku.kit.errors import DependencyUnavailable, Problem
from kansoku.kit.fields import StreamSequence
from kansoku.kit.i18n import _
from kansoku.kit.openapi import PROBLEM
from kansoku.services.worker import store
from kansoku.services.worker.models import Report
from kansoku.services.worker.schemas import (
    MailOut,
    NotificationChannel,
    NotificationOut,
    ReportSummary,
)
from kansoku.services.worker.service import InventoryReports

router = APIRouter(tags=["worker"])


def _jetstream(request: Request) -> Any:
    js = request.app.state.connections.jetstream()
    if js is None:
        raise DependencyUnavailable("nats", "not connected")
    return js


@router.get("/mailbox")
async def mailbox(admin: AdminUser, request: Request,
                  limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[MailOut]:
    """E-mails the shop sent, newest first (admin)."""
    async with request.app.state.db.transaction() as session:
        return [MailOut.model_validate(mail) for mail in await store.recent_mail(session, limit)]


@router.get("/notifications")
async def notifications(admin: AdminUser, request: Request,
                        channel: NotificationChannel | None = None,
                        limit: Annotated[int, Query(ge=1, le=500)] = 50
                        ) -> list[NotificationOut]:
    """Text messages and push notifications the shop sent (simulated), newest first;
    `channel` picks one kind (admin)."""
    async with request.app.state.db.transaction() as session:
        return [NotificationOut.model_validate(notification) for notification
                in await store.recent_notifications(session, channel, limit)]


@router.post("/reports/inventory", status_code=201)
async def make_inventory_report(admin: AdminUser, request: Request) -> ReportSummary:
    """Make an inventory report now: every product's stock, with SKU, name and category
    (admin). 503 if inventory or catalog cannot be reached."""
    reports: InventoryReports = request.app.state.reports
    return ReportSummary.model_validate(await reports.on_request(request.app.state.db))


@router.get("/reports")
async def list_reports(admin: AdminUser, request: Request,
                       limit: Annotated[int, Query(ge=1, le=500)] = 50
                       ) -> list[ReportSummary]:
    """Reports made so far, newest first, without their content (admin)."""
    async with request.app.state.db.transaction() as session:
        return [ReportSummary.model_validate(report)
                for report in await store.recent_reports(session, limit)]


async def _report(request: Request, report_id: uuid.UUID) -> Report:
    async with request.app.state.db.transaction() as session:
        report = await store.get_report(session, report_id)
    if report is None:
        raise Problem(404, "report-not-found",
                      _("There is no report {report_id}.").format(report_id=report_id))
    return report


@router.get("/reports/{report_id}.csv", response_class=Response,
            responses={200: {"content": {"text/csv": {}}}, 404: PROBLEM})
async def report_csv(report_id: uuid.UUID, admin: AdminUser, request: Request) -> Response:
    """A report as CSV, one row per product, to download (admin)."""
    report = await _report(request, report_id)
    filename = f"kansoku-{report.kind}-report-{report.created_at:%Y%m%d-%H%M%S}.csv"
    return Response(report.csv, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.get("/reports/{report_id}.json", response_class=JSONResponse,
            responses={404: PROBLEM})
async def report_json(report_id: uuid.UUID, admin: AdminUser, request: Request
                      ) -> JSONResponse:
    """A report as one JSON document: its summary and an `items` list (admin)."""
    report = await _report(request, report_id)
    return JSONResponse(report.document)


@router.get("/dead-letters")
async def dead_letters(admin: AdminUser, request: Request,
                       limit: Annotated[int, Query(ge=1, le=500)] = 100
                       ) -> list[dict[str, Any]]:
    """Events that failed every delivery, with the error (admin)."""
    return await events.dead_letters(_jetstream(request), limit)


@router.post("/dead-letters/{sequence}/replay", responses={404: PROBLEM})
async def replay(sequence: StreamSequence, admin: AdminUser, request: Request
                 ) -> dict[str, Any]:
    """Deliver a dead letter again (admin)."""
    try:
        subject = await events.replay_dead_letter(_jetstream(request), sequence)
    except KeyError as exc:
        raise Problem(422, "not-a-dead-letter", _("Message {sequence} has no original "
                                                  "subject to replay to.").format(
                                                      sequence=sequence)) from exc
    except NotFoundError as exc:
        # Never there, or replayed already (by another admin, or a second click).
        raise Problem(404, "dead-letter-not-found",
                      _("There is no dead letter {sequence}: it may have been replayed "
                        "already.").format(sequence=sequence)) from exc
    except APIError as exc:
        # JetStream refuses a sequence it never handed out (past the stream's last one)
        # as a bad request, not as "not found"; for the caller it is the same.
        if exc.code is not None and exc.code < 500:
            raise Problem(404, "dead-letter-not-found",
                          _("There is no dead letter {sequence}.").format(
                              sequence=sequence)) from exc
        raise
    return {"replayed": sequence, "subject": subject}
