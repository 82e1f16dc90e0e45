"""Every SQL statement of the drills' history (schema `drills`, `migrations/`). Functions
take the caller's session; the caller's transaction commits."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import AsyncSession

#: The schema `kansoku migrate` creates for the drills.
SCHEMA = "drills"

_metadata = sa.MetaData()
attempts = sa.Table(
    "attempts", _metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("user_name", sa.String(100)),
    sa.Column("drill_id", sa.String(100)),
    sa.Column("seed", sa.BigInteger),
    sa.Column("fault", sa.String(200)),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("ended_at", sa.DateTime(timezone=True)),
    sa.Column("points", sa.Integer),
    sa.Column("detect_seconds", sa.Float),
    sa.Column("diagnose_seconds", sa.Float),
    sa.Column("mitigate_seconds", sa.Float),
    sa.Column("hints_taken", sa.Integer),
    sa.Column("hint_points", sa.Integer),
    sa.Column("wrong_tries", sa.Integer),
    sa.Column("false_alarms", sa.Integer),
)


class FinishedAttempt(BaseModel):
    """One row of a learner's history: a drill run to its end, and its score."""

    model_config = ConfigDict(frozen=True)

    user_name: str
    drill_id: str
    seed: int
    #: The fault the run had, in words (`flag paymentFailure = 50%`, `nothing`).
    fault: str
    started_at: datetime
    ended_at: datetime
    points: int
    detect_seconds: float | None
    diagnose_seconds: float | None
    mitigate_seconds: float | None
    hints_taken: int
    hint_points: int
    wrong_tries: int
    false_alarms: int


async def add_attempt(session: AsyncSession, finished: FinishedAttempt) -> uuid.UUID:
    """Keep a finished attempt; returns its id."""
    attempt_id = uuid.uuid4()
    await session.execute(sa.insert(attempts).values(id=attempt_id, **finished.model_dump()))
    return attempt_id


async def history(session: AsyncSession, user_name: str, limit: int = 20
                  ) -> list[FinishedAttempt]:
    """The user's finished attempts, newest first."""
    rows = await session.execute(
        sa.select(*(attempts.c[name] for name in FinishedAttempt.model_fields))
        .where(attempts.c.user_name == user_name)
        .order_by(attempts.c.ended_at.desc()).limit(limit))
    return [FinishedAttempt.model_validate(dict(row._mapping)) for row in rows]
