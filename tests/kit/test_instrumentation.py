"""What a kit service records per request, and that it records it cheaply: one server
span (no per-message receive/send spans) with its attributes, one duration measurement,
parents and baggage taken from the caller's headers; none of it for health probes."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, HTTPException
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from kansoku.kit import semconv
from kansoku.kit.app import build_service_app
from kansoku.kit.auth import CurrentUser
from kansoku.kit.flags import FaultFlags
from kansoku.kit.middleware import SERVICE_CLIENT_USER_AGENT, _is_quiet
from kansoku.kit.settings import ServiceSettings
from kansoku.kit.telemetry import Telemetry
from tests.tokens import TokenIssuer

PARENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"


def traced_app() -> tuple[FastAPI, InMemorySpanExporter, InMemoryMetricReader]:
    """A kit app with no routes of its own yet, whose spans and metrics stay in memory."""
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    telemetry = Telemetry("probe", tracer_provider, MeterProvider(metric_readers=[reader]))
    app = build_service_app(service="probe", settings=ServiceSettings(port=9),
                            telemetry=telemetry, fault_flags=FaultFlags(None, "probe", {}),
                            description="test service")
    return app, exporter, reader


def duration_points(reader: InMemoryMetricReader) -> list[Any]:
    """The `http.server.request.duration` data points the app recorded."""
    data = reader.get_metrics_data()
    return [point for resource in (data.resource_metrics if data else ())
            for scope in resource.scope_metrics for metric in scope.metrics
            if metric.name == semconv.METRIC_HTTP_SERVER_DURATION
            for point in metric.data.data_points]


async def traced_request(path: str, headers: dict[str, str] | None = None
                         ) -> tuple[httpx.Response, Sequence[ReadableSpan], list[Any]]:
    """One request to a kit app; its response, its spans and its duration data points."""
    app, exporter, reader = traced_app()

    @app.get("/items/{item}")
    async def item(item: int) -> dict[str, int]:
        if item == 0:
            raise HTTPException(404, "no item 0")
        if item == 13:
            raise RuntimeError("unlucky")
        return {"item": item}

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        response = await client.get(path, headers={"X-Request-ID": "req-1",
                                                   **(headers or {})})
    return response, exporter.get_finished_spans(), duration_points(reader)


async def test_one_server_span_per_request_with_its_attributes() -> None:
    response, spans, points = await traced_request("/items/7")
    assert response.status_code == 200
    # No "http receive" / "http send" spans: they would triple the spans per request.
    assert [span.name for span in spans] == ["GET /items/{item}"]
    (server,) = spans
    assert server.kind == SpanKind.SERVER
    assert server.parent is None
    attributes = dict(server.attributes or {})
    assert attributes[semconv.HTTP_ROUTE] == "/items/{item}"
    assert attributes[semconv.HTTP_REQUEST_METHOD] == "GET"
    assert attributes[semconv.HTTP_RESPONSE_STATUS_CODE] == 200
    assert attributes[semconv.URL_PATH] == "/items/7"
    assert attributes[semconv.REQUEST_ID] == "req-1"
    assert server.status.status_code == StatusCode.UNSET
    # One duration, labelled by route (not by path: one series per route, not per item).
    (point,) = points
    assert isinstance(point, HistogramDataPoint) and point.count == 1
    assert dict(point.attributes or {}) == {semconv.HTTP_REQUEST_METHOD: "GET",
                                      semconv.HTTP_ROUTE: "/items/{item}",
                                      semconv.HTTP_RESPONSE_STATUS_CODE: 200}
    assert response.headers[semconv.REQUEST_ID_HEADER] == "req-1"


async def test_the_callers_trace_and_user_continue_in_the_server_span() -> None:
    _, spans, _ = await traced_request("/items/7", headers={
        "traceparent": f"00-{PARENT_TRACE}-{PARENT_SPAN}-01",
        "baggage": f"{semconv.BAGGAGE_USER_ID}=user-42"})
    (server,) = spans
    assert format(server.context.trace_id, "032x") == PARENT_TRACE
    assert server.parent is not None and format(server.parent.span_id, "016x") == PARENT_SPAN
    # The telemetry set-up copies the user from baggage; here only the context matters.
    assert server.parent.is_remote


async def test_a_client_error_is_not_a_server_error_but_a_crash_is() -> None:
    response, (span,), _ = await traced_request("/items/0")
    assert response.status_code == 404
    assert span.status.status_code == StatusCode.UNSET
    assert dict(span.attributes or {})[semconv.HTTP_RESPONSE_STATUS_CODE] == 404

    response, (span,), points = await traced_request("/items/13")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert span.status.status_code == StatusCode.ERROR
    assert span.status.description == "RuntimeError"
    assert [event.name for event in span.events] == ["exception"]
    assert dict(points[0].attributes)[semconv.HTTP_RESPONSE_STATUS_CODE] == 500


async def test_an_unknown_path_is_named_by_its_method_only() -> None:
    response, (span,), points = await traced_request("/no/such/page")
    assert response.status_code == 404
    # Named after the method, not the path: paths would be unbounded span names.
    assert span.name == "GET"
    assert semconv.HTTP_ROUTE not in dict(span.attributes or {})
    assert semconv.HTTP_ROUTE not in dict(points[0].attributes)


async def test_probes_make_no_spans_and_no_durations() -> None:
    response, spans, points = await traced_request("/health/live")
    assert response.status_code == 200
    assert spans == ()
    assert points == []


async def test_who_called_is_kept_for_callers_from_outside_only() -> None:
    _, (edge,), _ = await traced_request("/items/7", headers={"User-Agent": "curl/8.5"})
    assert dict(edge.attributes or {})[semconv.USER_AGENT] == "curl/8.5"
    assert semconv.CLIENT_ADDRESS in dict(edge.attributes or {})

    _, (internal,), _ = await traced_request(
        "/items/7", headers={"User-Agent": SERVICE_CLIENT_USER_AGENT})
    attributes = dict(internal.attributes or {})
    assert semconv.USER_AGENT not in attributes
    assert semconv.CLIENT_ADDRESS not in attributes


def test_quiet_paths_cover_what_is_below_them_not_what_merely_starts_alike() -> None:
    quiet = ("/health", "/static/")
    assert _is_quiet("/health", quiet) and _is_quiet("/health/ready", quiet)
    assert _is_quiet("/static/shop.css", quiet)
    assert not _is_quiet("/healthy", quiet)
    assert not _is_quiet("/static", quiet)


async def test_the_access_line_names_the_user_the_route_authenticated(
        caplog: pytest.LogCaptureFixture) -> None:
    """The route learns the user (kit.auth) and its baggage ends with it; the access line,
    written after the route, still says whose request it was."""
    issuer = TokenIssuer()
    app, _, _ = traced_app()
    app.state.tokens = issuer.verifier

    @app.get("/mine")
    async def mine(user: CurrentUser) -> dict[str, str]:
        return {"user": user.user_id}

    transport = httpx.ASGITransport(app=app)
    with caplog.at_level(logging.INFO, logger="kansoku.access"):
        async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
            mine_answer = await client.get("/mine", headers=issuer.headers(user_id="user-7"))
            anonymous = await client.get("/mine")
    assert (mine_answer.status_code, anonymous.status_code) == (200, 401)
    lines = [record for record in caplog.records if record.name == "kansoku.access"]
    assert [getattr(record, "user_id", None) for record in lines] == ["user-7", None]


async def test_a_route_included_under_a_prefix_is_named_by_its_whole_path() -> None:
    """FastAPI keeps a router included with a prefix nested: the route the request
    matched knows only its own part of the path. The span and the duration carry the
    whole template, as the caller sees the route."""
    app, exporter, reader = traced_app()
    part = APIRouter()

    @part.get("/things/{thing}")
    async def thing(thing: int) -> dict[str, int]:
        return {"thing": thing}

    outer = APIRouter(prefix="/api/v1")
    outer.include_router(part, prefix="/shop")
    app.include_router(outer)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        assert (await client.get("/api/v1/shop/things/3")).status_code == 200
    (server,) = exporter.get_finished_spans()
    assert server.name == "GET /api/v1/shop/things/{thing}"
    assert dict(server.attributes or {})[semconv.HTTP_ROUTE] == "/api/v1/shop/things/{thing}"
    routes = {dict(point.attributes or {}).get(semconv.HTTP_ROUTE)
              for point in duration_points(reader)}
    assert routes == {"/api/v1/shop/things/{thing}"}
