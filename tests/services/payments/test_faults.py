"""The payments faults, on a real PostgreSQL over real HTTP: paymentFailure fails charges
with an exception on the span, paymentLatency really waits, paymentUnreachable never
answers and stops once the caller has gone."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from kansoku.faults import flagfile
from kansoku.kit import semconv
from tests.faults import switch
from tests.services.payments.test_api import ORDERS, charge
from tests.services.payments.traced import traced_payments
from tests.support import eventually, serve_in_thread


def exception_types(span: ReadableSpan) -> list[str]:
    """The (unqualified) types of the exceptions recorded on `span`."""
    return [str((event.attributes or {}).get(semconv.EXCEPTION_TYPE)).rsplit(".", 1)[-1]
            for event in span.events if event.name == "exception"]


@dataclass
class Payments:
    url: str
    app: FastAPI
    flags_file: Path
    exporter: InMemorySpanExporter

    async def switch(self, name: str, variant: str) -> None:
        await switch(self.app, self.flags_file, name, variant)

    async def server_span(self, request_id: str) -> ReadableSpan | None:
        """The request's server span; it ends just after the answer is sent, so wait for
        it a little."""
        for _ in range(100):
            span = next((span for span in self.exporter.get_finished_spans()
                         if (span.attributes or {}).get(semconv.REQUEST_ID) == request_id),
                        None)
            if span is not None:
                return span
            await asyncio.sleep(0.02)
        return None


@pytest.fixture(scope="module")
async def payments(postgres_url: str, nats_url: str,
                   tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Payments]:
    flags_file = tmp_path_factory.mktemp("faults") / "flags.json"
    app, exporter = await traced_payments(postgres_url, nats_url, flags_file)
    with serve_in_thread(app, lifespan="on") as url:
        yield Payments(url, app, flags_file, exporter)


@pytest.fixture(autouse=True)
def flags_off(payments: Payments) -> Iterator[None]:
    yield
    flagfile.reset(payments.flags_file)


async def test_payment_failure_fails_the_charge_as_an_error(payments: Payments) -> None:
    await payments.switch("paymentFailure", "100%")
    order = uuid.uuid4()
    async with httpx.AsyncClient(base_url=payments.url) as client:
        failed = await client.post("/charges", json=charge(order), headers=ORDERS)
        assert failed.status_code == 500
        assert failed.json()["type"].endswith("/payment-processing-failed")
        span = await payments.server_span(failed.headers["x-request-id"])
        assert span is not None and span.status.status_code is StatusCode.ERROR
        attributes = span.attributes or {}
        assert attributes[semconv.FEATURE_FLAG_KEY] == "paymentFailure"
        assert attributes[semconv.FEATURE_FLAG_VARIANT] == "100%"
        assert exception_types(span) == ["PaymentProcessingError"]
        # Nothing was charged: once the flag is off, the same order pays normally.
        await payments.switch("paymentFailure", "off")
        paid = await client.post("/charges", json=charge(order), headers=ORDERS)
    assert paid.status_code == 201, paid.text


async def test_payment_latency_adds_its_seconds(payments: Payments) -> None:
    await payments.switch("paymentLatency", "1s")
    async with httpx.AsyncClient(base_url=payments.url) as client:
        started = time.monotonic()
        paid = await client.post("/charges", json=charge(), headers=ORDERS)
        elapsed = time.monotonic() - started
    assert paid.status_code == 201 and elapsed >= 1.0
    span = await payments.server_span(paid.headers["x-request-id"])
    assert span is not None
    assert (span.attributes or {})[semconv.FEATURE_FLAG_VARIANT] == "1s"


async def test_payment_unreachable_never_answers_and_lets_go_of_a_gone_caller(
        payments: Payments) -> None:
    await payments.switch("paymentUnreachable", "on")
    request_id = f"unreachable-{uuid.uuid4()}"
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=payments.url, timeout=httpx.Timeout(
            5, read=0.8)) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post("/charges", json=charge(),
                              headers={**ORDERS, "X-Request-ID": request_id})

    async def request_ended() -> bool:
        return await payments.server_span(request_id) is not None
    # The caller left after 0.8 s; payments notices within a poll, not after 60 s.
    await eventually(request_ended, 5, "the hung charge ended")
    assert time.monotonic() - started < 5
    span = await payments.server_span(request_id)
    assert span is not None and span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})[semconv.FEATURE_FLAG_KEY] == "paymentUnreachable"
    assert exception_types(span) == ["CardNetworkUnreachable"]
