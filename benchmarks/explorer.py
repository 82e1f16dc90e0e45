"""The explorer's own speed: OTLP spans ingested per second on one core, and how long the
questions take with a million spans stored.

Run:  python benchmarks/explorer.py [--seconds 8] [--spans 1000000] [--skip-http]

1. Ingest, in this process pinned to one core: realistic export requests (512 spans of a
   few services, HTTP server and client spans, database spans, ~10 attributes each) are
   parsed and decoded (`otlp.span_rows`) — the decode-only rate — and then also handed
   to a `TelemetryStore` on a temporary file and committed — the end-to-end rate.
2. The same through the HTTP receiver: `kansoku serve explorer` on free loopback ports,
   pinned to one core, with client processes posting protobuf on the other; its CPU is
   read from /proc. Then, at a paced rate like a normal load run's, its share of a core.
3. Queries with `--spans` spans stored (loaded straight through the store's columnar
   insert): trace by id (`spans_of`), `find_trace_ids` for a service over the last hour,
   `red`, `red_series` (every service, and one route), a histogram's percentiles and a
   counter's rate over the last hour (200 series each, exported every 10 s) and
   `dependencies` — p50 / p95.
4. Every page's API answers over that store, asked as the pages ask them (same
   parameters, the last hour) through the explorer's app in this process: p50 / p95 of
   each call, the slowest call per page, against the goal of 300 ms.

Absolute numbers on a shared 2-core machine are noisy: each figure is the median of a few
repetitions.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import free_ports

from kansoku.explorer.ingest import otlp
from kansoku.explorer.map import queries as map_queries
from kansoku.explorer.metrics import queries as metrics_queries
from kansoku.explorer.store import METRIC_POINTS, SPANS, Rows, TelemetryStore
from kansoku.explorer.traces import queries
from kansoku.explorer.traces.models import TraceQuery

SPANS_PER_REQUEST = 512
SERVICES = ("gateway", "catalog", "orders", "payments", "inventory")
ROUTES = ("/api/v1/products/{id}", "/api/v1/orders", "/api/v1/payments", "/api/v1/cart",
          "/api/v1/products")
STATEMENTS = ("SELECT id, name, price FROM catalog.products WHERE id = $1",
              "INSERT INTO orders.orders (id, user_id, total) VALUES ($1, $2, $3)",
              "UPDATE inventory.stock SET reserved = reserved + $1 WHERE product_id = $2")
#: Spans in one trace: gateway server, client → service server → two db spans, ...
SPANS_PER_TRACE = 8


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu % (os.cpu_count() or 1)})


# --- realistic export requests ------------------------------------------------------------


def _kv(key: str, value: str | int | bool) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _resource(service: str) -> Resource:
    return Resource(attributes=[
        _kv("service.name", service), _kv("service.version", "0.4.0"),
        _kv("service.instance.id", f"{service}-7f9c"), _kv("host.name", "bench-host"),
        _kv("process.pid", 4242), _kv("telemetry.sdk.name", "opentelemetry"),
        _kv("telemetry.sdk.language", "python"), _kv("telemetry.sdk.version", "1.27.0"),
        _kv("deployment.environment", "bench")])


def _http_server(route: str, status: int, user: str) -> list[KeyValue]:
    return [_kv("http.request.method", "GET"), _kv("http.route", route),
            _kv("url.path", route.replace("{id}", "42")), _kv("url.scheme", "http"),
            _kv("http.response.status_code", status), _kv("server.address", "127.0.0.1"),
            _kv("server.port", 8000), _kv("network.protocol.version", "1.1"),
            _kv("user_agent.original", "python-httpx/0.27.0"), _kv("enduser.id", user)]


def _http_client(peer: str, route: str, status: int) -> list[KeyValue]:
    return [_kv("http.request.method", "GET"), _kv("url.full", f"http://{peer}{route}"),
            _kv("server.address", peer), _kv("server.port", 8001),
            _kv("http.response.status_code", status), _kv("peer.service", peer),
            _kv("network.protocol.version", "1.1"), _kv("network.peer.address", "127.0.0.1"),
            _kv("network.peer.port", 8001), _kv("http.request.resend_count", 0)]


def _db(statement: str) -> list[KeyValue]:
    return [_kv("db.system", "postgresql"), _kv("db.name", "kansoku"),
            _kv("db.user", "kansoku"), _kv("db.statement", statement),
            _kv("db.operation", statement.split()[0]), _kv("server.address", "127.0.0.1"),
            _kv("server.port", 5432), _kv("network.transport", "tcp"),
            _kv("db.sql.table", statement.split()[3]), _kv("db.connection_string", "pg")]


def trace_spans(rng: random.Random, start_ns: int) -> dict[str, list[Span]]:
    """One trace of SPANS_PER_TRACE spans across two services, grouped by service."""
    trace_id = rng.randbytes(16)
    ids = [rng.randbytes(8) for _ in range(SPANS_PER_TRACE)]
    front, back = "gateway", rng.choice(SERVICES[1:])
    route, user = rng.choice(ROUTES), f"user-{rng.randrange(1000)}"
    error = rng.random() < 0.02
    status = 500 if error else 200
    code = Status(code=Status.STATUS_CODE_ERROR if error else Status.STATUS_CODE_OK)

    def span(index: int, parent: int | None, name: str, kind: Span.SpanKind.ValueType,
             offset_us: int, duration_us: int, attributes: list[KeyValue]) -> Span:
        return Span(trace_id=trace_id, span_id=ids[index],
                    parent_span_id=ids[parent] if parent is not None else b"", name=name,
                    kind=kind, start_time_unix_nano=start_ns + offset_us * 1000,
                    end_time_unix_nano=start_ns + (offset_us + duration_us) * 1000,
                    attributes=attributes, status=code if kind == Span.SPAN_KIND_SERVER
                    else Status())

    server, client, internal = Span.SPAN_KIND_SERVER, Span.SPAN_KIND_CLIENT, \
        Span.SPAN_KIND_INTERNAL
    return {
        front: [span(0, None, f"GET {route}", server, 0, 9000, _http_server(route, status,
                                                                             user)),
                span(1, 0, "GET", client, 200, 8000, _http_client(back, route, status)),
                span(2, 0, "authorize", internal, 50, 100, [_kv("enduser.id", user)])],
        back: [span(3, 1, f"GET {route}", server, 300, 7000, _http_server(route, status,
                                                                          user)),
               span(4, 3, "SELECT", client, 400, 2000, _db(STATEMENTS[0])),
               span(5, 3, "INSERT", client, 2500, 1500, _db(STATEMENTS[1])),
               span(6, 3, "UPDATE", client, 4100, 1200, _db(STATEMENTS[2])),
               span(7, 3, "serialize", internal, 5400, 300, [_kv("items", 3)])],
    }


def export_request(rng: random.Random, start_ns: int) -> bytes:
    by_service: dict[str, list[Span]] = {}
    for number in range(SPANS_PER_REQUEST // SPANS_PER_TRACE):
        for service, spans in trace_spans(rng, start_ns + number * 1_000_000).items():
            by_service.setdefault(service, []).extend(spans)
    request = ExportTraceServiceRequest(resource_spans=[
        ResourceSpans(resource=_resource(service), scope_spans=[ScopeSpans(
            scope=InstrumentationScope(name="kansoku.kit.http"),
            spans=spans)])
        for service, spans in by_service.items()])
    return bytes(request.SerializeToString())


def export_requests(count: int, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    now = time.time_ns()
    return [export_request(rng, now - 600_000_000_000 + number * 1_000_000_000)
            for number in range(count)]


# --- 1. ingest in one process ---------------------------------------------------------------


def decode(body: bytes) -> Rows:
    request = ExportTraceServiceRequest()
    otlp.parse(body, request)
    return otlp.span_rows(request)


def decode_rate(bodies: list[bytes], seconds: float) -> tuple[float, float]:
    """Spans per second of wall time, and per second of this process's CPU time."""
    spans, started, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - started < seconds:
        for body in bodies:
            spans += len(decode(body))
    return (spans / (time.perf_counter() - started),
            spans / (time.process_time() - cpu))


def end_to_end_rate(bodies: list[bytes], seconds: float, directory: str
                    ) -> tuple[float, float]:
    """Decode and submit as receivers do, many requests in flight; count what committed."""
    store = TelemetryStore(Path(directory) / f"ingest-{time.time_ns()}.duckdb")
    try:
        spans, started, pending = 0, time.perf_counter(), []
        cpu = time.process_time()
        while time.perf_counter() - started < seconds:
            for body in bodies:
                pending.append(store.submit(decode(body)))
                if len(pending) >= 64:  # requests in flight, as concurrent senders
                    spans += pending.pop(0).result()
        for done in pending:
            spans += done.result()
        return (spans / (time.perf_counter() - started),
                spans / (time.process_time() - cpu))
    finally:
        store.close()


# --- 2. through the HTTP receiver -----------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _post_loop(url: str, seconds: float, concurrency: int, pace_spans_per_second: float,
               seed: int, results: Any, start: Any) -> None:
    pin(1)
    bodies = export_requests(16, seed)
    results.put(0)  # ready
    start.wait()

    async def run() -> int:
        sent = 0
        deadline = time.monotonic() + seconds
        interval = (SPANS_PER_REQUEST / pace_spans_per_second * concurrency
                    if pace_spans_per_second else 0.0)
        async with httpx.AsyncClient(timeout=30, headers={
                "Content-Type": "application/x-protobuf"}) as client:
            async def sender(number: int) -> None:
                nonlocal sent
                next_at = time.monotonic() + interval * number / concurrency
                while time.monotonic() < deadline:
                    if interval:
                        await asyncio.sleep(max(next_at - time.monotonic(), 0))
                        next_at += interval
                    answer = await client.post(url, content=bodies[sent % len(bodies)])
                    if answer.status_code == 200:
                        sent += SPANS_PER_REQUEST
                    else:
                        await asyncio.sleep(0.05)
            await asyncio.gather(*(sender(number) for number in range(concurrency)))
        return sent

    results.put(asyncio.run(run()))


def http_rates(seconds: float, directory: str, paced: float) -> dict[str, float]:
    api_port, otlp_port = free_ports(2)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("KANSOKU_", "OTEL_"))}
    env.update(KANSOKU_EXPLORER_PORT=str(api_port), KANSOKU_EXPLORER_OTLP_PORT=str(otlp_port),
               KANSOKU_EXPLORER_DB_PATH=str(Path(directory) / "http.duckdb"),
               KANSOKU_EXPLORER_LOG_LEVEL="WARNING")
    server = subprocess.Popen([sys.executable, "-m", "kansoku", "serve", "explorer"], env=env,
                              preexec_fn=lambda: pin(0), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{otlp_port}/v1/traces"
    try:
        for _ in range(300):
            try:
                httpx.get(f"http://127.0.0.1:{api_port}/health/live", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        figures: dict[str, float] = {}
        context = multiprocessing.get_context("spawn")
        for label, pace, concurrency in (("flat out", 0.0, 8), ("paced", paced, 4)):
            results, start = context.Queue(), context.Event()
            clients = [context.Process(target=_post_loop, args=(
                url, seconds, concurrency, pace / 2, seed, results, start))
                for seed in (1, 2)]
            for client in clients:
                client.start()
            for _ in clients:
                results.get(timeout=120)
            cpu_before, started = _cpu_seconds(server.pid), time.perf_counter()
            start.set()
            spans = sum(results.get(timeout=seconds + 120) for _ in clients)
            elapsed = time.perf_counter() - started
            cpu = _cpu_seconds(server.pid) - cpu_before
            for client in clients:
                client.join()
            figures[f"{label} spans/s"] = spans / elapsed
            figures[f"{label} cpu share"] = cpu / elapsed
        return figures
    finally:
        server.terminate()
        server.wait(20)


# --- 3. queries with many spans stored ------------------------------------------------------


def load(store: TelemetryStore, total: int, hours: float = 1.0) -> list[str]:
    """`total` spans of 8-span traces spread over the last `hours`, in arrival order,
    through the store's columnar insert; returns some trace ids."""
    template = decode(export_requests(1, seed=7)[0])
    template_by_trace: dict[str, list[int]] = {}
    for index, trace_id in enumerate(template.values[0]):
        template_by_trace.setdefault(trace_id, []).append(index)
    shapes = list(template_by_trace.values())
    columns = {name: values for name, values in zip(template.table.names, template.values,
                                                    strict=True)}
    rng = random.Random(3)
    end = time.time_ns()
    span_of_time = int(hours * 3600e9)
    sampled: list[str] = []
    batch = 100_000
    written = 0
    while written < total:
        rows = Rows(SPANS)
        out = dict(zip(rows.table.names, rows.values, strict=True))
        traces = min(batch, total - written) // SPANS_PER_TRACE or 1
        for number in range(traces):
            shape = shapes[number % len(shapes)]
            trace_id = rng.randbytes(16).hex()
            base = end - span_of_time + (written + number * SPANS_PER_TRACE) * \
                span_of_time // total
            shift = base - columns["start_ns"][shape[0]]
            if rng.random() < 0.0005:
                sampled.append(trace_id)
            for index in shape:
                for name, values in out.items():
                    if name == "trace_id":
                        values.append(trace_id)
                    elif name == "span_id":
                        values.append(rng.randbytes(8).hex())
                    elif name == "start_ns":
                        values.append(columns["start_ns"][index] + shift)
                    else:
                        values.append(columns[name][index])
        # parent ids must point to the new span ids: remap within each trace
        ids, parents = out["span_id"], out["parent_span_id"]
        offset = 0
        for number in range(traces):
            shape = shapes[number % len(shapes)]
            mapping = {columns["span_id"][index]: ids[offset + position]
                       for position, index in enumerate(shape)}
            for position in range(len(shape)):
                parent = parents[offset + position]
                parents[offset + position] = mapping.get(parent) if parent else None
            offset += len(shape)
        store.submit(rows).result()
        written += len(rows)
    return sampled


#: The request-duration histogram's bounds as the services export them (seconds).
DURATION_BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
                   7.5, 10.0]


def load_metrics(store: TelemetryStore, series: int = 200, hours: float = 1.5) -> None:
    """`series` cumulative series each of a duration histogram (15 buckets) and of a
    counter, exported every 10 s for the last `hours`: as 10 services of 20 routes."""
    rng = random.Random(11)
    end = time.time_ns()
    times = range(end - int(hours * 3600e9), end, 10 * 10**9)
    for number in range(series):
        rows = Rows(METRIC_POINTS)
        attributes = f'{{"http.route":"/api/v1/r{number % 20}","http.request.method":"GET"}}'
        buckets, orders = [0] * (len(DURATION_BOUNDS) + 1), 0
        for at in times:
            buckets = [count + rng.randint(0, 5) for count in buckets]
            orders += rng.randint(0, 20)
            common = {"time_ns": at, "service": f"service-{number // 20}",
                      "attributes": attributes, "temporality": "cumulative"}
            rows.add(METRIC_POINTS.row(
                **common, name="http.server.request.duration", kind="histogram", unit="s",
                value=None, count=sum(buckets), sum=1.0, bucket_counts=buckets,
                bounds=DURATION_BOUNDS, monotonic=False))
            rows.add(METRIC_POINTS.row(
                **common, name="kansoku.orders", kind="sum", unit="{order}",
                value=float(orders), count=None, sum=None, bucket_counts=None, bounds=None,
                monotonic=True))
        store.submit(rows).result()


def timings(call: Callable[[], Any], repeat: int) -> tuple[float, float]:
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds) * 1000, percentile(seconds, 0.95) * 1000


def query_figures(total: int, directory: str) -> list[str]:
    """Load `total` spans, print the queries' figures, and return the traces' ids."""
    store = TelemetryStore(Path(directory) / "queries.duckdb", max_pending_rows=10**7)
    try:
        started = time.perf_counter()
        trace_ids = load(store, total)
        loaded = time.perf_counter() - started
        print(f"loaded {total:,} spans in {loaded:.1f} s  ({total / loaded:,.0f} spans/s "
              "through the columnar insert, not decoding)")
        rng = random.Random(5)
        wanted = rng.sample(trace_ids, min(50, len(trace_ids)))
        now = time.time_ns()
        hour_ago = now - 3600 * 10**9
        lookups = iter(wanted * 2)
        found = queries.spans_of(store, [wanted[0]]).spans

        def show(label: str, call: Callable[[], Any], repeat: int, note: str = "") -> None:
            p50, p95 = timings(call, repeat)
            print(f"{label:<28}p50 / p95  {p50:6.1f} / {p95:6.1f} ms  {note}")

        show("trace by id (spans_of)", lambda: queries.spans_of(store, [next(lookups)]),
             len(wanted), f"({len(found)} spans each, {len(wanted)} random ids)")
        query = TraceQuery(service="catalog", start_ns=hour_ago, end_ns=now)
        show("find_trace_ids (1 h)", lambda: queries.find_trace_ids(store, query), 10)
        show("search = ids + spans_of", lambda: queries.spans_of(
            store, queries.find_trace_ids(store, query)), 10, "(20 traces)")
        show("red by route (1 h)", lambda: metrics_queries.red(store, hour_ago, now, by_route=True),
             10)
        show("red series, every service", lambda: metrics_queries.red_series(
            store, hour_ago, now, 60 * 10**9), 10, "(1 h in 1 min steps)")
        show("red series, one route", lambda: metrics_queries.red_series(
            store, hour_ago, now, 60 * 10**9, "catalog", ROUTES[0]), 10)
        load_metrics(store)
        minute = 60 * 10**9
        show("histogram p50/p95/p99", lambda: metrics_queries.metric_series(
            store, "http.server.request.duration", None, hour_ago, now, minute), 10,
            "(200 series every 10 s, 1 h in 1 min steps)")
        show("counter rate", lambda: metrics_queries.metric_series(
            store, "kansoku.orders", None, hour_ago, now, minute), 10, "(the same)")
        show("dependencies (1 h)", lambda: map_queries.dependencies(store, hour_ago, now), 5)
        print(f"store size                  {store.size_bytes() / 2**20:.0f} MiB")
        return wanted
    finally:
        store.close()


# --- 4. every page's API answers over the same store --------------------------------------

#: The goal for any page's API answer with a million spans stored.
PAGE_GOAL_MS = 300.0

#: What each page asks the API when it opens (static/*.js), with the page's parameters;
#: "{trace}" and "{service}" are filled from the stored data.
PAGE_CALLS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("services", "/api/red", {"lookback": "1h"}),
    ("services", "/api/red/series", {"lookback": "1h", "step": "1m"}),
    ("service", "/api/red", {"service": "{service}", "by_route": "true", "lookback": "1h"}),
    ("service", "/api/red/series", {"service": "{service}", "lookback": "1h", "step": "1m"}),
    ("map", "/api/map", {"lookback": "1h"}),
    ("traces", "/api/services", {}),
    ("traces", "/api/traces", {"lookback": "1h", "limit": 50, "minSpans": 2,
                               "exclude": ["GET */image", "GET */thumbnail"]}),
    ("trace", "/api/spans/{trace}", {}),
    ("trace", "/api/problems", {"trace_id": "{trace}"}),
    ("problems", "/api/problems", {"lookback": "1h"}),
    ("logs", "/api/logs", {"lookback": "1h", "limit": 200}),
    ("charts", "/api/metrics", {"lookback": "1h"}),
    ("charts", "/api/funnel", {"lookback": "1h"}),
    ("charts", "/api/metrics/series", {"name": "http.server.request.duration",
                                       "lookback": "1h", "step": "1m"}),
    ("charts", "/api/metrics/series", {"name": "kansoku.orders", "lookback": "1h",
                                       "step": "1m"}),
    ("browser", "/api/vitals", {"lookback": "1h"}),
    ("alerts", "/api/alerts", {}),
    ("alerts", "/api/alerts/history", {"lookback": "1h", "limit": 200}),
    ("alerts", "/api/alerts/rules", {}),
    ("slos", "/api/slos", {"lookback": "1h"}),
)


def page_figures(database: Path, trace_ids: list[str], repeat: int = 7) -> None:
    """Ask each page's calls `repeat` times over the stored spans and print the figures."""
    from kansoku.explorer.app import create_app
    from kansoku.explorer.settings import Settings

    app = create_app(Settings(db_path=str(database), log_level="WARNING"))
    filled = {"trace": trace_ids[0], "service": SERVICES[1]}

    def fill(value: Any) -> Any:
        return value.format(**filled) if isinstance(value, str) else value

    async def run() -> None:
        slowest: dict[str, float] = {}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://explorer", timeout=120) as http:
            print(f"{'page':<10}{'API call':<52}p50 / p95 ms")
            for page, path, parameters in PAGE_CALLS:
                url, query = fill(path), {key: fill(value) for key, value in parameters.items()}
                seconds = []
                for _ in range(repeat):
                    started = time.perf_counter()
                    answer = await http.get(url, params=query)
                    seconds.append(time.perf_counter() - started)
                    if answer.status_code != 200:
                        raise SystemExit(f"{url} answered {answer.status_code}: {answer.text}")
                p50, p95 = statistics.median(seconds) * 1000, percentile(seconds, 0.95) * 1000
                slowest[page] = max(slowest.get(page, 0.0), p50)
                label = f"{path} {parameters.get('name', '')}".strip()
                print(f"{page:<10}{label:<52}{p50:6.1f} / {p95:6.1f}")
        worst_page = max(slowest, key=lambda name: slowest[name])
        verdict = "met" if slowest[worst_page] <= PAGE_GOAL_MS else "NOT met"
        print(f"slowest page call (p50): {worst_page} {slowest[worst_page]:.0f} ms — goal "
              f"≤ {PAGE_GOAL_MS:.0f} ms {verdict}")

    try:
        asyncio.run(run())
    finally:
        app.state.store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--paced", type=float, default=2000,
                        help="spans/s of the 'normal load' run for the CPU share")
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--skip-queries", action="store_true")
    args = parser.parse_args()
    pin(0)
    bodies = export_requests(32)
    with tempfile.TemporaryDirectory(prefix="kansoku-bench-explorer-") as directory:
        decoded = [decode_rate(bodies, args.seconds / 2) for _ in range(args.repeat)]
        ingested = [end_to_end_rate(bodies, args.seconds, directory)
                    for _ in range(args.repeat)]
        print(f"request: {SPANS_PER_REQUEST} spans, {len(bodies[0]):,} bytes protobuf")
        for label, runs in (("decode only", decoded), ("decode + store", ingested)):
            walls, cpus = [run[0] for run in runs], [run[1] for run in runs]
            print(f"{label + ', one core':<28}{statistics.median(walls):>9,.0f} spans/s, "
                  f"{statistics.median(cpus):,.0f} per CPU-second  "
                  f"(runs: {', '.join(f'{rate:,.0f}' for rate in walls)})")
        if not args.skip_http:
            figures = http_rates(args.seconds, directory, args.paced)
            print(f"HTTP receiver, flat out     {figures['flat out spans/s']:>9,.0f} spans/s, "
                  f"explorer CPU {figures['flat out cpu share']:.2f} core "
                  "(pinned to one)")
            print(f"HTTP receiver, paced        {figures['paced spans/s']:>9,.0f} spans/s, "
                  f"explorer CPU {figures['paced cpu share']:.2f} core")
        if not args.skip_queries:
            sampled = query_figures(args.spans, directory)
            page_figures(Path(directory) / "queries.duckdb", sampled)


if __name__ == "__main__":
    main()
