"""The drills' history on a real PostgreSQL, in the schema `kansoku migrate` makes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from kansoku.drills import store
from kansoku.kit.db import Database
from tests.support import migrated_drills_database

START = datetime(2026, 12, 7, 21, 0, tzinfo=UTC)


@pytest.fixture
async def drills_db(postgres_url: str) -> AsyncIterator[Database]:
    url = await migrated_drills_database(postgres_url)
    database = Database(url, schema=store.SCHEMA, application_name="drills-tests")
    yield database
    await database.dispose()


def finished(user: str, minutes: int, points: int) -> store.FinishedAttempt:
    return store.FinishedAttempt(
        user_name=user, drill_id="checkout-fails", seed=7, fault="flag paymentFailure = 50%",
        started_at=START, ended_at=START + timedelta(minutes=minutes), points=points,
        detect_seconds=60.0, diagnose_seconds=120.5, mitigate_seconds=None, hints_taken=1,
        hint_points=10, wrong_tries=0, false_alarms=0)


async def test_a_learner_s_history_newest_first_and_theirs_only(drills_db: Database) -> None:
    async with drills_db.transaction() as session:
        await store.add_attempt(session, finished("aiko", 5, 90))
        await store.add_attempt(session, finished("aiko", 30, 40))
        await store.add_attempt(session, finished("kenji", 10, 100))
    async with drills_db.transaction() as session:
        mine = await store.history(session, "aiko")
    assert [entry.points for entry in mine] == [40, 90]
    assert mine[1] == finished("aiko", 5, 90)


async def test_points_out_of_range_are_refused(drills_db: Database) -> None:
    with pytest.raises(IntegrityError, match="attempts_points_in_range"):
        async with drills_db.transaction() as session:
            await store.add_attempt(session, finished("aiko", 5, 101))
