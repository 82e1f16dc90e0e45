"""Problem detection, rule by rule, on a real explorer: traces are posted as OTLP to the
explorer app served in a thread (with its background detection running, thresholds as
shipped, only the waits shortened), and what `/api/problems` lists is checked — the
problems each rule must find, and the look-alikes it must leave alone."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from kansoku.explorer.app import create_app
from kansoku.explorer.problems.detector import Span as DetectedSpan
from kansoku.explorer.problems.detector import TraceTracker, normalise_path, normalise_statement
from kansoku.explorer.problems.models import ImpactUnit, ProblemKind, ProblemOccurrence
from kansoku.explorer.problems.queries import DETECTION_COLUMNS, record_problems
from kansoku.explorer.settings import Settings
from kansoku.explorer.store import SPANS, Rows, TelemetryStore
from tests.support import serve_in_thread

PROTOBUF = {"Content-Type": "application/x-protobuf"}
MS = 1_000_000
_ids = itertools.count(1)


def quick_settings(**overrides: Any) -> Settings:
    """The shipped thresholds; detection passes and waits shortened for a test."""
    values: dict[str, Any] = {
        "db_path": ":memory:", "problems_check_seconds": 0.1, "problems_grace_seconds": 0.2,
        "problems_orphan_seconds": 1.0, "problems_baseline_check_seconds": 0.3, **overrides}
    return Settings(**values)


def _value(value: str | int) -> AnyValue:
    return AnyValue(int_value=value) if isinstance(value, int) else AnyValue(string_value=value)


class TraceBuilder:
    """One trace's spans, built relative to its start (`at` and `ms` in milliseconds)."""

    def __init__(self, start_ns: int | None = None) -> None:
        self.trace_id = os.urandom(16)
        self.start_ns = start_ns if start_ns is not None else time.time_ns() - 5_000 * MS
        self.spans: list[tuple[str, Span]] = []

    @property
    def id(self) -> str:
        return self.trace_id.hex()

    def span(self, name: str, *, service: str,
             kind: Span.SpanKind.ValueType = Span.SPAN_KIND_SERVER, parent: Span | None = None,
             at: float = 0, ms: float = 1, attributes: dict[str, str | int] | None = None,
             error: bool = False) -> Span:
        span = Span(
            trace_id=self.trace_id, span_id=next(_ids).to_bytes(8, "big"),
            parent_span_id=parent.span_id if parent else b"", name=name, kind=kind,
            start_time_unix_nano=self.start_ns + int(at * MS),
            end_time_unix_nano=self.start_ns + int((at + ms) * MS),
            attributes=[KeyValue(key=k, value=_value(v)) for k, v in (attributes or {}).items()],
            status=Status(code=Status.STATUS_CODE_ERROR if error else Status.STATUS_CODE_UNSET))
        self.spans.append((service, span))
        return span

    def request(self, route: str, *, service: str, ms: float = 500, method: str = "GET",
                parent: Span | None = None, at: float = 0, status: int = 200) -> Span:
        """A server span, as the kit's middleware makes it."""
        return self.span(f"{method} {route}", service=service, parent=parent, at=at, ms=ms,
                         attributes={"http.route": route, "http.response.status_code": status},
                         error=status >= 500)

    def query(self, statement: str, *, parent: Span, at: float, ms: float,
              system: str = "postgresql") -> Span:
        """A database span, as the SQLAlchemy instrumentation makes it."""
        return self.span(statement.split()[0], service=self.service_of(parent),
                         kind=Span.SPAN_KIND_CLIENT, parent=parent, at=at, ms=ms,
                         attributes={"db.system": system, "db.statement": statement})

    def call(self, peer: str, path: str, *, parent: Span, at: float, ms: float,
             route: str | None = None, method: str = "GET") -> Span:
        """A client span to another service (as kit.http makes it), with the callee's
        server span when `route` is given."""
        client = self.span(method, service=self.service_of(parent), kind=Span.SPAN_KIND_CLIENT,
                           parent=parent, at=at, ms=ms,
                           attributes={"http.request.method": method, "peer.service": peer,
                                       "url.full": f"http://127.0.0.1:9/{path.lstrip('/')}",
                                       "http.response.status_code": 200})
        if route:
            self.request(route, service=peer, method=method, parent=client, at=at + 0.2,
                         ms=ms - 0.4)
        return client

    def service_of(self, span: Span) -> str:
        return next(service for service, mine in self.spans if mine is span)

    def export(self) -> bytes:
        return export(self)


def export(*traces: TraceBuilder) -> bytes:
    """The traces' spans as one OTLP export request (one commit in the store)."""
    by_service: dict[str, list[Span]] = {}
    for trace in traces:
        for service, span in trace.spans:
            by_service.setdefault(service, []).append(span)
    return bytes(ExportTraceServiceRequest(resource_spans=[
        ResourceSpans(resource=Resource(attributes=[
            KeyValue(key="service.name", value=_value(service))]),
            scope_spans=[ScopeSpans(spans=spans)])
        for service, spans in by_service.items()]).SerializeToString())


class Explorer:
    """An explorer served in a thread, and what a test asks it."""

    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=base, timeout=10)

    def send(self, *traces: TraceBuilder) -> None:
        answer = self.http.post("/v1/traces", content=export(*traces), headers=PROTOBUF)
        assert answer.status_code == 200, answer.text

    def checked(self, *traces: TraceBuilder, timeout: float = 10) -> None:
        """Send the traces and wait until detection has looked at them."""
        before = self.detection()["traces_checked"]
        self.send(*traces)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stats = self.detection()
            if stats["traces_checked"] >= before + len(traces) and not stats["traces_pending"]:
                return
            time.sleep(0.05)
        raise AssertionError(f"detection did not check the traces: {self.detection()}")

    def detection(self) -> dict[str, Any]:
        stats: dict[str, Any] = self.http.get("/api/stats").json()["problems"]
        return stats

    def problems(self, **query: str) -> list[dict[str, Any]]:
        answer = self.http.get("/api/problems", params=query)
        assert answer.status_code == 200, answer.text
        found: list[dict[str, Any]] = answer.json()["data"]
        return found

    def eventually(self, timeout: float = 10, **query: str) -> list[dict[str, Any]]:
        """The problems matching `query`, once there are some."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.problems(**query)
            if found:
                return found
            time.sleep(0.1)
        raise AssertionError(f"no problem matching {query} within {timeout} s")


@pytest.fixture(scope="module")
def explorer() -> Iterator[Explorer]:
    app = create_app(quick_settings())
    with serve_in_thread(app, lifespan="on") as base:
        running = Explorer(base)
        yield running
        running.http.close()


# --- normalising -----------------------------------------------------------------------


def test_statements_normalise_to_their_shape() -> None:
    assert normalise_statement(
        "SELECT *  FROM books\n WHERE author_id = 42 AND title = 'It''s' LIMIT 10;"
    ) == "SELECT * FROM books WHERE author_id = ? AND title = ? LIMIT ?"
    assert normalise_statement(
        "SELECT id FROM t WHERE id IN ($1::INTEGER, $2::INTEGER, $3::INTEGER) AND x = %s"
    ) == "SELECT id FROM t WHERE id IN (?) AND x = ?"
    assert normalise_statement("INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y'), (3, 'z')"
                               ) == "INSERT INTO t (a, b) VALUES (?, ?)"
    # Names with digits, casts of columns and named parameters keep their meaning.
    assert normalise_statement("SELECT t1.col2::text FROM t1 WHERE t1.id = :id") == (
        "SELECT t1.col2::text FROM t1 WHERE t1.id = ?")
    assert normalise_statement("SELECT pg_sleep(3.7)") == "SELECT pg_sleep(?)"


def test_detection_reads_the_columns_its_spans_are_made_of() -> None:
    assert tuple(field.name for field in fields(DetectedSpan)) == DETECTION_COLUMNS


def test_urls_normalise_to_their_route() -> None:
    assert normalise_path("http://catalog:8002/products/51?x=1") == "/products/{id}"
    assert normalise_path("http://h/orders/0b6e5e1c-8a51-4d3f-9d1b-0a6a5f2e7c11/items") == (
        "/orders/{id}/items")
    assert normalise_path("http://h/products/featured") == "/products/featured"


# --- when a trace is complete ------------------------------------------------------------


def test_a_trace_is_checked_once_its_root_arrived_and_the_grace_passed() -> None:
    now = [100.0]
    tracker = TraceTracker(grace_seconds=5, orphan_seconds=30, max_pending=3,
                           clock=lambda: now[0])

    def arrive(*spans: tuple[str, str | None, int]) -> None:
        rows = Rows(SPANS)  # as the store hands them over after a commit
        for trace_id, parent, start in spans:
            row = {"trace_id": trace_id, "parent_span_id": parent, "start_ns": start}
            rows.add(row.get(name) for name in SPANS.names)
        tracker.note(rows)

    arrive(("a", "p1", 20), ("b", "p2", 30))  # children first: roots come later
    now[0] += 6
    assert tracker.complete() == []
    arrive(("a", None, 10))  # a's root
    now[0] += 4
    assert tracker.complete() == []  # within the grace
    now[0] += 1
    assert tracker.complete() == [("a", 10)]
    arrive(("a", "p3", 50))  # a late span of a checked trace: only the grace again
    now[0] += 5
    assert tracker.complete() == [("a", 10)]
    now[0] += 20  # b's root never came: checked after the orphan wait
    assert tracker.complete() == [("b", 30)]
    arrive(("c", None, 1), ("d", None, 2), ("e", None, 3), ("f", None, 4))
    assert tracker.complete() == [("c", 1)]  # more than max_pending wait: the oldest now
    assert tracker.pending == 3


# --- N+1 queries -------------------------------------------------------------------------


def n_plus_one(service: str, *, repeats: int = 6, ms: float = 12, gap: float = 1,
               parallel: bool = False) -> TraceBuilder:
    trace = TraceBuilder()
    root = trace.request("/authors", service=service, ms=400)
    trace.query("SELECT id, name FROM authors ORDER BY id LIMIT $1", parent=root, at=2, ms=3)
    at = 6.0
    for number in range(repeats):
        trace.query(f"SELECT * FROM books WHERE author_id = {number + 1}", parent=root,
                    at=6 if parallel else at, ms=ms)
        at += ms + gap
    return trace


def test_n_plus_one_queries_are_one_problem_with_its_occurrences(explorer: Explorer) -> None:
    first, second = n_plus_one("library"), n_plus_one("library", repeats=8)
    explorer.checked(first)
    explorer.checked(second)
    (problem,) = explorer.eventually(service="library")
    assert problem["kind"] == "n-plus-one-db" and problem["title"] == "N+1 queries"
    assert problem["operation"] == "GET /authors"
    assert problem["statement"] == "SELECT * FROM books WHERE author_id = ?"
    assert problem["route"] is None
    assert problem["occurrences"] == 2
    assert problem["example_trace_id"] == second.id  # the latest
    assert problem["impact_unit"] == "ms" and problem["impact"] == pytest.approx(14 * 12)
    assert problem["first_seen_ns"] <= problem["last_seen_ns"]
    assert problem["details"]["count"] == 8
    assert "8 times" in problem["explanation"] and "JOIN" in problem["fix"]
    (in_trace,) = explorer.problems(trace_id=first.id)
    queries = [span for service, span in first.spans if span.name == "SELECT"][1:]
    assert in_trace["span_ids"] == [span.span_id.hex() for span in queries]
    assert in_trace["details"]["count"] == 6


def test_many_quick_repeats_are_an_n_plus_one_too(explorer: Explorer) -> None:
    # Twenty queries of a millisecond: a database on the same machine; over a network,
    # twenty round trips.
    explorer.checked(n_plus_one("local", repeats=20, ms=1))
    (problem,) = explorer.eventually(service="local")
    assert problem["kind"] == "n-plus-one-db" and problem["details"]["count"] == 20
    assert problem["impact"] == pytest.approx(20)


def test_fewer_faster_or_parallel_repeats_are_no_n_plus_one(explorer: Explorer) -> None:
    explorer.checked(
        n_plus_one("quick", ms=5),                 # 6 queries, 30 ms in all
        n_plus_one("quick-many", repeats=9, ms=5),  # 9 queries, 45 ms in all
        n_plus_one("few", repeats=4, ms=30),       # 4 queries
        n_plus_one("fan-out", ms=30, parallel=True))  # at the same time (a gather)
    spread = TraceBuilder()  # one query per parent: nothing repeats under one parent
    root = spread.request("/feed", service="spread", ms=400)
    for number in range(6):
        step = spread.span(f"step {number}", service="spread", kind=Span.SPAN_KIND_INTERNAL,
                           parent=root, at=number * 40, ms=35)
        spread.query("SELECT * FROM books WHERE id = $1", parent=step, at=number * 40 + 1,
                     ms=30)
    cache = TraceBuilder()  # a cache read per key is how caches are used
    root = cache.request("/cart", service="cached", ms=400)
    for number in range(8):
        cache.query("GET ?", parent=root, at=number * 20, ms=15, system="redis")
    explorer.checked(spread, cache)
    for service in ("quick", "quick-many", "few", "fan-out", "spread", "cached"):
        assert explorer.problems(service=service) == [], service


# --- slow queries ------------------------------------------------------------------------


def test_a_slow_read_is_a_problem_a_fast_one_or_a_slow_write_is_not(explorer: Explorer
                                                                    ) -> None:
    slow = TraceBuilder()  # the same slow statement twice in one request
    root = slow.request("/report", service="reports", ms=1500)
    slow.query("SELECT pg_sleep(0.6)", parent=root, at=5, ms=650)
    slow.query("SELECT pg_sleep($1)", parent=root, at=660, ms=700)
    fine = TraceBuilder()
    root = fine.request("/report", service="reports-fine", ms=900)
    fine.query("SELECT * FROM sales WHERE day = $1", parent=root, at=5, ms=450)
    fine.query("UPDATE stock SET reserved = reserved + $1 WHERE id = $2", parent=root,
               at=460, ms=700)
    explorer.checked(slow, fine)
    (problem,) = explorer.eventually(service="reports")
    assert problem["kind"] == "slow-db-query" and problem["operation"] == "GET /report"
    assert problem["statement"] == "SELECT pg_sleep(?)"
    assert problem["impact"] == pytest.approx(1350) and problem["occurrences"] == 1
    assert problem["details"]["count"] == 2
    assert "up to 700 ms (2 times" in problem["explanation"]
    assert "EXPLAIN ANALYZE" in problem["fix"]
    assert explorer.problems(service="reports-fine") == []


# --- consecutive queries -------------------------------------------------------------


def test_independent_queries_in_a_row_are_a_problem(explorer: Explorer) -> None:
    trace = TraceBuilder()
    root = trace.request("/dashboard", service="dashboard", ms=400)
    trace.query("SELECT id FROM users WHERE email = $1", parent=root, at=2, ms=20)
    trace.query("SELECT count(*) FROM products", parent=root, at=23, ms=120)
    trace.query("SELECT * FROM categories ORDER BY name", parent=root, at=144, ms=90)
    explorer.checked(trace)
    (problem,) = explorer.eventually(service="dashboard")
    assert problem["kind"] == "consecutive-db"
    assert problem["statement"] == (
        "SELECT * FROM categories ORDER BY name ; SELECT count(*) FROM products")
    # Run at once: 20 + 120 + 90 ms become max(20, 120) = 120 ms.
    assert problem["impact"] == pytest.approx(110)
    assert problem["details"]["independent"] == 2


def test_dependent_queries_like_a_saga_are_no_problem(explorer: Explorer) -> None:
    saga = TraceBuilder()  # every query uses what the one before found (parameters)
    root = saga.request("/orders", service="saga", method="POST", ms=900)
    at = 1.0
    for statement in ("SELECT * FROM orders WHERE id = $1 FOR UPDATE",
                      "SELECT * FROM order_lines WHERE order_id = $1",
                      "UPDATE orders SET status = $1 WHERE id = $2",
                      "INSERT INTO outbox (topic, payload) VALUES ($1, $2)"):
        saga.query(statement, parent=root, at=at, ms=150)
        at += 151
    between = TraceBuilder()  # a call between the queries may be what the next one needs
    root = between.request("/dashboard", service="between", ms=900)
    between.query("SELECT id FROM users WHERE email = $1", parent=root, at=1, ms=20)
    between.call("catalog", "/products", parent=root, at=22, ms=30, route="/products")
    between.query("SELECT count(*) FROM products", parent=root, at=53, ms=300)
    explorer.checked(saga, between)
    assert explorer.problems(service="saga") == []
    assert explorer.problems(service="between") == []


# --- N+1 calls -----------------------------------------------------------------------


def test_a_call_per_item_to_another_service_is_a_problem(explorer: Explorer) -> None:
    trace = TraceBuilder()
    root = trace.request("/wishlist", service="wishlist", ms=400)
    for number in range(6):
        trace.call("catalog", f"/products/{number + 1}", parent=root, at=1 + number * 11,
                   ms=10, route="/products/{product_id}")
    explorer.checked(trace)
    (problem,) = explorer.eventually(service="wishlist")
    assert problem["kind"] == "n-plus-one-http" and problem["operation"] == "GET /wishlist"
    assert problem["route"] == "catalog GET /products/{product_id}"
    assert problem["details"]["count"] == 6 and problem["impact"] == pytest.approx(60)
    assert "catalog 6 times" in problem["explanation"] and "batch" in problem["fix"]


def test_retries_few_calls_and_a_checkout_are_no_n_plus_one(explorer: Explorer) -> None:
    retries = TraceBuilder()  # one call tried 6 times: the same URL
    root = retries.request("/stock", service="retrying", ms=400)
    for number in range(6):
        retries.call("inventory", "/stock/7", parent=root, at=number * 20, ms=15)
    few = TraceBuilder()
    root = few.request("/compare", service="comparing", ms=400)
    for number in range(4):
        few.call("catalog", f"/products/{number}", parent=root, at=number * 20, ms=15,
                 route="/products/{product_id}")
    checkout = TraceBuilder()  # the saga: one call to each step, each needing the last
    root = checkout.request("/orders", service="checkout", method="POST", ms=400)
    for number, (peer, path, route, method) in enumerate((
            ("catalog", "/products", "/products", "GET"),
            ("inventory", "/reservations", "/reservations", "POST"),
            ("payments", "/charges", "/charges", "POST"),
            ("inventory", "/reservations/9/commit", "/reservations/{order_id}/commit", "POST"),
            ("cart", "/cart", "/cart", "DELETE"))):
        checkout.call(peer, path, parent=root, at=number * 30, ms=25, route=route,
                      method=method)
    explorer.checked(retries, few, checkout)
    for service in ("retrying", "comparing", "checkout"):
        assert explorer.problems(service=service) == [], service


# --- the baseline rules -----------------------------------------------------------------

MINUTE = 60_000


def requests(service: str, route: str, *, minutes_ago: float, count: int, ms: float,
             failing: int = 0) -> list[TraceBuilder]:
    """`count` requests spread over the minute `minutes_ago`, `failing` of them (spread
    evenly among them) answered 500."""
    traces = []
    for number in range(count):
        trace = TraceBuilder(time.time_ns() - int((minutes_ago * MINUTE
                                                   - number * MINUTE / count) * MS))
        fails = (number + 1) * failing // count > number * failing // count
        trace.request(route, service=service, ms=ms, status=500 if fails else 200)
        traces.append(trace)
    return traces


def test_an_operation_failing_more_than_usual_is_an_error_hotspot(explorer: Explorer
                                                                  ) -> None:
    explorer.checked(
        *requests("flaky", "/pay", minutes_ago=30, count=40, ms=20),
        *requests("flaky", "/pay", minutes_ago=1, count=25, ms=20, failing=10),
        # Always failing one request in five: no jump.
        *requests("steady", "/pay", minutes_ago=30, count=40, ms=20, failing=8),
        *requests("steady", "/pay", minutes_ago=1, count=25, ms=20, failing=5),
        # All failing, but too few to judge.
        *requests("rare", "/pay", minutes_ago=1, count=10, ms=20, failing=10),
        # Failing more than usual, but not any more: nothing failed in the latest 30 s.
        *requests("recovered", "/pay", minutes_ago=30, count=40, ms=20),
        *requests("recovered", "/pay", minutes_ago=2, count=25, ms=20, failing=10),
        *requests("recovered", "/pay", minutes_ago=1, count=10, ms=20))
    (problem,) = explorer.eventually(service="flaky")
    assert problem["kind"] == "error-hotspot" and problem["operation"] == "GET /pay"
    assert problem["route"] == "/pay"
    assert problem["details"]["error_percent"] == 40.0
    assert problem["details"]["baseline_error_percent"] == 0.0
    assert problem["impact_unit"] == "errors" and problem["impact"] == 10
    assert "40.0 %" in problem["explanation"]
    time.sleep(1)  # a few more baseline passes
    assert explorer.problems(service="steady") == []
    assert explorer.problems(service="rare") == []
    assert explorer.problems(service="recovered") == []
    assert problem["state"] == "ongoing"
    assert "Clears when the operation's last 30 s have no failures" in problem["clears_when"]
    assert problem["headline"] == "GET /pay of flaky failing: 40.0 % of its requests"
    # One occurrence per window, however many passes saw it.
    assert explorer.problems(service="flaky")[0]["occurrences"] == 1


def test_an_endpoint_slower_than_its_baseline_is_a_problem(explorer: Explorer) -> None:
    explorer.checked(
        *requests("sluggish", "/search", minutes_ago=40, count=60, ms=50),
        *requests("sluggish", "/search", minutes_ago=1, count=25, ms=600),
        # Slower, but by less than the minimum.
        *requests("jittery", "/search", minutes_ago=40, count=60, ms=50),
        *requests("jittery", "/search", minutes_ago=1, count=25, ms=140),
        # Slow, but always was.
        *requests("always-slow", "/search", minutes_ago=40, count=60, ms=700),
        *requests("always-slow", "/search", minutes_ago=1, count=25, ms=720))
    (problem,) = explorer.eventually(service="sluggish")
    assert problem["kind"] == "slow-endpoint" and problem["operation"] == "GET /search"
    assert problem["route"] == "/search"
    assert problem["details"]["p95_ms"] == pytest.approx(600)
    assert problem["details"]["baseline_p95_ms"] == pytest.approx(50)
    assert problem["impact"] == pytest.approx(25 * 550)
    time.sleep(1)
    assert explorer.problems(service="jittery") == []
    assert explorer.problems(service="always-slow") == []


# --- storing ------------------------------------------------------------------------------


def test_problems_survive_a_restart(tmp_path: Path) -> None:
    path = str(tmp_path / "telemetry.duckdb")
    trace = n_plus_one("persisted")
    with serve_in_thread(create_app(quick_settings(db_path=path)), lifespan="on") as base:
        first = Explorer(base)
        first.checked(trace)
        assert first.eventually(service="persisted")
        first.http.close()
    with serve_in_thread(create_app(quick_settings(db_path=path)), lifespan="on") as base:
        again = Explorer(base)
        (problem,) = again.problems(service="persisted")
        assert problem["example_trace_id"] == trace.id
        assert again.problems(trace_id=trace.id)[0]["span_ids"]
        # Checked again after the restart (catch-up): still one occurrence.
        time.sleep(0.6)
        assert again.detection()["traces_checked"] >= 1
        assert again.problems(service="persisted")[0]["occurrences"] == 1
        again.http.close()


def test_retention_removes_problems_last_seen_too_long_ago() -> None:
    store = TelemetryStore(":memory:")
    now = time.time_ns()

    def occurrence(fingerprint: str, trace_id: str, time_ns: int) -> ProblemOccurrence:
        return ProblemOccurrence(
            fingerprint=fingerprint, kind=ProblemKind.SLOW_DB_QUERY, service="s", operation="GET /",
            target="SELECT ?", trace_id=trace_id, time_ns=time_ns, span_ids=("01",),
            impact=600.0, impact_unit=ImpactUnit.MS, details={})
    try:
        assert record_problems(store, [occurrence("old", "a" * 32, now - 3 * 86_400 * 10**9),
                                       occurrence("new", "b" * 32, now)]) == 2
        # The same trace again adds nothing.
        assert record_problems(store, [occurrence("new", "b" * 32, now)]) == 0
        store.enforce_retention(max_age_seconds=86_400, max_bytes=1 << 40)
        left = store.rows("SELECT fingerprint, occurrences FROM problems")
        kept = store.rows("SELECT fingerprint FROM problem_occurrences")
    finally:
        store.close()
    assert left == [{"fingerprint": "new", "occurrences": 1}]
    assert kept == [{"fingerprint": "new"}]


def test_detection_can_be_turned_off() -> None:
    app = create_app(quick_settings(problems_enabled=False))
    with serve_in_thread(app, lifespan="on") as base:
        off = Explorer(base)
        off.send(n_plus_one("unwatched"))
        time.sleep(0.6)  # several passes, were it on
        assert off.http.get("/api/stats").json()["problems"] is None
        assert off.problems() == []
        off.http.close()
