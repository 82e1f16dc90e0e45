"""The worker's routes: the mailbox and the dead letters (admin)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from kansoku.kit import events
from kansoku.kit.auth import AdminUser
from kansoku.kit.errors import DependencyUnavailable, Problem
from kansoku.services.worker import store

router = APIRouter(tags=["worker"])


class MailOut(BaseModel):
    sender: str
    recipients: list[str]
    subject: str
    body: str
    received_at: datetime


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
        return [MailOut.model_validate(mail, from_attributes=True)
                for mail in await store.recent_mail(session, limit)]


@router.get("/dead-letters")
async def dead_letters(admin: AdminUser, request: Request,
                       limit: Annotated[int, Query(ge=1, le=500)] = 100
                       ) -> list[dict[str, Any]]:
    """Events that failed every delivery, with the error (admin)."""
    return await events.dead_letters(_jetstream(request), limit)


@router.post("/dead-letters/{sequence}/replay")
async def replay(sequence: int, admin: AdminUser, request: Request) -> dict[str, Any]:
    """Deliver a dead letter again (admin)."""
    try:
        subject = await events.replay_dead_letter(_jetstream(request), sequence)
    except KeyError as exc:
        raise Problem(422, "not-a-dead-letter", f"Message {sequence} has no original "
                      "subject to replay to.") from exc
    except Exception as exc:
        if "not found" in str(exc).lower():
            raise Problem(404, "dead-letter-not-found",
                          f"There is no dead letter {sequence}.") from exc
        raise
    return {"replayed": sequence, "subject": subject}
