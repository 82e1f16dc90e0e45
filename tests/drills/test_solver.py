"""The solver against a real explorer fed over OTLP: it finds a flag at work, a silent
service, or nothing, from the explorer's API alone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from kansoku.drills import model, solver
from tests.support import in_memory_explorer, otlp_span, send_spans


@pytest.fixture
async def explorer() -> AsyncIterator[httpx.AsyncClient]:
    async with in_memory_explorer() as client:
        yield client


def since() -> datetime:
    return datetime.now(UTC) - timedelta(minutes=1)


async def test_a_flag_at_work(explorer: httpx.AsyncClient) -> None:
    flagged = otlp_span(1, 1, "GET /products", seconds=2.1,
                        attributes={"feature_flag.key": "catalogSlowQuery"})
    await send_spans(explorer, "catalog", flagged)
    found = await solver.solve(explorer, since())
    assert found == solver.Finding("catalog", "latency", f"{1:032x}",
                                   "spans carry feature_flag.key=catalogSlowQuery")


async def test_a_silent_service_and_one_that_still_answers(explorer: httpx.AsyncClient
                                                           ) -> None:
    await send_spans(explorer, "gateway",
                     otlp_span(2, 1, "GET", error=True, attributes={"peer.service": "cart"}),
                     otlp_span(3, 1, "GET", error=True,
                               attributes={"peer.service": "inventory"}))
    await send_spans(explorer, "cart", otlp_span(4, 1, "GET /cart"))
    found = await solver.solve(explorer, since())
    assert (found.service, found.cause, found.trace_id) == ("inventory", "outage",
                                                            f"{3:032x}")


async def test_nothing_wrong(explorer: httpx.AsyncClient) -> None:
    await send_spans(explorer, "cart", otlp_span(5, 1, "GET /cart"))
    found = await solver.solve(explorer, since())
    assert (found.service, found.cause, found.trace_id) == (None, model.NOTHING, None)
