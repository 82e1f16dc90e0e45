"""The kit's OTLP export, end to end: a separate process exports traces, metrics and
logs over OTLP/HTTP to a real receiver, which decodes the protobuf."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import Request

from kansoku.explorer.app import create_app
from kansoku.explorer.metrics import queries as metrics_queries
from kansoku.explorer.settings import Settings
from kansoku.explorer.store import TelemetryStore
from kansoku.explorer.traces import queries
from kansoku.explorer.traces.models import TraceQuery
from tests.support import serve_in_thread

EXPORTING_PROCESS = textwrap.dedent("""
    import logging
    from opentelemetry import baggage, context, metrics, trace
    from kansoku.kit.logging import setup_logging
    from kansoku.kit.telemetry import setup_telemetry

    telemetry = setup_telemetry("probe-service", prometheus=False)
    setup_logging("probe-service", "INFO", extra_handlers=telemetry.log_handlers)
    context.attach(baggage.set_baggage("enduser.id", "user-77"))
    context.attach(baggage.set_baggage("kansoku.synthetic", "load"))
    context.attach(baggage.set_baggage("session.secret", "not for spans"))
    tracer = trace.get_tracer("probe")
    with tracer.start_as_current_span("outer"):
        with tracer.start_as_current_span("inner"):
            logging.getLogger("probe").warning("inside the inner span")
    metrics.get_meter("probe").create_counter("probe.things").add(3)
    telemetry.shutdown()
""")


#: The content types of the OTLP posts the receiver saw, per path.
SEEN: dict[str, set[str]] = {}


@pytest.fixture
def receiver() -> Iterator[tuple[str, TelemetryStore]]:
    app = create_app(Settings(db_path=":memory:"))

    @app.middleware("http")
    async def note_content_type(request: Request, call_next: Any) -> Any:
        SEEN.setdefault(request.url.path, set()).add(request.headers.get("content-type", ""))
        return await call_next(request)

    SEEN.clear()
    with serve_in_thread(app) as url:
        yield url, app.state.store
    app.state.store.close()


def run_exporter(endpoint: str, **extra_env: str) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env.update(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, **extra_env)
    result = subprocess.run([sys.executable, "-c", EXPORTING_PROCESS], env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("protocol", ["", "http/json", "http/protobuf"])
def test_traces_metrics_and_logs_arrive_over_otlp(receiver: tuple[str, TelemetryStore],
                                                   protocol: str) -> None:
    """OTLP/JSON by default (cheaper for the services), protobuf when asked for."""
    endpoint, store = receiver
    run_exporter(endpoint, OTEL_EXPORTER_OTLP_PROTOCOL=protocol)
    sent_as = "application/x-protobuf" if protocol == "http/protobuf" else "application/json"
    assert SEEN["/v1/traces"] == SEEN["/v1/logs"] == {sent_as}
    # Metrics, every ten seconds, always go as protobuf.
    assert SEEN["/v1/metrics"] == {"application/x-protobuf"}
    assert queries.services(store) == ["probe-service"]
    (trace_id,) = queries.find_trace_ids(store, TraceQuery())
    spans = {span["name"]: span for span in queries.spans_of(store, [trace_id]).spans}
    assert spans["inner"]["parent_span_id"] == spans["outer"]["span_id"]
    # The user id in baggage is stamped on every span.
    assert spans["outer"]["attributes"]["enduser.id"] == "user-77"
    assert spans["inner"]["attributes"]["enduser.id"] == "user-77"
    # So is the mark of generated traffic; other baggage entries are not.
    assert spans["inner"]["attributes"]["kansoku.synthetic"] == "load"
    assert "session.secret" not in spans["inner"]["attributes"]
    assert store.received["logs"] >= 1
    assert store.received["metric_points"] >= 1
    # Every process reports its own CPU and memory, for the explorer's runtime charts.
    names = {row.name for row in metrics_queries.metric_names(store, 0, 2**62)}
    assert {"process.cpu.utilization", "process.memory.usage"} <= names, names


def test_sdk_disabled_exports_nothing(receiver: tuple[str, TelemetryStore]) -> None:
    endpoint, store = receiver
    run_exporter(endpoint, OTEL_SDK_DISABLED="true")
    assert store.received["spans"] == 0
    assert store.received["logs"] == 0


def test_one_signal_can_be_kept_local(receiver: tuple[str, TelemetryStore]) -> None:
    endpoint, store = receiver
    run_exporter(endpoint, OTEL_TRACES_EXPORTER="none")
    assert store.received["spans"] == 0
    assert store.received["logs"] >= 1


def test_a_protocol_kansoku_cannot_send_is_a_clear_error() -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] = "grpc"
    result = subprocess.run([sys.executable, "-c", EXPORTING_PROCESS], env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0
    assert "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL 'grpc' is not supported" in result.stderr
    assert "http/json or http/protobuf" in result.stderr


def test_the_xray_id_generator_starts_trace_ids_with_the_time(
    receiver: tuple[str, TelemetryStore],
) -> None:
    """OTEL_PYTHON_ID_GENERATOR=xray (kansoku[aws]): AWS X-Ray's trace ids, whose first
    eight hex digits are the epoch second the trace began."""
    endpoint, store = receiver
    before = int(time.time())
    run_exporter(endpoint, OTEL_PYTHON_ID_GENERATOR="xray")
    (trace_id,) = queries.find_trace_ids(store, TraceQuery())
    assert before <= int(trace_id[:8], 16) <= time.time()


def test_an_unknown_id_generator_is_a_clear_error() -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env["OTEL_PYTHON_ID_GENERATOR"] = "sequential"
    result = subprocess.run([sys.executable, "-c", EXPORTING_PROCESS], env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0
    assert "OTEL_PYTHON_ID_GENERATOR 'sequential' is not an id generator" in result.stderr
    assert "random" in result.stderr and "xray" in result.stderr
