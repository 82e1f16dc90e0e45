"""The telemetry's own CPU per span and per log record, in one process, with no network:
what a service pays for each span it makes and each record it logs, beside the same
in another checkout.

Run:  python benchmarks/telemetry_span.py [--variant LABEL:VAR=VALUE[,VAR=VALUE]] …

A server span with a product page's attributes and the user in baggage is started and
ended with kansoku's span processors (the baggage stamp, then OTLP/JSON written as the
span ends; the export queue is never drained, so no export is counted), and a log record
goes through the OTLP/JSON log handler. Each figure is the least of five rounds of CPU
time, so it says little about a busy machine's load and much about the code:
`--variant main:PYTHONPATH=/path/to/main/src` measures another checkout the same way.
`benchmarks/telemetry_tax.py` measures the whole tax through real services.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, cast

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

if TYPE_CHECKING:
    pass

#: The argument that makes this script measure, in the interpreter it runs in.
CHILD = "--measure-here"
ROUNDS = 5
PER_ROUND = 5000
#: A product page's server span, as kit/middleware.py makes it.
ATTRIBUTES: dict[str, str | int] = {"http.request.method": "GET", "url.scheme": "http",
              "http.route": "/products/{id}", "server.address": "127.0.0.1",
              "server.port": 8002, "network.protocol.version": "1.1",
              "url.path": "/products/5", "http.response.status_code": 200,
              "enduser.id": "42"}


def measure() -> dict[str, float]:
    """Microseconds of CPU: encoding one ended span, a span's whole life with the
    processors, a log record through the handler."""
    # The queues keep everything: nothing is exported while measuring.
    os.environ.update({"OTEL_BSP_MAX_QUEUE_SIZE": "1000000", "OTEL_BSP_SCHEDULE_DELAY":
                       "3600000", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "1000000",
                       "OTEL_BLRP_MAX_QUEUE_SIZE": "1000000", "OTEL_BLRP_SCHEDULE_DELAY":
                       "3600000", "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE": "1000000"})
    from opentelemetry import baggage, context
    from opentelemetry.processor.baggage import BaggageSpanProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.trace import SpanKind

    from kansoku.kit import otlp_json

    unreachable = "http://127.0.0.1:9"
    provider = TracerProvider()
    provider.add_span_processor(BaggageSpanProcessor(lambda key: key == "enduser.id"))
    provider.add_span_processor(otlp_json.JsonSpanProcessor(
        otlp_json.JsonSpanExporter(endpoint=f"{unreachable}/v1/traces")))
    tracer = provider.get_tracer("kansoku.kit.http")
    context.attach(baggage.set_baggage("enduser.id", "42"))
    handler = otlp_json.JsonLogHandler(
        Resource.create({"service.name": "bench"}), otlp_json.JsonLogRecordProcessor(
            otlp_json.JsonLogExporter(endpoint=f"{unreachable}/v1/logs")))
    record = logging.LogRecord("kansoku.access", logging.INFO, __file__, 1,
                               "GET /products/5 200", (), None)
    record.request_id, record.user_id = "4bf92f3577b34da6", "42"

    def life() -> None:
        span = tracer.start_span("GET /products/{id}", kind=SpanKind.SERVER,
                                 attributes=ATTRIBUTES)
        span.set_attribute("http.response.status_code", 200)
        span.end()

    ended = cast(ReadableSpan, tracer.start_span("GET /products/{id}", kind=SpanKind.SERVER,
                                                 attributes=ATTRIBUTES))
    ended.end()  # type: ignore[attr-defined]
    work: dict[str, Callable[[], object]] = {
        "encode one span": lambda: otlp_json.encoded_span(ended),
        "span start and end, processors included": life,
        "log record through the OTLP handler": lambda: handler.emit(record)}
    best = {name: float("inf") for name in work}
    for _ in range(ROUNDS):
        for name, step in work.items():
            began = time.process_time()
            for _ in range(PER_ROUND):
                step()
            best[name] = min(best[name], (time.process_time() - began) / PER_ROUND * 1e6)
    return best


def main() -> None:
    if sys.argv[1:] == [CHILD]:
        # In the measured checkout's interpreter: kansoku's code only (the benchmarks'
        # helpers import this checkout's tests, which another checkout lacks).
        print(json.dumps(measure()), flush=True)
        os._exit(0)  # the exporters' queues are left undrained on purpose
    from benchmarks._stacks import variant

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", action="append", default=[], type=variant,
                        help="LABEL:VAR=VALUE[,VAR=VALUE], measured beside this checkout")
    args = parser.parse_args()
    sets = [("this", {}), *args.variant]
    found = {}
    for label, changes in sets:
        answer = subprocess.run([sys.executable, __file__, CHILD], capture_output=True,
                                text=True, check=False, env={**os.environ, **changes})
        if answer.returncode != 0:
            sys.exit(f"{label}: the measurement failed: {answer.stderr.strip()[-2000:]}")
        found[label] = json.loads(answer.stdout.strip().splitlines()[-1])
    for name in found["this"]:
        cells = ", ".join(f"{label} {figures[name]:.1f}" for label, figures in found.items())
        ratios = ", ".join(f"this/{label} {found['this'][name] / figures[name]:.2f}"
                           for label, figures in found.items() if label != "this")
        print(f"{name:<42} µs of CPU: {cells}" + (f"  ({ratios})" if ratios else ""))
    print(f"load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
