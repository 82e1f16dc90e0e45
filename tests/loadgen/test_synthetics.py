"""A synthetic journey's run, against a gateway that answers badly: a failure, named
with its step, recorded as a trace, metrics and a log record; the request carried the
run's trace context and the synthetic baggage. A journey that cannot run here (no
browser) is skipped, not failed. (Against the real shop: tests/stack/test_load.py.)"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from kansoku.kit import semconv
from kansoku.kit.telemetry import Telemetry
from kansoku.loadgen.synthetics import FAILURE, SKIPPED, Monitor, monitor_password
from tests.support import free_ports, serve_in_thread


class Recorded:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.metrics = InMemoryMetricReader()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.telemetry = Telemetry("synthetics", tracer_provider,
                                   MeterProvider(metric_readers=[self.metrics]))

    def points(self, name: str) -> list[Any]:
        data = self.metrics.get_metrics_data()
        if data is None:  # nothing measured yet
            return []
        return [point for resource in data.resource_metrics
                for scope in resource.scope_metrics for metric in scope.metrics
                if metric.name == name for point in metric.data.data_points]

    def span(self, name: str) -> ReadableSpan:
        return next(span for span in self.spans.get_finished_spans() if span.name == name)


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    recorded = Recorded()
    yield recorded
    recorded.telemetry.shutdown()


@pytest.fixture
def unwell_gateway() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A gateway whose home page answers 503 (as when catalog is away); it keeps the
    headers of what it was sent."""
    app = FastAPI()
    seen: list[dict[str, str]] = []

    @app.get("/")
    async def home(request: Request) -> JSONResponse:
        seen.append(dict(request.headers))
        return JSONResponse({"title": "Service unavailable", "detail": "catalog is away"},
                            status_code=503)

    with serve_in_thread(app) as url:
        yield url, seen


async def test_a_failed_step_makes_a_failed_run_with_its_trace_metrics_and_log(
        recorded: Recorded, unwell_gateway: tuple[str, list[dict[str, str]]],
        caplog: pytest.LogCaptureFixture) -> None:
    gateway, seen = unwell_gateway
    monitor = Monitor(gateway, recorded.telemetry, service_secret="s3cret")
    with caplog.at_level(logging.INFO, logger="kansoku.synthetics"):
        result = await monitor.run("browse")

    assert result.outcome == FAILURE
    assert result.step == "home page"
    assert result.error is not None
    assert "GET / answered 503" in result.error and "catalog is away" in result.error
    assert result.trace_id is not None and len(result.trace_id) == 32

    # One trace: the journey's root, the step under it, the request under the step.
    root = recorded.span("synthetic browse")
    step = recorded.span("step home page")
    request = recorded.span("GET /")
    assert format(root.context.trace_id, "032x") == result.trace_id
    assert root.parent is None
    assert step.parent is not None and step.parent.span_id == root.context.span_id
    assert request.parent is not None and request.parent.span_id == step.context.span_id
    assert root.status.status_code is StatusCode.ERROR
    assert root.attributes is not None
    assert root.attributes[semconv.SYNTHETIC_JOURNEY] == "browse"
    assert root.attributes[semconv.SYNTHETIC_OUTCOME] == FAILURE
    assert request.attributes is not None
    assert request.attributes[semconv.HTTP_RESPONSE_STATUS_CODE] == 503

    # The gateway was sent the request span's context and the synthetic mark.
    (headers,) = seen
    _version, trace_id, parent_id, _ = headers["traceparent"].split("-")
    assert trace_id == result.trace_id
    assert parent_id == format(request.context.span_id, "016x")
    assert "kansoku.synthetic=synthetic" in headers["baggage"]

    (runs,) = recorded.points(semconv.METRIC_SYNTHETIC_RUNS)
    assert runs.value == 1
    assert dict(runs.attributes) == {semconv.SYNTHETIC_JOURNEY: "browse",
                                     semconv.SYNTHETIC_OUTCOME: FAILURE}
    (duration,) = recorded.points(semconv.METRIC_SYNTHETIC_DURATION)
    assert duration.count == 1 and duration.sum == pytest.approx(result.duration_seconds,
                                                                 abs=0.01)

    (record,) = [r for r in caplog.records if r.name == "kansoku.synthetics"]
    assert record.levelno == logging.ERROR
    assert "synthetic browse failed at step home page" in record.getMessage()
    assert getattr(record, semconv.SYNTHETIC_OUTCOME) == FAILURE
    assert monitor.recent[-1] is result


async def test_an_unreachable_gateway_fails_the_first_step(recorded: Recorded) -> None:
    (port,) = free_ports(1)
    monitor = Monitor(f"http://127.0.0.1:{port}", recorded.telemetry, service_secret=None)
    result = await monitor.run("checkout")
    assert result.outcome == FAILURE
    assert result.step == "log in"
    assert result.error is not None and "ConnectError" in result.error


async def test_the_browser_journey_without_chromium_is_skipped_not_failed(
        recorded: Recorded, unwell_gateway: tuple[str, list[dict[str, str]]]) -> None:
    gateway, seen = unwell_gateway
    monitor = Monitor(gateway, recorded.telemetry, service_secret=None,
                      chromium_path="/nonexistent/chromium")
    result = await monitor.run("storefront")
    assert result.outcome == SKIPPED
    assert result.error is not None
    assert "Chromium is not installed at /nonexistent/chromium" in result.error
    assert seen == []
    # A skipped run is not a measurement of the shop: no metric an alert could read.
    assert recorded.points(semconv.METRIC_SYNTHETIC_RUNS) == []


def test_every_runner_of_a_stack_logs_in_as_the_same_monitor() -> None:
    assert monitor_password("a") == monitor_password("a")
    assert monitor_password("a") != monitor_password("b")
    assert len(monitor_password("a")) >= 16
