"""Traces and metrics of a service's database engine.

- A span per statement (`SELECT`, `INSERT` …) carrying the statement as written in
  `store.py`, with placeholders, never the values bound to it.
- A span `connect` per connection taken from the pool (for a request, its first
  statement): the wait for a free connection and the pool's liveness check are in it,
  so a starved pool or a slow database shows in the waterfall.
- Nothing inside `suppress_instrumentation()` (readiness checks, the exporters).
- The pool's connections by state (`db.client.connections.usage`, `state` = `used` or
  `idle`), read from the pool when metrics are collected: the pool-saturation alert's
  input.

Written here rather than with OpenTelemetry's SQLAlchemy instrumentation, which patches
SQLAlchemy for the whole process and instruments only the first engine it is given,
re-reads the connection URL and the semantic-convention settings for every statement
and checkout, and records every checkout and checkin as four counter updates; here the
attributes are worked out once per engine and the pool is read only when metrics are
collected. The span names and attributes are the ones that instrumentation uses.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, Status, StatusCode
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from kansoku import __version__
from kansoku.kit import semconv

#: Where a statement's span waits between the two cursor events.
_SPAN = "_kansoku_span"


def _operation(statement: str) -> str:
    """The statement's first keyword (`SELECT`, `WITH` …), the span's name."""
    words = statement.split(None, 1)
    return words[0].upper() if words else "SQL"


class DatabaseTelemetry:
    """Traces and measures one engine; see the module's docstring for what it records."""

    def __init__(self, engine: AsyncEngine, tracer_provider: TracerProvider | None,
                 meter_provider: MeterProvider | None) -> None:
        self._engine: Engine = engine.sync_engine
        url = self._engine.url
        self._tracer = trace.get_tracer("kansoku.kit.db", __version__,
                                        tracer_provider=tracer_provider)
        self._attributes: dict[str, Any] = {
            semconv.DB_SYSTEM: self._engine.dialect.name,
            **{key: value for key, value in ((semconv.DB_NAME, url.database),
                                             (semconv.DB_USER, url.username),
                                             (semconv.SERVER_ADDRESS, url.host),
                                             (semconv.SERVER_PORT, url.port)) if value},
        }
        self._pool_name = (f"{url.drivername}://{url.host or ''}:{url.port or ''}"
                           f"/{url.database or ''}")
        #: Statement text → its span name and attributes, built once per statement.
        self._statements: dict[str, tuple[str, dict[str, Any]]] = {}
        event.listen(self._engine, "before_cursor_execute", self._before_execute)
        event.listen(self._engine, "after_cursor_execute", self._after_execute)
        event.listen(self._engine, "handle_error", self._on_error)
        self._connect = self._engine.connect
        # This engine's connect, not every engine's: the instance attribute comes before
        # the class's method, and SQLAlchemy's sessions and the async engine call it.
        self._engine.connect = self._traced_connect  # type: ignore[method-assign]
        metrics.get_meter("kansoku.kit.db", __version__, meter_provider=meter_provider
                          ).create_observable_up_down_counter(
            semconv.METRIC_DB_CONNECTIONS_USAGE, callbacks=[self._observe_pool],
            unit="{connection}",
            description="Connections of the pool by state: used (checked out) or idle.")

    def close(self) -> None:
        """Stop tracing the engine (its pool gauge stops with the meter provider)."""
        for name, listener in (("before_cursor_execute", self._before_execute),
                               ("after_cursor_execute", self._after_execute),
                               ("handle_error", self._on_error)):
            if event.contains(self._engine, name, listener):
                event.remove(self._engine, name, listener)
        self._engine.__dict__.pop("connect", None)

    def _traced_connect(self) -> Any:
        if not is_instrumentation_enabled():  # a readiness check, say (kit.health)
            return self._connect()
        # Not made current: nothing inside a checkout makes spans of its own.
        span = self._tracer.start_span("connect", kind=SpanKind.CLIENT,
                                       attributes=self._attributes)
        try:
            return self._connect()
        except BaseException as error:
            span.set_attribute(semconv.ERROR_TYPE, type(error).__name__)
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, str(error)))
            raise
        finally:
            span.end()

    def _statement(self, statement: str) -> tuple[str, dict[str, Any]]:
        found = self._statements.get(statement)
        if found is None:
            operation = _operation(statement)
            found = (operation, {**self._attributes, semconv.DB_STATEMENT: statement,
                                 semconv.DB_OPERATION: operation})
            # A service has a few dozen statements; a bound keeps a generated one (say,
            # an IN list of varying length) from growing this without end.
            if len(self._statements) < 1024:
                self._statements[statement] = found
        return found

    def _before_execute(self, connection: Any, cursor: Any, statement: str, parameters: Any,
                        context: Any, executemany: bool) -> None:
        if not is_instrumentation_enabled():
            return
        name, attributes = self._statement(statement)
        span = self._tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
        if context is not None:
            setattr(context, _SPAN, span)

    @staticmethod
    def _after_execute(connection: Any, cursor: Any, statement: str, parameters: Any,
                       context: Any, executemany: bool) -> None:
        span = getattr(context, _SPAN, None)
        if span is not None:
            span.end()
            setattr(context, _SPAN, None)

    @staticmethod
    def _on_error(exception_context: Any) -> None:
        span = getattr(exception_context.execution_context, _SPAN, None)
        if span is None:
            return
        error = exception_context.original_exception
        span.set_attribute(semconv.ERROR_TYPE, type(error).__name__)
        # The driver's message names the statement's problem, never the bound values
        # (the engine hides parameters, see kit.db).
        span.set_status(Status(StatusCode.ERROR, str(error)))
        span.end()
        setattr(exception_context.execution_context, _SPAN, None)

    def _observe_pool(self, options: CallbackOptions) -> Iterable[Observation]:
        pool: Any = self._engine.pool
        used, idle = pool.checkedout(), pool.checkedin()
        return [Observation(used, {semconv.DB_POOL_NAME: self._pool_name,
                                   semconv.DB_CONNECTION_STATE: "used"}),
                Observation(idle, {semconv.DB_POOL_NAME: self._pool_name,
                                   semconv.DB_CONNECTION_STATE: "idle"})]
