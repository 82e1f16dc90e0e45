"""A synthetic journey's run, against a gateway that answers badly: a failure, named
with its step, recorded as a trace, metrics and a log record; the request carried the
run's trace context and the synthetic baggage. A journey that cannot run here (no
browser, or one that cannot start) is skipped, not failed; the schedule says so once and
keeps trying it. (Against the real shop: tests/stack/test_load.py.)"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from kansoku.kit import semconv
from kansoku.kit.telemetry import Telemetry
from kansoku.loadgen.outcomes import FAILURE, SKIPPED, SUCCESS
from kansoku.loadgen.settings import Settings
from kansoku.loadgen.synthetics import (
    JOURNEYS,
    MONITOR_EMAIL,
    SCHEDULE_EMAIL,
    Monitor,
    MonitorAccount,
    create_app,
    monitor_password,
)
from tests.support import eventually, free_ports, serve_in_thread


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

    runs = {(point.attributes[semconv.SYNTHETIC_JOURNEY],
             point.attributes[semconv.SYNTHETIC_OUTCOME]): point.value
            for point in recorded.points(semconv.METRIC_SYNTHETIC_RUNS)}
    # The failed run, and every other journey and outcome at 0 (made with the monitor,
    # so Prometheus's increase() sees a first failure).
    assert runs == {(journey, outcome): int((journey, outcome) == ("browse", FAILURE))
                    for journey in JOURNEYS for outcome in (SUCCESS, FAILURE)}
    (duration,) = recorded.points(semconv.METRIC_SYNTHETIC_DURATION)
    assert duration.count == 1 and duration.sum == pytest.approx(result.duration_seconds,
                                                                 abs=0.01)

    (record,) = [r for r in caplog.records if r.name == "kansoku.synthetics"]
    assert record.levelno == logging.ERROR
    assert "synthetic browse failed at step home page" in record.getMessage()
    assert getattr(record, semconv.SYNTHETIC_OUTCOME) == FAILURE
    assert monitor.recent[-1] is result


async def test_the_monitors_expected_401_before_it_registers_is_no_error(
        recorded: Recorded) -> None:
    """The first checkout on a stack logs in before the monitor customer exists: the 401
    is what the journey expects (it registers next), so its span is not an error; what
    it does not expect still is."""
    app = FastAPI()
    registered: list[str] = []

    @app.post("/api/v1/auth/login")
    async def log_in() -> JSONResponse:
        if not registered:
            return JSONResponse({"title": "Unauthorized"}, status_code=401)
        return JSONResponse({"access_token": "token"})

    @app.post("/api/v1/users")
    async def register() -> JSONResponse:
        registered.append("monitor")
        return JSONResponse({"id": "monitor"}, status_code=201)

    @app.get("/")
    async def home() -> JSONResponse:
        return JSONResponse({"title": "Service unavailable"}, status_code=503)

    with serve_in_thread(app) as gateway:
        result = await Monitor(gateway, recorded.telemetry, service_secret="s3cret").run(
            "checkout")

    assert (result.outcome, result.step) == (FAILURE, "home page")
    statuses = [(span.name, (span.attributes or {}).get(semconv.HTTP_RESPONSE_STATUS_CODE),
                 span.status.status_code, (span.attributes or {}).get(semconv.ERROR_TYPE))
                for span in recorded.spans.get_finished_spans()
                if span.kind is SpanKind.CLIENT]
    assert statuses == [
        ("POST /api/v1/auth/login", 401, StatusCode.UNSET, None),
        ("POST /api/v1/users", 201, StatusCode.UNSET, None),
        ("POST /api/v1/auth/login", 200, StatusCode.UNSET, None),
        ("GET /", 503, StatusCode.ERROR, "503")]


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
    # A skipped run is not a measurement of the shop: nothing an alert could read (the
    # series are there from the start, at 0).
    assert {point.value for point in recorded.points(semconv.METRIC_SYNTHETIC_RUNS)} == {0}


async def test_a_chromium_that_cannot_start_is_skipped_with_the_cause(
        recorded: Recorded, unwell_gateway: tuple[str, list[dict[str, str]]]) -> None:
    """Installed but broken (here: a program that exits at once): not the shop's failure,
    so no failed run an alert would count every minute — skipped, saying what to check."""
    gateway, seen = unwell_gateway
    monitor = Monitor(gateway, recorded.telemetry, service_secret=None,
                      chromium_path="/bin/false")
    result = await monitor.run("storefront")
    assert result.outcome == SKIPPED, result
    assert result.error is not None
    assert result.error.startswith("Chromium at /bin/false could not be started (")
    assert "'/bin/false --headless --version'" in result.error
    assert "\n" not in result.error and len(result.error) < 400
    assert seen == []
    assert {point.value for point in recorded.points(semconv.METRIC_SYNTHETIC_RUNS)} == {0}


async def test_the_schedule_says_once_that_a_journey_cannot_run_and_keeps_trying_it(
        recorded: Recorded, unwell_gateway: tuple[str, list[dict[str, str]]],
        caplog: pytest.LogCaptureFixture) -> None:
    gateway, _ = unwell_gateway
    settings = Settings(gateway_url=gateway, interval_seconds=0.2, port=0,
                        journeys="storefront,browse", chromium_path="/nonexistent/chromium")
    app = create_app(settings, recorded.telemetry)
    with caplog.at_level(logging.INFO, logger="kansoku.synthetics"), \
            serve_in_thread(app, lifespan="on") as url:
        runs: list[dict[str, Any]] = []

        async def three_rounds() -> bool:
            async with httpx.AsyncClient(timeout=10) as http:
                runs[:] = (await http.get(f"{url}/runs")).json()["data"]
            return len([run for run in runs if run["journey"] == "browse"]) >= 3

        await eventually(three_rounds, 20, "three rounds of browse")
    # Tried every round (installed meanwhile, it would run), said once.
    assert len([run for run in runs if run["journey"] == "storefront"]) >= 3
    assert {run["outcome"] for run in runs if run["journey"] == "storefront"} == {SKIPPED}
    assert {run["outcome"] for run in runs if run["journey"] == "browse"} == {FAILURE}
    said = [(r.levelno, r.getMessage()) for r in caplog.records
            if r.name == "kansoku.synthetics" and "storefront" in r.getMessage()
            and r.levelno >= logging.INFO]
    assert said == [(logging.WARNING, "synthetic storefront does not run: Chromium is not "
                     "installed at /nonexistent/chromium: 'kansoku install-browser' installs "
                     "what it needs")]


def test_each_runner_of_a_stack_logs_in_as_its_own_monitor() -> None:
    assert monitor_password("a") == monitor_password("a")
    assert monitor_password("a") != monitor_password("b")
    assert len(monitor_password("a")) >= 16
    # The schedule and `kansoku synth` shop as two customers: a run on demand never
    # empties the cart of a scheduled checkout under way.
    assert monitor_password("a", SCHEDULE_EMAIL) != monitor_password("a", MONITOR_EMAIL)
    assert MonitorAccount("a", SCHEDULE_EMAIL).email == SCHEDULE_EMAIL
