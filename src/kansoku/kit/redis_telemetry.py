"""Traces of a service's Valkey client: a span per command, one per pipeline.

A command's span is named after it (`GET`, `MGET`) and carries the command with its
arguments replaced by `?` (`MGET ? ?`): keys and values can hold session ids and cart
contents, which are not ours to keep. A pipeline is one span named after its commands
(`INCRBY EXPIRE`), since it is one round trip. Nothing is traced inside
`suppress_instrumentation()` (readiness checks, background sweeps).

Written here rather than with OpenTelemetry's Redis instrumentation, which makes each
span current, sets its attributes one call (and one lock) at a time and reads the
connection settings again for every command; here the connection's attributes are
worked out once and handed to the span as it starts. The names and attributes are the
ones that instrumentation uses, so the explorer shows Valkey the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio as redis
from opentelemetry import trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from kansoku import __version__
from kansoku.kit import semconv

#: A statement longer than this is cut (a pipeline of many commands).
MAX_STATEMENT = 1000


def statement(args: Sequence[Any]) -> str:
    """`COMMAND ? ?`: the command, each argument replaced by `?`."""
    if not args:
        return ""
    text = " ".join([str(args[0]), *["?"] * (len(args) - 1)])
    return text if len(text) <= MAX_STATEMENT else text[:MAX_STATEMENT - 3] + "..."


def _fail(span: Span, error: BaseException) -> None:
    span.set_attribute(semconv.ERROR_TYPE, type(error).__name__)
    span.record_exception(error)
    span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))


def trace_client(client: redis.Redis, tracer_provider: TracerProvider | None) -> None:
    """Trace every command and pipeline `client` sends from now on."""
    tracer = trace.get_tracer("kansoku.kit.redis", __version__,
                              tracer_provider=tracer_provider)
    settings = client.connection_pool.connection_kwargs
    connection: dict[str, Any] = {
        semconv.DB_SYSTEM: "redis",
        semconv.DB_REDIS_DATABASE_INDEX: settings.get("db") or 0,
        semconv.SERVER_ADDRESS: settings.get("path") or settings.get("host", "localhost"),
    }
    if "path" not in settings:
        connection[semconv.SERVER_PORT] = settings.get("port", 6379)
    execute_command = client.execute_command
    make_pipeline = client.pipeline

    async def traced_command(*args: Any, **options: Any) -> Any:
        if not is_instrumentation_enabled():  # a readiness check, a sweep (kit.health)
            return await execute_command(*args, **options)  # type: ignore[no-untyped-call]
        span = tracer.start_span(str(args[0]) if args else "redis", kind=SpanKind.CLIENT,
                                 attributes={**connection,
                                             semconv.DB_STATEMENT: statement(args)})
        try:
            return await execute_command(*args, **options)  # type: ignore[no-untyped-call]
        except BaseException as error:
            _fail(span, error)
            raise
        finally:
            span.end()

    def traced_pipeline(transaction: bool = True, shard_hint: Any = None) -> Any:
        pipeline = make_pipeline(transaction, shard_hint)
        execute = pipeline.execute

        async def traced_execute(raise_on_error: bool = True) -> Any:
            if not is_instrumentation_enabled():
                return await execute(raise_on_error)
            commands = [args for args, _ in pipeline.command_stack]
            span = tracer.start_span(
                " ".join(str(args[0]) for args in commands) or "pipeline",
                kind=SpanKind.CLIENT,
                attributes={**connection, semconv.DB_STATEMENT: "\n".join(
                    statement(args) for args in commands)[:MAX_STATEMENT]})
            try:
                return await execute(raise_on_error)
            except BaseException as error:
                _fail(span, error)
                raise
            finally:
                span.end()

        pipeline.execute = traced_execute  # type: ignore[method-assign]
        return pipeline

    # This client's methods only, not every client's: instance attributes come first.
    client.execute_command = traced_command  # type: ignore[method-assign]
    client.pipeline = traced_pipeline  # type: ignore[method-assign]
