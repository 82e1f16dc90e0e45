"""Valkey telemetry on a real Valkey: a span per command and per pipeline, arguments
never recorded, errors marked, nothing inside suppress_instrumentation()."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from kansoku.kit import semconv
from kansoku.kit.redis_telemetry import statement, trace_client


@pytest.fixture
async def traced(valkey_url: str) -> AsyncIterator[tuple[redis.Redis, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    client = redis.from_url(valkey_url)
    trace_client(client, provider)
    yield client, exporter
    await client.aclose()


async def test_a_command_is_a_span_with_its_arguments_hidden(
        traced: tuple[redis.Redis, InMemorySpanExporter]) -> None:
    client, exporter = traced
    await client.set("session:secret-id", "card 4111", ex=30)
    assert await client.mget("session:secret-id", "nothing") == [b"card 4111", None]
    spans = exporter.get_finished_spans()
    assert [span.name for span in spans] == ["SET", "MGET"]
    mget = spans[1]
    assert mget.kind is SpanKind.CLIENT
    attributes = dict(mget.attributes or {})
    assert attributes[semconv.DB_STATEMENT] == "MGET ? ?"
    assert attributes[semconv.DB_SYSTEM] == "redis"
    assert attributes[semconv.SERVER_PORT] == client.connection_pool.connection_kwargs["port"]
    recorded = " ".join(str(dict(span.attributes or {})) for span in spans)
    assert "secret-id" not in recorded and "4111" not in recorded


async def test_a_pipeline_is_one_span_named_after_its_commands(
        traced: tuple[redis.Redis, InMemorySpanExporter]) -> None:
    client, exporter = traced
    async with client.pipeline(transaction=True) as pipe:
        pipe.incrby("counter:test", 1)
        pipe.expire("counter:test", 60)
        assert (await pipe.execute())[1] is True
    (span,) = exporter.get_finished_spans()
    assert span.name == "INCRBY EXPIRE"
    assert dict(span.attributes or {})[semconv.DB_STATEMENT] == "INCRBY ? ?\nEXPIRE ? ?"


async def test_a_failed_command_is_an_error_span(
        traced: tuple[redis.Redis, InMemorySpanExporter]) -> None:
    client, exporter = traced
    await client.set("a-string", "x")
    with pytest.raises(redis.ResponseError):
        await client.incr("a-string")
    failed = exporter.get_finished_spans()[-1]
    assert failed.name == "INCRBY"
    assert failed.status.status_code is StatusCode.ERROR
    assert dict(failed.attributes or {})[semconv.ERROR_TYPE] == "ResponseError"


async def test_nothing_is_traced_while_instrumentation_is_suppressed(
        traced: tuple[redis.Redis, InMemorySpanExporter]) -> None:
    client, exporter = traced
    with suppress_instrumentation():
        await client.ping()
        async with client.pipeline() as pipe:
            pipe.get("x")
            await pipe.execute()
    assert exporter.get_finished_spans() == ()


def test_a_long_statement_is_cut() -> None:
    assert statement(["DEL", *range(600)]).endswith("...")
    assert len(statement(["DEL", *range(600)])) == 1000
    assert statement([]) == ""
