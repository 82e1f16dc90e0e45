"""What a kit service records per request, and that it records it cheaply: one server
span (no per-message receive/send spans) with its attributes; none for health probes."""

from __future__ import annotations

from collections.abc import Sequence

import httpx
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from kansoku.kit import semconv
from kansoku.kit.app import build_service_app
from kansoku.kit.settings import ServiceSettings
from kansoku.kit.telemetry import Telemetry


async def traced_request(path: str) -> tuple[httpx.Response, Sequence[ReadableSpan]]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry = Telemetry("probe", tracer_provider, MeterProvider())
    app = build_service_app(service="probe", settings=ServiceSettings(port=9),
                            telemetry=telemetry, description="test service")

    @app.get("/items/{item}")
    async def item(item: int) -> dict[str, int]:
        return {"item": item}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        response = await client.get(path, headers={"X-Request-ID": "req-1"})
    return response, exporter.get_finished_spans()


async def test_one_server_span_per_request_with_its_attributes() -> None:
    response, spans = await traced_request("/items/7")
    assert response.status_code == 200
    # No "http receive" / "http send" spans: they would triple the spans per request.
    assert [span.name for span in spans] == ["GET /items/{item}"]
    (server,) = spans
    assert server.kind == SpanKind.SERVER
    attributes = dict(server.attributes or {})
    assert attributes[semconv.HTTP_ROUTE] == "/items/{item}"
    assert attributes["http.method"] == "GET"
    assert attributes["http.status_code"] == 200
    assert attributes["http.target"] == "/items/7"
    assert attributes[semconv.REQUEST_ID] == "req-1"


async def test_probes_make_no_spans() -> None:
    response, spans = await traced_request("/health/live")
    assert response.status_code == 200
    assert spans == ()
