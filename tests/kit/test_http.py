"""The client between services: per-phase timeouts, retries only where idempotent, a
circuit breaker whose state is a metric, a client span per attempt whose context reaches
the callee. A mock transport scripts the failures."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
from opentelemetry import baggage, propagate, trace
from opentelemetry import context as otel_context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from kansoku.kit import semconv
from kansoku.kit.context import set_request_id
from kansoku.kit.errors import DependencyUnavailable, UpstreamDependencyUnavailable
from kansoku.kit.http import (
    CALLER_REQUESTED_ERROR_HEADER,
    BreakerPolicy,
    CircuitBreakers,
    RetryPolicy,
    ServiceClient,
    Timeouts,
)
from kansoku.kit.telemetry import Telemetry

Handler = Callable[[httpx.Request], httpx.Response]


class Script:
    """Answers requests from a list of outcomes (a response, or an exception to raise)."""

    def __init__(self, *outcomes: int | type[Exception]) -> None:
        self.outcomes = list(outcomes)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, int):
            return httpx.Response(outcome, json={"ok": outcome < 400})
        raise outcome("scripted failure")


def make_client(script: Script, breakers: CircuitBreakers | None = None) -> ServiceClient:
    return ServiceClient(
        "catalog", "http://catalog.test", breakers or CircuitBreakers(BreakerPolicy()),
        retry=RetryPolicy(attempts=3, initial_backoff=0.001, max_backoff=0.002),
        transport=httpx.MockTransport(script),
    )


async def test_get_is_retried_after_a_connection_error() -> None:
    script = Script(httpx.ConnectError, 200)
    response = await make_client(script).get("/products")
    assert response.status_code == 200
    assert len(script.requests) == 2


async def test_get_is_retried_on_503_then_gives_up_as_dependency_unavailable() -> None:
    script = Script(503)
    with pytest.raises(DependencyUnavailable) as raised:
        await make_client(script).get("/products")
    assert len(script.requests) == 3
    assert raised.value.status == 503
    assert raised.value.dependency == "catalog"
    assert "HTTP 503" in raised.value.detail
    assert raised.value.response is not None and raised.value.response.status_code == 503


async def test_post_is_never_retried() -> None:
    script = Script(httpx.ConnectError, 201)
    with pytest.raises(DependencyUnavailable):
        await make_client(script).request("POST", "/orders", json={})
    assert len(script.requests) == 1


async def test_read_timeout_is_not_retried() -> None:
    script = Script(httpx.ReadTimeout, 200)
    with pytest.raises(DependencyUnavailable, match="no answer in time"):
        await make_client(script).get("/slow")
    assert len(script.requests) == 1


async def test_client_errors_are_returned_not_retried() -> None:
    script = Script(404)
    response = await make_client(script).get("/products/999")
    assert response.status_code == 404
    assert len(script.requests) == 1


async def test_request_id_is_forwarded() -> None:
    script = Script(200)
    set_request_id("req-7")
    await make_client(script).get("/products", headers={"Accept": "application/json"})
    assert script.requests[0].headers["x-request-id"] == "req-7"
    assert script.requests[0].headers["accept"] == "application/json"


async def test_breaker_opens_fails_fast_and_recovers_with_its_state_as_a_metric() -> None:
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("test")
    breakers = CircuitBreakers(BreakerPolicy(failure_threshold=2, open_seconds=0.3), meter)
    script = Script(500)
    client = make_client(script, breakers)

    for _ in range(2):
        with pytest.raises(DependencyUnavailable):
            await client.get("/products")
    assert breakers.state("catalog") == "opened"
    assert _gauge(reader) == {"catalog": 2}

    calls_before = len(script.requests)
    with pytest.raises(DependencyUnavailable, match="circuit open"):
        await client.get("/products")
    assert len(script.requests) == calls_before, "an open circuit must not call out"

    await asyncio.sleep(0.35)
    script.outcomes = [200]
    assert (await client.get("/products")).status_code == 200
    assert breakers.state("catalog") == "closed"
    assert _gauge(reader) == {"catalog": 0}


def _gauge(reader: InMemoryMetricReader) -> dict[str, int]:
    data = reader.get_metrics_data()
    assert data is not None
    values: dict[str, int] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == semconv.METRIC_CIRCUIT_STATE:
                    for point in metric.data.data_points:
                        assert isinstance(point, NumberDataPoint) and point.attributes
                        values[str(point.attributes[semconv.PEER_SERVICE])] = int(point.value)
    return values


def test_timeouts_are_per_phase() -> None:
    timeout = Timeouts(connect=0.5, read=2, write=3, pool=0.25).as_httpx()
    assert Timeouts().pool == 3.0
    assert (timeout.connect, timeout.read, timeout.write, timeout.pool) == (0.5, 2, 3, 0.25)


def traced_client(script: Script) -> tuple[ServiceClient, InMemorySpanExporter,
                                           InMemoryMetricReader]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    telemetry = Telemetry("gateway", tracer_provider, MeterProvider(metric_readers=[reader]))
    client = ServiceClient(
        "catalog", "http://catalog.test:8002", CircuitBreakers(BreakerPolicy()),
        retry=RetryPolicy(attempts=3, initial_backoff=0.001, max_backoff=0.002),
        transport=httpx.MockTransport(script), telemetry=telemetry,
    )
    return client, exporter, reader


async def test_each_attempt_is_a_client_span_whose_context_and_baggage_reach_the_callee(
) -> None:
    script = Script(503, 200)
    client, exporter, reader = traced_client(script)
    token = otel_context.attach(baggage.set_baggage(semconv.BAGGAGE_USER_ID, "user-7"))
    try:
        response = await client.get("/products/3", params={"q": "secret search"})
    finally:
        otel_context.detach(token)
    assert response.status_code == 200

    failed, succeeded = exporter.get_finished_spans()
    for span, status in ((failed, 503), (succeeded, 200)):
        assert span.name == "GET" and span.kind == SpanKind.CLIENT
        attributes = dict(span.attributes or {})
        assert attributes[semconv.HTTP_RESPONSE_STATUS_CODE] == status
        assert attributes[semconv.PEER_SERVICE] == "catalog"
        assert attributes[semconv.SERVER_ADDRESS] == "catalog.test"
        assert attributes[semconv.SERVER_PORT] == 8002
        # The query stays out of the span: what a user searched for is theirs.
        assert attributes[semconv.URL_FULL] == "http://catalog.test:8002/products/3"
    assert failed.status.status_code == StatusCode.ERROR
    assert succeeded.status.status_code == StatusCode.UNSET

    # Each attempt carried its own span as the parent, and the user in baggage.
    for request, span in zip(script.requests, (failed, succeeded), strict=True):
        carried = propagate.extract(dict(request.headers))
        parent = trace.get_current_span(carried).get_span_context()
        assert parent.span_id == span.context.span_id
        assert parent.trace_id == span.context.trace_id
        assert baggage.get_baggage(semconv.BAGGAGE_USER_ID, carried) == "user-7"

    data = reader.get_metrics_data()
    assert data is not None
    durations = [point for resource in data.resource_metrics
                 for scope in resource.scope_metrics for metric in scope.metrics
                 if metric.name == semconv.METRIC_HTTP_CLIENT_DURATION
                 for point in metric.data.data_points]
    assert sorted(int(dict(point.attributes or {})[semconv.HTTP_RESPONSE_STATUS_CODE])  # type: ignore[arg-type]
                  for point in durations) == [200, 503]


async def test_a_call_that_cannot_connect_is_an_error_span_with_its_type() -> None:
    client, exporter, _ = traced_client(Script(httpx.ConnectError))
    with pytest.raises(DependencyUnavailable):
        await client.get("/products")
    spans = exporter.get_finished_spans()
    assert len(spans) == 3  # one per attempt
    for span in spans:
        assert span.status.status_code == StatusCode.ERROR
        assert dict(span.attributes or {})[semconv.ERROR_TYPE] == "ConnectError"


def _upstream_outage(request: httpx.Request) -> httpx.Response:
    """orders, up and well, saying that payments (its dependency) is away."""
    return httpx.Response(
        503, headers={"Content-Type": "application/problem+json", "Retry-After": "10"},
        json={"type": "https://kansoku.dev/problems/payments-unavailable",
              "title": "Service Unavailable", "status": 503,
              "detail": "Payments are unavailable right now, so order KS-000042 was "
                        "cancelled.", "request_id": "r1", "order_status": "cancelled",
              "dependency": "payments"})


async def test_a_callee_reporting_its_own_dependency_away_keeps_its_breaker_closed() -> None:
    """A payments outage must not open the gateway's breaker to orders: orders answered
    as designed. The caller gets orders' problem, naming payments."""
    breakers = CircuitBreakers(BreakerPolicy(failure_threshold=2, open_seconds=30))
    calls: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return _upstream_outage(request)

    client = ServiceClient("orders", "http://orders.test", breakers,
                           retry=RetryPolicy(attempts=3, initial_backoff=0.001,
                                             max_backoff=0.002),
                           transport=httpx.MockTransport(answer))
    for attempt in range(5):
        with pytest.raises(UpstreamDependencyUnavailable) as raised:
            await client.request("POST", "/orders/1/pay", json={})
        assert len(calls) == attempt + 1, "sent every time: the circuit stayed closed"
    assert breakers.state("orders") == "closed"
    problem = raised.value
    assert isinstance(problem, DependencyUnavailable), "existing fallbacks still apply"
    assert (problem.status, problem.code, problem.dependency, problem.via) == (
        503, "payments-unavailable", "payments", "orders")
    assert problem.detail.startswith("Payments are unavailable right now")
    assert problem.extensions == {"order_status": "cancelled", "dependency": "payments"}
    assert problem.headers == {"Retry-After": "10"}


async def test_a_503_without_a_named_dependency_is_the_callees_own_failure() -> None:
    """Busy (pool exhausted) or a proxy's 503: the callee itself is in trouble."""
    breakers = CircuitBreakers(BreakerPolicy(failure_threshold=2, open_seconds=30))

    def busy(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, headers={"Content-Type": "application/problem+json"},
                              json={"type": "https://kansoku.dev/problems/busy",
                                    "status": 503, "detail": "busy"})

    client = ServiceClient("orders", "http://orders.test", breakers,
                           retry=RetryPolicy(attempts=1),
                           transport=httpx.MockTransport(busy))
    for _ in range(2):
        with pytest.raises(DependencyUnavailable) as raised:
            await client.request("POST", "/orders", json={})
        assert not isinstance(raised.value, UpstreamDependencyUnavailable)
        assert raised.value.dependency == "orders"
    assert breakers.state("orders") == "opened"


@pytest.mark.parametrize(("marked", "state"), [(True, "closed"), (False, "opened")])
async def test_an_error_the_caller_asked_for_is_an_answer_not_a_failure(
        marked: bool, state: str) -> None:
    """The lab's deliberate SQL error (a 500 the lab marks as requested) is handed back
    as the answer, sent once, and never opens the breaker; the same 500 unmarked is the
    callee's own failure."""
    breakers = CircuitBreakers(BreakerPolicy(failure_threshold=2, open_seconds=30))
    calls: list[httpx.Request] = []

    def deliberate(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        headers = {CALLER_REQUESTED_ERROR_HEADER: "true"} if marked else {}
        return httpx.Response(500, headers=headers, json={"status": "error"})

    client = ServiceClient("lab", "http://lab.test", breakers,
                           retry=RetryPolicy(attempts=3, initial_backoff=0.001,
                                             max_backoff=0.002),
                           transport=httpx.MockTransport(deliberate))
    for _ in range(4):
        try:
            answer = await client.request("GET", "/scenarios/database-error")
        except DependencyUnavailable:
            assert not marked, "a requested error is the lab's answer"
        else:
            assert marked and answer.status_code == 500
    assert breakers.state("lab") == state
    if marked:
        assert len(calls) == 4, "a requested error is not retried"
