"""Database telemetry on a real PostgreSQL: a span per statement and per checkout, for
every engine of a process, errors marked, and the pool's connections as a gauge."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from kansoku.kit import semconv
from kansoku.kit.db import Database
from kansoku.kit.db_telemetry import DatabaseTelemetry
from tests.support import free_ports


class Traced:
    def __init__(self, postgres_url: str, schema: str) -> None:
        self.spans = InMemorySpanExporter()
        self.metrics = InMemoryMetricReader()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.tracer = provider.get_tracer("test")
        self.db = Database(postgres_url, schema=schema, application_name="test", pool_size=2)
        self.telemetry = DatabaseTelemetry(self.db.engine, provider,
                                           MeterProvider(metric_readers=[self.metrics]))

    def pool(self) -> dict[str, int]:
        data = self.metrics.get_metrics_data()
        assert data is not None
        found: dict[str, int] = {}
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name != semconv.METRIC_DB_CONNECTIONS_USAGE:
                        continue
                    for point in metric.data.data_points:
                        assert isinstance(point, NumberDataPoint) and point.attributes
                        found[str(point.attributes["state"])] = int(point.value)
        return found


@pytest.fixture
async def two_engines(postgres_url: str) -> AsyncIterator[tuple[Traced, Traced]]:
    first, second = Traced(postgres_url, "public"), Traced(postgres_url, "public")
    yield first, second
    for traced in (first, second):
        traced.telemetry.close()
        await traced.db.dispose()


async def test_every_engine_gets_a_connect_and_a_statement_span(
        two_engines: tuple[Traced, Traced]) -> None:
    for traced in two_engines:
        with traced.tracer.start_as_current_span("GET /things") as request:
            async with traced.db.transaction() as session:
                await session.execute(text("SELECT 1 AS one WHERE 1 = :n"), {"n": 1})
        spans = {span.name: span for span in traced.spans.get_finished_spans()}
        assert set(spans) == {"connect", "SELECT", "GET /things"}
        select, connect = spans["SELECT"], spans["connect"]
        for span in (select, connect):
            assert span.kind is SpanKind.CLIENT
            assert span.parent is not None
            assert span.parent.span_id == request.get_span_context().span_id
            assert span.attributes is not None
            assert span.attributes[semconv.DB_SYSTEM] == "postgresql"
            assert span.attributes[semconv.DB_NAME] == traced.db.engine.url.database
            assert span.attributes[semconv.SERVER_PORT] == traced.db.engine.url.port
        assert select.attributes is not None
        assert select.attributes[semconv.DB_STATEMENT] == "SELECT 1 AS one WHERE 1 = $1"
        assert select.attributes[semconv.DB_OPERATION] == "SELECT"
        assert select.start_time is not None and connect.end_time is not None
        assert connect.end_time <= select.start_time, "the checkout comes first"


async def test_a_failing_statement_is_an_error_span_without_its_values(
        two_engines: tuple[Traced, Traced]) -> None:
    traced, _ = two_engines
    with pytest.raises(ProgrammingError):
        async with traced.db.transaction() as session:
            await session.execute(text("SELECT secret FROM no_such_table WHERE v = :v"),
                                  {"v": "hunter2"})
    (failed,) = [span for span in traced.spans.get_finished_spans() if span.name == "SELECT"]
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes is not None
    assert failed.attributes[semconv.ERROR_TYPE] == "ProgrammingError"
    assert "no_such_table" in (failed.status.description or "")
    assert "hunter2" not in str(failed.attributes) + (failed.status.description or "")


async def test_the_pool_gauge_counts_used_and_idle_connections(
        two_engines: tuple[Traced, Traced]) -> None:
    traced, _ = two_engines
    async with traced.db.transaction() as session:
        await session.execute(text("SELECT 1"))
        assert traced.pool() == {"used": 1, "idle": 0}
    assert traced.pool() == {"used": 0, "idle": 1}


async def test_closing_stops_the_spans(two_engines: tuple[Traced, Traced]) -> None:
    traced, _ = two_engines
    traced.telemetry.close()
    async with traced.db.transaction() as session:
        await session.execute(text("SELECT 1"))
    assert traced.spans.get_finished_spans() == ()


async def test_a_checkout_that_cannot_connect_is_an_error_span() -> None:
    """The database away: the `connect` span says so, with the error's type."""
    (closed,) = free_ports(1)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    db = Database(f"postgresql://nobody@127.0.0.1:{closed}/none", schema="public",
                  application_name="test")
    telemetry = DatabaseTelemetry(db.engine, provider, MeterProvider())
    try:
        with pytest.raises(OSError):
            await db.check()
    finally:
        telemetry.close()
        await db.dispose()
    (connect,) = exporter.get_finished_spans()
    assert connect.name == "connect"
    assert connect.status.status_code is StatusCode.ERROR
    assert connect.attributes is not None
    assert connect.attributes[semconv.ERROR_TYPE] in ("ConnectionRefusedError", "OSError")


async def test_nothing_is_traced_while_instrumentation_is_suppressed(
        two_engines: tuple[Traced, Traced]) -> None:
    """Readiness checks (kit.health) run suppressed: no spans every few seconds."""
    traced, _ = two_engines
    with suppress_instrumentation():
        await traced.db.check()
    assert traced.spans.get_finished_spans() == ()
