"""The answer checker against a real explorer: spans go in over its OTLP endpoint, the
checker reads them back through `/api/traces/{id}` and accepts a trace only if it
shows the fault."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from kansoku.drills import evidence, model
from kansoku.faults.catalogue import FaultCategory
from kansoku.kit.i18n import Language, Phrase
from tests.support import in_memory_explorer, send_spans
from tests.support import otlp_span as span

PAYMENT_FAILURE = model.FlagFault(flag="paymentFailure", variant="50%").truth
PAYMENTS_STOPPED = model.StopFault(stop="payments").truth


@pytest.fixture
async def explorer() -> AsyncIterator[httpx.AsyncClient]:
    async with in_memory_explorer() as client:
        yield client


async def test_a_span_carrying_the_flag_proves_it(explorer: httpx.AsyncClient) -> None:
    await send_spans(explorer, "orders", span(1, 1, "POST /orders/{order_id}/payment"))
    await send_spans(explorer, "payments", span(1, 2, "POST /charges", attributes={
        "feature_flag.key": "paymentFailure"}))
    verdict = await evidence.check(explorer, f"{1:032X}", PAYMENT_FAILURE)
    assert (verdict.proves, str(verdict.reason)) == (
        True, "span 'POST /charges' (payments) carries feature_flag.key=paymentFailure")
    # Words the learner reads in theirs, whichever language checked the answer.
    assert isinstance(verdict.reason, Phrase)
    assert verdict.reason.said_in(Language.JAPANESE) == (
        "スパン 'POST /charges' (payments) に feature_flag.key=paymentFailure が付いています")


async def test_a_healthy_trace_proves_nothing(explorer: httpx.AsyncClient) -> None:
    await send_spans(explorer, "orders", span(2, 1, "POST /orders/{order_id}/payment"))
    await send_spans(explorer, "payments", span(2, 2, "POST /charges"))
    verdict = await evidence.check(explorer, f"{2:032x}", PAYMENT_FAILURE)
    assert not verdict.proves
    assert "shows no error, no slow span and no fault flag" in str(verdict.reason)


async def test_an_error_on_another_service_proves_nothing(explorer: httpx.AsyncClient
                                                          ) -> None:
    await send_spans(explorer, "cart", span(3, 1, "GET /cart", error=True))
    assert not (await evidence.check(explorer, f"{3:032x}", PAYMENT_FAILURE)).proves


async def test_a_failed_call_to_a_stopped_service_proves_its_outage(
        explorer: httpx.AsyncClient) -> None:
    await send_spans(explorer, "orders", span(4, 1, "POST", error=True,
                                              attributes={"peer.service": "payments"}))
    verdict = await evidence.check(explorer, f"{4:032x}", PAYMENTS_STOPPED)
    assert (verdict.proves, str(verdict.reason)) == (
        True, "span 'POST' of orders calling payments ended in error")
    assert PAYMENTS_STOPPED.category == FaultCategory.OUTAGE


async def test_a_slow_span_of_the_service_proves_latency(explorer: httpx.AsyncClient
                                                         ) -> None:
    slow = model.FlagFault(flag="catalogSlowQuery", variant="on").truth
    await send_spans(explorer, "catalog", span(5, 1, "GET /products", seconds=2.2))
    verdict = await evidence.check(explorer, f"{5:032x}", slow)
    assert verdict.proves and str(verdict.reason).endswith("took 2.20s")


async def test_a_trace_the_explorer_never_saw(explorer: httpx.AsyncClient) -> None:
    verdict = await evidence.check(explorer, "ab" * 16, PAYMENT_FAILURE)
    assert (verdict.proves, str(verdict.reason)) == (
        False, f"the explorer has no trace {'ab' * 16} — copy the id of a trace it shows")


@pytest.mark.parametrize("text", ["12345", "g" * 32, ""])
async def test_a_malformed_trace_id_is_refused_before_asking(
        explorer: httpx.AsyncClient, text: str) -> None:
    with pytest.raises(evidence.EvidenceError, match="is not a trace id — copy the 32"):
        await evidence.check(explorer, text, PAYMENT_FAILURE)


async def test_an_explorer_that_is_not_there() -> None:
    async with httpx.AsyncClient(base_url="http://127.0.0.1:9") as nowhere:
        with pytest.raises(evidence.EvidenceError, match="cannot reach the explorer"):
            await evidence.check(nowhere, "ab" * 16, PAYMENT_FAILURE)
