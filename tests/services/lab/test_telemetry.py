"""What the lab's runs leave in traces: every span a run makes — the server span, the
run's own span, each database statement — names the user (`enduser.id`) and the
operation (`operation.type`); the statements are the ones counted; an error is on the
run's span with its exception; the answer names the caller's trace."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from opentelemetry.processor.baggage import BaggageSpanProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from kansoku.kit import semconv
from kansoku.kit.telemetry import Telemetry
from tests.services.lab.conftest import TOKENS, Shop, lab_app


@dataclass
class TracedLab:
    client: httpx.AsyncClient
    exporter: InMemorySpanExporter

    async def run(self, path: str, parameters: dict[str, object] | None = None
                  ) -> tuple[dict[str, Any], int, list[ReadableSpan]]:
        """Run an operation as a new user, in a trace of its own; the answer, its HTTP
        status, and the spans of that trace."""
        user_id = str(uuid.uuid4())
        trace_id = uuid.uuid4().hex
        answer = await self.client.post(path, headers={
            **TOKENS.headers(user_id=user_id),
            "traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"},
            json={"parameters": parameters or {}})
        body = answer.json()
        assert body["trace_id"] == trace_id, "the answer names the caller's trace"
        assert body["user_id"] == user_id
        spans = [span for span in self.exporter.get_finished_spans()
                 if format(span.context.trace_id, "032x") == trace_id]
        return body, answer.status_code, spans


@pytest.fixture(scope="module")
async def traced(shop: Shop) -> AsyncIterator[TracedLab]:
    """The lab with tracing into memory, set up as kit.telemetry sets up a process."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({semconv.SERVICE_NAME: "lab"}))
    provider.add_span_processor(BaggageSpanProcessor(
        lambda key: key == semconv.BAGGAGE_USER_ID))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = lab_app(shop, Telemetry("lab", provider, MeterProvider()))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://lab",
            timeout=30) as client:
        yield TracedLab(client, exporter)


def statements(spans: Sequence[ReadableSpan]) -> list[ReadableSpan]:
    return [span for span in spans if "db.statement" in (span.attributes or {})]


def the_run(spans: Sequence[ReadableSpan], operation: str) -> ReadableSpan:
    (run,) = [span for span in spans if span.name == f"lab {operation}"]
    return run


async def test_every_span_of_a_run_names_the_user_and_the_operation(
        traced: TracedLab, shop: Shop) -> None:
    body, status, spans = await traced.run("/scenarios/n-plus-one",
                                           {"limit": 20, "category": shop.category})
    assert status == 200
    kinds = {span.kind for span in spans}
    assert {SpanKind.SERVER, SpanKind.INTERNAL, SpanKind.CLIENT} <= kinds
    for span in spans:
        attributes = dict(span.attributes or {})
        assert attributes.get(semconv.ENDUSER_ID) == body["user_id"], span.name
        assert attributes.get(semconv.OPERATION_TYPE) == "n_plus_one", span.name
        assert span.resource.attributes[semconv.SERVICE_NAME] == "lab"

    # Each counted statement is a database span under the run's span: 20 alike.
    run = the_run(spans, "n_plus_one")
    sent = statements(spans)
    assert len(sent) == body["data"]["query_count"] == 21
    assert all(span.parent is not None and span.parent.span_id == run.context.span_id
               for span in sent)
    per_product = [span for span in sent
                   if "FROM orders.order_items" in str(dict(span.attributes or {})[
                       "db.statement"])]
    assert len(per_product) == 20
    assert len({dict(span.attributes or {})["db.statement"] for span in per_product}) == 1
    assert dict(run.attributes or {})[semconv.LAB_QUERY_COUNT] == 21
    server = next(span for span in spans if span.kind == SpanKind.SERVER)
    assert server.name == "POST /scenarios/n-plus-one"
    assert dict(server.attributes or {})[semconv.LAB_FIXED] is False


async def test_the_fixed_twin_sends_one_statement(traced: TracedLab, shop: Shop) -> None:
    body, _, spans = await traced.run("/scenarios/n-plus-one/fixed",
                                      {"limit": 20, "category": shop.category})
    (statement,) = statements(spans)
    assert dict(statement.attributes or {})[semconv.OPERATION_TYPE] == "n_plus_one_fixed"
    assert body["data"]["query_count"] == 1


async def test_a_database_error_is_recorded_with_its_exception(traced: TracedLab) -> None:
    body, status, spans = await traced.run("/scenarios/database-error")
    assert status == 500 and body["status"] == "error"
    run = the_run(spans, "database_error")
    assert run.status.status_code == StatusCode.ERROR
    (event,) = [event for event in run.events if event.name == "exception"]
    recorded = dict(event.attributes or {})
    assert recorded["exception.type"] == "sqlalchemy.exc.ProgrammingError"
    assert 'relation "order_summaries" does not exist' in str(recorded["exception.message"])
    assert "exception.stacktrace" in recorded
    server = next(span for span in spans if span.kind == SpanKind.SERVER)
    assert server.status.status_code == StatusCode.ERROR
    (statement,) = statements(spans)
    assert statement.status.status_code == StatusCode.ERROR
    assert dict(statement.attributes or {})[semconv.ENDUSER_ID] == body["user_id"]
    assert dict(statement.attributes or {})[semconv.OPERATION_TYPE] == "database_error"
