"""Graceful shutdown: on SIGTERM a service stops accepting, finishes the requests in
flight, and flushes their telemetry before it exits. A served process has its garbage
collector set up for serving."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import httpx

from kansoku.explorer.store import TelemetryStore
from kansoku.explorer.traces import queries
from kansoku.explorer.traces.models import TraceQuery
from kansoku.kit.serve import GC_THRESHOLDS
from tests.kit.test_telemetry import receiver  # noqa: F401  (a fixture)
from tests.support import free_ports

SERVICE_PROCESS = textwrap.dedent("""
    import asyncio, gc, logging, sys
    from kansoku.kit.app import build_service_app, start_process_telemetry
    from kansoku.kit.flags import FaultFlags
    from kansoku.kit.serve import serve
    from kansoku.kit.settings import ServiceSettings

    settings = ServiceSettings(port=int(sys.argv[1]))
    app = build_service_app(service="slowpoke", settings=settings,
                            telemetry=start_process_telemetry("slowpoke", settings),
                            fault_flags=FaultFlags(None, "slowpoke", {}),
                            description="test")

    @app.get("/slow")
    async def slow() -> dict[str, str]:
        await asyncio.sleep(1.5)
        return {"done": "yes"}

    @app.get("/gc")
    async def collector() -> dict[str, object]:
        record = logging.LogRecord("x", logging.INFO, "x.py", 1, "m", (), None)
        return {"thresholds": gc.get_threshold(), "frozen": gc.get_freeze_count(),
                "record_process": record.process, "record_thread": record.thread}

    serve(app, host="127.0.0.1", ports=[settings.port], graceful_shutdown_seconds=10)
""")


def test_sigterm_finishes_in_flight_requests_and_flushes_spans_of_a_tuned_process(
    receiver: tuple[str, TelemetryStore],  # noqa: F811
) -> None:
    endpoint, store = receiver
    (port,) = free_ports(1)
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    # A long export delay: the span can only arrive through the flush on shutdown.
    env.update(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_BSP_SCHEDULE_DELAY="60000")
    service = subprocess.Popen([sys.executable, "-c", SERVICE_PROCESS, str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{base}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        collector = httpx.get(f"{base}/gc", timeout=5).json()
        assert tuple(collector["thresholds"]) == GC_THRESHOLDS
        assert collector["frozen"] > 10_000, "the start-up objects were frozen"
        assert collector["record_process"] is None and collector["record_thread"] is None
        answers: list[httpx.Response] = []
        in_flight = threading.Thread(
            target=lambda: answers.append(httpx.get(f"{base}/slow", timeout=10)))
        in_flight.start()
        time.sleep(0.5)
        service.send_signal(signal.SIGTERM)
        in_flight.join(10)
        # uvicorn re-raises the signal once it has shut down cleanly, so that whoever
        # started it sees why it ended.
        assert service.wait(15) in (0, -signal.SIGTERM)
    finally:
        if service.poll() is None:
            service.kill()
    assert answers and answers[0].status_code == 200
    assert answers[0].json() == {"done": "yes"}
    spans = queries.spans_of(store, queries.find_trace_ids(store, TraceQuery())).spans
    slow = [span for span in spans if span["name"] != "GET /gc"]
    assert [span["name"] for span in slow] == ["GET /slow"]
    assert slow[0]["service"] == "slowpoke"
