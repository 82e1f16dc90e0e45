"""Automatic problem detection: rules that read the traces as they arrive and name what
a person would otherwise have to spot in a waterfall — an N+1, a slow query, queries run
one after another that could run together, a loop of calls to another service, an
operation that suddenly fails, an endpoint slower than it usually is — and what they
would otherwise have to spot on a chart: a fault flag at work, a process whose memory
keeps growing or whose CPU is saturated.

Three kinds of rule (docs/problems.md describes each, with its thresholds):

- **Per trace**, once the trace is complete: N+1 database queries, slow database
  queries, consecutive independent queries, N+1 HTTP calls. The store tells the
  `ProblemDetector` which traces received spans (`TraceTracker`); a trace is complete
  when its root span has arrived and `grace_seconds` passed without another of its spans
  (a trace whose root never comes is taken after `orphan_seconds`). Each pass reads only
  those traces' spans, so the work follows the traffic, not the size of the store.
- **Against a baseline**, every `baseline_check_seconds`: error hotspots and slow
  endpoints compare each operation's last few minutes with the hour before, and need
  their condition in the latest seconds too.
- **Live**, in the same pass: spans marked by a fault flag (`feature_flag.key`), and
  each service's process metrics (memory growth, CPU saturation).

A problem is *ongoing* while its rule keeps finding it and *cleared* once it has not for
its hold time; `clearing` says what clears each kind, and the problem carries it.

What a rule finds is an occurrence; occurrences of the same kind, service, operation and
statement (or route) share a fingerprint and make one problem, stored in the explorer's
DuckDB file (`queries.record_problems`) and served by `GET /api/problems`.

Everything here except `ProblemDetector.run_forever` is synchronous and runs in a
worker thread.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import os
import re
import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, assert_never
from urllib.parse import urlsplit

from kansoku.explorer.common.spans import SpanKind, SpanStatus
from kansoku.explorer.problems import queries
from kansoku.explorer.problems.models import (
    DEFAULT_HOLD_SECONDS,
    PROBLEM_TITLES,
    STATEMENT_KINDS,
    DetectionStats,
    FlaggedSpans,
    ImpactUnit,
    OperationWindow,
    ProblemKind,
    ProblemOccurrence,
    ProblemState,
    ProcessSeries,
    StoredProblem,
)
from kansoku.explorer.problems.models import (
    Problem as ProblemReport,
)
from kansoku.explorer.store import SPANS, Rows, TelemetryStore
from kansoku.kit import semconv
from kansoku.kit.i18n import gettext as _

logger = logging.getLogger("kansoku.explorer.problems")

#: Database systems that are caches or key-value stores, not SQL: one command per key is
#: how they are meant to be used, so the database rules leave them alone.
NON_SQL_SYSTEMS = frozenset({"redis", "valkey", "memcached", "mongodb", "elasticsearch",
                             "cassandra", "dynamodb"})


@dataclass(frozen=True)
class Thresholds:
    """Where each rule draws the line (the explorer's settings fill these in)."""

    #: N+1 queries: at least this many sequential spans with the same normalised
    #: statement under one parent, taking at least this long together (Sentry's rule)...
    n_plus_one_db_min_spans: int = 5
    n_plus_one_db_min_total_ms: float = 50.0
    #: ...or at least this many, however quick (0: never). A database on the same
    #: machine answers a simple query in half a millisecond, so a loop of twenty stays
    #: under 50 ms here; over a network each of them is a round trip.
    n_plus_one_db_many_spans: int = 10
    #: A read (SELECT) taking at least this long is a slow query.
    slow_db_query_ms: float = 500.0
    #: Consecutive queries: running the independent ones at once would save at least
    #: this much, and this share of the sequence's time; each of them takes at least
    #: `consecutive_db_min_span_ms`.
    consecutive_db_min_saved_ms: float = 100.0
    consecutive_db_min_ratio: float = 0.1
    consecutive_db_min_span_ms: float = 30.0
    #: N+1 calls: at least this many client spans to one route of one service under one
    #: parent, to at least as many different URLs (a retry repeats the same URL).
    n_plus_one_http_min_calls: int = 5
    #: The baseline rules compare the last `recent_seconds` with the `baseline_seconds`
    #: before them.
    recent_seconds: float = 300.0
    baseline_seconds: float = 3600.0
    #: Error hotspot: in the recent window at least this many requests and errors, an
    #: error rate of at least `error_hotspot_min_rate`, and at least
    #: `error_hotspot_factor` times the baseline's rate (a baseline with fewer than
    #: `error_hotspot_min_requests` requests counts as error-free).
    error_hotspot_min_requests: int = 20
    error_hotspot_min_errors: int = 5
    error_hotspot_min_rate: float = 0.1
    error_hotspot_factor: float = 3.0
    #: Slow endpoint: recent p95 at least `slow_endpoint_factor` times the baseline's
    #: p95 and at least `slow_endpoint_min_extra_ms` more, with at least this many
    #: requests in each window.
    slow_endpoint_min_requests: int = 20
    slow_endpoint_baseline_min_requests: int = 50
    slow_endpoint_factor: float = 2.0
    slow_endpoint_min_extra_ms: float = 250.0
    #: Both baseline rules also need their condition in the latest `latest_seconds`
    #: (a failure at the error rate; the p95 still over the line): so a problem stops
    #: being found, and clears, soon after its cause goes away, not five minutes later.
    latest_seconds: float = 30.0
    #: Fault flag: at least this many spans marked by one flag (`feature_flag.key`) in
    #: one service in the last `flag_window_seconds`. A flag marks only the spans it
    #: acts on, so two are already evidence.
    flag_window_seconds: float = 30.0
    flag_min_spans: int = 2
    #: Memory growth: over the last `memory_window_seconds` (at least
    #: `memory_min_points` points) the memory climbs at least `memory_min_mib_per_minute`
    #: on a least-squares line that fits (r² at least `memory_min_fit`), at least
    #: `memory_min_growth_mib` in all, and still climbs over the latest
    #: `memory_latest_seconds` (at least half that rate).
    memory_window_seconds: float = 120.0
    memory_latest_seconds: float = 40.0
    memory_min_points: int = 6
    memory_min_mib_per_minute: float = 4.0
    memory_min_growth_mib: float = 8.0
    memory_min_fit: float = 0.7
    #: A process is judged only once it has readings from before its window (within
    #: this many seconds before it): one that just started grows as it warms up.
    memory_warmup_seconds: float = 120.0
    #: CPU saturation: over the last `cpu_window_seconds` (at least `cpu_min_points`
    #: points) a process keeps at least `cpu_min_cores` busy on average, at
    #: least `cpu_min_share` of its points and its latest one at that level or above,
    #: and at least `cpu_factor` times its mean over the `cpu_baseline_seconds` before
    #: (when it has points there).
    cpu_window_seconds: float = 60.0
    cpu_baseline_seconds: float = 600.0
    cpu_min_points: int = 3
    cpu_min_cores: float = 0.4
    cpu_min_share: float = 0.75
    cpu_factor: float = 2.0
    #: process.cpu.utilization is a share of all the machine's cores (the services run
    #: on the explorer's machine under `kansoku up`): times this, it counts cores.
    cpu_count: int = field(default_factory=lambda: os.cpu_count() or 1)


# --- normalising statements and URLs ---------------------------------------------------

_STRING = re.compile(r"'(?:[^']|'')*'")
#: Placeholders of the common drivers: $1 (asyncpg), %s and %(name)s (psycopg), :name,
#: and ?; a PostgreSQL cast (::integer) is not one.
_PLACEHOLDER = re.compile(r"\$\d+|%\(\w+\)s|%s|(?<![:\w]):[A-Za-z_]\w*|\?")
#: A cast after a placeholder says nothing about the query's shape: $1::INTEGER is $1.
_CAST = re.compile(r"\?\s*::\s*[A-Za-z_]\w*(?:\s*\(\s*\d+(?:\s*,\s*\d+)?\s*\))?"
                   r"(?:\s+(?:WITH|WITHOUT)\s+TIME\s+ZONE)?(?:\s*\[\])*", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\w.$])[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w.])")
_IN_LIST = re.compile(r"\bIN\s*\(\s*\?(?:\s*,\s*\?)*\s*\)", re.IGNORECASE)
_ROW = r"\(\s*\?(?:\s*,\s*\?)*\s*\)"
_VALUES_LIST = re.compile(rf"({_ROW})(?:\s*,\s*{_ROW})+")
_SPACE = re.compile(r"\s+")
_WHERE = re.compile(r"\bWHERE\b", re.IGNORECASE)
_READ = re.compile(r"^\(?\s*(?:SELECT|WITH)\b", re.IGNORECASE)
#: Longest statement kept with a problem (they are fingerprinted whole).
_MAX_STATEMENT = 2000


@functools.lru_cache(maxsize=4096)  # the same few hundred statements, again and again
def normalise_statement(statement: str) -> str:
    """The statement's shape: every literal and placeholder becomes ?, IN lists and
    multi-row VALUES collapse to one, whitespace to single spaces. Two queries that
    differ only in their values normalise the same."""
    shape = _STRING.sub("?", statement)
    shape = _PLACEHOLDER.sub("?", shape)
    shape = _CAST.sub("?", shape)
    shape = _NUMBER.sub("?", shape)
    shape = _IN_LIST.sub("IN (?)", shape)
    shape = _VALUES_LIST.sub(r"\1", shape)
    shape = _SPACE.sub(" ", shape).strip().rstrip(";").strip()
    return shape[:_MAX_STATEMENT]


def has_parameters(statement: str) -> bool:
    """Whether the statement takes values from the program (placeholders): a query that
    does may depend on what an earlier one returned."""
    return bool(_PLACEHOLDER.search(_STRING.sub("", statement)))


_ID_SEGMENT = re.compile(
    r"^(?:\d+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{16,})$")


def normalise_path(url: str) -> str:
    """A URL's path with ids (numbers, UUIDs, long hex) as {id}: the route it calls."""
    path = urlsplit(url).path or "/"
    return "/".join("{id}" if _ID_SEGMENT.match(part) else part for part in path.split("/"))


# --- spans and findings --------------------------------------------------------------


@dataclass(slots=True)
class Span:
    """The parts of a span the rules read (`queries.DETECTION_COLUMNS`, in this order)."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    service: str
    name: str
    kind: SpanKind
    start_ns: int
    duration_ns: int
    status: SpanStatus = SpanStatus.UNSET
    route: str | None = None
    http_status: int | None = None
    db_system: str | None = None
    db_statement: str | None = None
    peer_service: str | None = None
    url: str | None = None

    @property
    def end_ns(self) -> int:
        return self.start_ns + self.duration_ns

    @property
    def is_sql(self) -> bool:
        return bool(self.db_statement) and (self.db_system or "").lower() not in NON_SQL_SYSTEMS


def fingerprint(kind: ProblemKind, service: str, operation: str, target: str) -> str:
    """What groups occurrences into one problem."""
    text = "\x1f".join((kind, service, operation, target))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclass
class Finding:
    """One occurrence of a problem: in a trace, or in a window of an operation's
    requests (the baseline rules)."""

    kind: ProblemKind
    service: str
    operation: str
    target: str
    trace_id: str
    time_ns: int
    span_ids: list[str]
    impact: float
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.kind, self.service, self.operation, self.target)

    @property
    def impact_unit(self) -> ImpactUnit:
        return impact_unit(self.kind)

    def occurrence(self, once_per_ns: int = 0) -> ProblemOccurrence:
        return ProblemOccurrence(
            fingerprint=self.fingerprint, kind=self.kind, service=self.service,
            operation=self.operation, target=self.target, trace_id=self.trace_id,
            time_ns=self.time_ns, span_ids=tuple(self.span_ids), impact=self.impact,
            impact_unit=self.impact_unit, details=self.details, once_per_ns=once_per_ns)


def impact_unit(kind: ProblemKind) -> ImpactUnit:
    """What a kind's impact counts."""
    match kind:
        case ProblemKind.ERROR_HOTSPOT:
            return ImpactUnit.ERRORS
        case ProblemKind.FAULT_FLAG:
            return ImpactUnit.SPANS
        case ProblemKind.MEMORY_GROWTH:
            return ImpactUnit.MIB
        case ProblemKind.CPU_SATURATION:
            return ImpactUnit.CPU_SECONDS
        case (ProblemKind.N_PLUS_ONE_DB | ProblemKind.SLOW_DB_QUERY | ProblemKind.CONSECUTIVE_DB
              | ProblemKind.N_PLUS_ONE_HTTP | ProblemKind.SLOW_ENDPOINT):
            return ImpactUnit.MS
        case _:
            assert_never(kind)


def _ms(duration_ns: float) -> float:
    return round(duration_ns / 1e6, 3)


class _Trace:
    """One trace's spans as a tree."""

    def __init__(self, spans: Sequence[Span]) -> None:
        self.spans = spans
        self.by_id = {span.span_id: span for span in spans}
        self.children: dict[str | None, list[Span]] = defaultdict(list)
        for span in spans:
            parent = span.parent_span_id if span.parent_span_id in self.by_id else None
            self.children[parent].append(span)
        for siblings in self.children.values():
            siblings.sort(key=lambda span: (span.start_ns, span.span_id))

    def operation(self, span: Span) -> str:
        """The operation `span` works for: the nearest server or consumer span of the same
        service at or above it (the request or message it handles), else the topmost
        span of that service above it."""
        current = span
        for _hop in range(len(self.spans)):  # a malformed trace may loop: never past its size
            if current.kind in (SpanKind.SERVER, SpanKind.CONSUMER):
                break
            parent = self.by_id.get(current.parent_span_id or "")
            if parent is None or parent.service != span.service:
                break
            current = parent
        return current.name

    def callee_route(self, client: Span) -> str | None:
        """The route the other service's server span (the client span's child) names."""
        for child in self.children.get(client.span_id, ()):
            if child.kind == SpanKind.SERVER and child.route:
                return child.route
        return None


def _sequential(spans: Iterable[Span]) -> list[Span]:
    """Spans (sorted by start) that ran one after another: each starts once the one
    before ended; spans running at the same time as a kept one are left out."""
    kept: list[Span] = []
    for span in spans:
        if not kept or span.start_ns >= kept[-1].end_ns:
            kept.append(span)
    return kept


def detect_in_trace(spans: Sequence[Span], thresholds: Thresholds) -> list[Finding]:
    """Every per-trace problem in one complete trace: N+1 queries, slow queries,
    consecutive independent queries, N+1 calls. Findings with the same fingerprint in
    the trace are merged into one occurrence."""
    if not spans:
        return []
    trace = _Trace(spans)
    found: list[Finding] = []
    for parent_id, siblings in trace.children.items():
        if parent_id is None:
            continue
        parent = trace.by_id[parent_id]
        sql = [span for span in siblings if span.is_sql]
        if len(sql) >= thresholds.n_plus_one_db_min_spans:
            found += _n_plus_one_db(trace, parent, sql, thresholds)
        if len(sql) >= 2:
            found += _consecutive_db(trace, parent, siblings, thresholds)
        clients = [span for span in siblings if span.kind == SpanKind.CLIENT and not span.db_system]
        if len(clients) >= thresholds.n_plus_one_http_min_calls:
            found += _n_plus_one_http(trace, parent, clients, thresholds)
    found += _slow_db_queries(trace, thresholds)
    return _merged(found)


def _merged(findings: list[Finding]) -> list[Finding]:
    by_print: dict[str, Finding] = {}
    for finding in findings:
        seen = by_print.get(finding.fingerprint)
        if seen is None:
            by_print[finding.fingerprint] = finding
            continue
        seen.span_ids += [span for span in finding.span_ids if span not in seen.span_ids]
        seen.impact += finding.impact
        seen.time_ns = min(seen.time_ns, finding.time_ns)
        if finding.kind == ProblemKind.SLOW_DB_QUERY:  # the same slow statement again: count it
            seen.details = {**seen.details, "count": seen.details["count"] + 1,
                            "duration_ms": max(seen.details["duration_ms"],
                                               finding.details["duration_ms"])}
        elif finding.details.get("count", 0) > seen.details.get("count", 0):
            seen.details = finding.details  # the larger of the two, as the evidence
    return list(by_print.values())


def _n_plus_one_db(trace: _Trace, parent: Span, sql: list[Span], thresholds: Thresholds
                   ) -> list[Finding]:
    by_shape: dict[str, list[Span]] = defaultdict(list)
    for span in sql:
        by_shape[normalise_statement(span.db_statement or "")].append(span)
    found = []
    for shape, group in by_shape.items():
        if len(group) < thresholds.n_plus_one_db_min_spans:
            continue
        repeated = _sequential(group)
        total_ns = sum(span.duration_ns for span in repeated)
        many = 0 < thresholds.n_plus_one_db_many_spans <= len(repeated)
        if (len(repeated) < thresholds.n_plus_one_db_min_spans
                or (total_ns < thresholds.n_plus_one_db_min_total_ms * 1e6 and not many)):
            continue
        first = repeated[0]
        found.append(Finding(
            ProblemKind.N_PLUS_ONE_DB, first.service, trace.operation(parent), shape,
            first.trace_id,
            first.start_ns, [span.span_id for span in repeated], _ms(total_ns),
            {"count": len(repeated), "total_ms": _ms(total_ns), "parent": parent.name,
             "db_system": first.db_system}))
    return found


def _slow_db_queries(trace: _Trace, thresholds: Thresholds) -> list[Finding]:
    found = []
    for span in trace.spans:
        if (span.is_sql and span.duration_ns >= thresholds.slow_db_query_ms * 1e6
                and _READ.match(span.db_statement or "")):
            found.append(Finding(
                ProblemKind.SLOW_DB_QUERY, span.service, trace.operation(span),
                normalise_statement(span.db_statement or ""), span.trace_id, span.start_ns,
                [span.span_id], _ms(span.duration_ns),
                {"count": 1, "duration_ms": _ms(span.duration_ns),
                 "threshold_ms": thresholds.slow_db_query_ms, "db_system": span.db_system}))
    return found


def _consecutive_db(trace: _Trace, parent: Span, siblings: list[Span],
                    thresholds: Thresholds) -> list[Finding]:
    """Sentry's "consecutive DB queries", kept conservative: within a run of queries
    that ran one after another with nothing else in between, a query may move to the
    start of the run only when it cannot depend on an earlier one — a read with no WHERE
    clause and no parameters — and is not the first of the run."""
    found = []
    run: list[Span] = []
    for span in [*siblings, None]:
        if span is not None and span.is_sql and (not run or span.start_ns >= run[-1].end_ns):
            run.append(span)
            continue
        if len(run) >= 2:
            finding = _parallelisable(trace, parent, run, thresholds)
            if finding is not None:
                found.append(finding)
        # Anything else in between (a call, an overlapping query) may be what the next
        # query waits for: a new run starts after it.
        run = [span] if span is not None and span.is_sql else []
    return found


def _parallelisable(trace: _Trace, parent: Span, run: list[Span], thresholds: Thresholds
                    ) -> Finding | None:
    independent = [
        span for span in run[1:]
        if span.duration_ns >= thresholds.consecutive_db_min_span_ms * 1e6
        and _READ.match(span.db_statement or "")
        and not _WHERE.search(span.db_statement or "")
        and not has_parameters(span.db_statement or "")]
    if not independent:
        return None
    dependent_ns = sum(span.duration_ns for span in run if span not in independent)
    independent_ns = sum(span.duration_ns for span in independent)
    longest_ns = max(span.duration_ns for span in independent)
    # Run at once, the independent queries take as long as the longest of them, beside
    # the dependent chain; sequential, they add up.
    saved_ns = dependent_ns + independent_ns - max(dependent_ns, longest_ns)
    run_ns = run[-1].end_ns - run[0].start_ns
    if (saved_ns < thresholds.consecutive_db_min_saved_ms * 1e6
            or saved_ns < thresholds.consecutive_db_min_ratio * max(run_ns, 1)):
        return None
    shapes = [normalise_statement(span.db_statement or "") for span in independent]
    return Finding(
        ProblemKind.CONSECUTIVE_DB, run[0].service, trace.operation(parent),
        " ; ".join(sorted(set(shapes))),
        run[0].trace_id, run[0].start_ns, [span.span_id for span in run], _ms(saved_ns),
        {"count": len(run), "independent": len(independent), "saved_ms": _ms(saved_ns),
         "run_ms": _ms(run_ns), "parent": parent.name})


def _n_plus_one_http(trace: _Trace, parent: Span, clients: list[Span],
                     thresholds: Thresholds) -> list[Finding]:
    groups: dict[tuple[str, str], list[Span]] = defaultdict(list)
    for span in clients:
        route = trace.callee_route(span) or (normalise_path(span.url) if span.url else None)
        if route is None:
            continue
        method = span.name.split(" ")[0]
        target = f"{span.peer_service or '?'} {method} {route}"
        groups[(target, span.peer_service or "")].append(span)
    found = []
    for (target, peer), group in groups.items():
        distinct = {span.url or span.span_id for span in group}
        if min(len(group), len(distinct)) < thresholds.n_plus_one_http_min_calls:
            continue
        total_ns = sum(span.duration_ns for span in group)
        first = group[0]
        found.append(Finding(
            ProblemKind.N_PLUS_ONE_HTTP, first.service, trace.operation(parent), target,
            first.trace_id,
            first.start_ns, [span.span_id for span in group], _ms(total_ns),
            {"count": len(group), "distinct_urls": len(distinct), "total_ms": _ms(total_ns),
             "peer_service": peer or None, "parent": parent.name}))
    return found


# --- the baseline rules ----------------------------------------------------------------


def detect_against_baseline(windows: Sequence[OperationWindow], thresholds: Thresholds,
                            now_ns: int) -> list[Finding]:
    """Error hotspots and slow endpoints, from each operation's numbers in the recent
    window and in its baseline (`queries.operation_windows`)."""
    found = []
    recent_seconds = thresholds.recent_seconds
    for row in windows:
        requests, errors = row.recent_requests, row.recent_errors
        base_requests, base_errors = row.baseline_requests, row.baseline_errors
        common = {"requests": requests, "baseline_requests": base_requests,
                  "window_seconds": recent_seconds,
                  "baseline_seconds": thresholds.baseline_seconds}
        rate = errors / requests if requests else 0.0
        base_rate = (base_errors / base_requests
                     if base_requests >= thresholds.error_hotspot_min_requests else 0.0)
        latest_rate = row.latest_errors / row.latest_requests if row.latest_requests else 0.0
        if (requests >= thresholds.error_hotspot_min_requests
                and errors >= thresholds.error_hotspot_min_errors
                and rate >= thresholds.error_hotspot_min_rate
                and rate >= thresholds.error_hotspot_factor * base_rate
                # still failing: no longer once the latest seconds are clean
                and row.latest_errors > 0
                and latest_rate >= thresholds.error_hotspot_min_rate
                and row.error_trace_id and row.error_span_id):
            extra = round(errors - base_rate * requests, 1)
            found.append(Finding(
                ProblemKind.ERROR_HOTSPOT, row.service, row.operation, row.route,
                row.error_trace_id, now_ns, [row.error_span_id], extra,
                {**common, "errors": errors, "error_percent": round(100 * rate, 1),
                 "baseline_errors": base_errors,
                 "baseline_error_percent": round(100 * base_rate, 1),
                 "latest_seconds": thresholds.latest_seconds,
                 "latest_requests": row.latest_requests, "latest_errors": row.latest_errors}))
        p95, base_p95 = row.recent_p95_ns, row.baseline_p95_ns
        if (requests >= thresholds.slow_endpoint_min_requests
                and base_requests >= thresholds.slow_endpoint_baseline_min_requests
                and p95 is not None and base_p95 is not None
                and p95 >= thresholds.slow_endpoint_factor * base_p95
                and p95 - base_p95 >= thresholds.slow_endpoint_min_extra_ms * 1e6
                and _still_slow(row, thresholds)
                and row.slow_trace_id and row.slow_span_id):
            extra_ns = max(float(row.recent_mean_ns or 0) - float(row.baseline_mean_ns or 0), 0.0)
            found.append(Finding(
                ProblemKind.SLOW_ENDPOINT, row.service, row.operation, row.route,
                row.slow_trace_id, now_ns, [row.slow_span_id], _ms(extra_ns * requests),
                {**common, "p95_ms": _ms(p95), "baseline_p95_ms": _ms(base_p95),
                 "latest_seconds": thresholds.latest_seconds,
                 "latest_p95_ms": _ms(row.latest_p95_ns or 0)}))
    return found


def _still_slow(row: OperationWindow, thresholds: Thresholds) -> bool:
    """The latest seconds' p95 is over the slow-endpoint line too."""
    latest, base = row.latest_p95_ns, row.baseline_p95_ns
    return (row.latest_requests > 0 and latest is not None and base is not None
            and latest >= thresholds.slow_endpoint_factor * base
            and latest - base >= thresholds.slow_endpoint_min_extra_ms * 1e6)


# --- the live rules: fault flags, memory, CPU --------------------------------------------

#: The operation the resource kinds name: the process as a whole.
PROCESS_OPERATION = "process"
_MIB = 1024 * 1024


def detect_fault_flags(rows: Sequence[FlaggedSpans], thresholds: Thresholds, now_ns: int
                       ) -> list[Finding]:
    """One finding per service and flag whose spans a fault flag marked
    (`queries.flagged_spans`): the operation is its request spans' (the first row of
    the service and flag), the other marked span names are listed."""
    by_flag: dict[tuple[str, str], list[FlaggedSpans]] = defaultdict(list)
    for row in rows:
        by_flag[(row.service, row.flag)].append(row)
    found = []
    for (service, flag), group in by_flag.items():
        main = group[0]
        spans = sum(row.spans for row in group if row.operation == main.operation)
        if spans < thresholds.flag_min_spans:
            continue
        found.append(Finding(
            ProblemKind.FAULT_FLAG, service, main.operation, flag, main.example_trace_id,
            now_ns, [main.example_span_id], float(main.spans),
            {"flag": flag, "variant": main.variant, "spans": main.spans,
             "failed": main.failed, "p95_ms": _ms(main.p95_ns or 0),
             "unmarked_spans": main.unmarked_spans, "unmarked_failed": main.unmarked_failed,
             "unmarked_p95_ms": _ms(main.unmarked_p95_ns) if main.unmarked_p95_ns else None,
             "also_marked": sorted({row.operation for row in group[1:]}),
             "window_seconds": thresholds.flag_window_seconds}))
    return found


def detect_memory_growth(series: Sequence[ProcessSeries], thresholds: Thresholds,
                         now_ns: int) -> list[Finding]:
    """Processes whose memory (`process.memory.usage`, bytes) climbs steadily and still
    climbs (`Thresholds.memory_*`)."""
    t = thresholds
    found = []
    for row in series:
        slope = (row.slope_per_second or 0.0) * 60 / _MIB  # MiB a minute
        latest = (row.latest_slope_per_second or 0.0) * 60 / _MIB
        grown = (row.latest_value - row.first_value) / _MIB
        if (row.baseline_mean is not None  # not a process warming up
                and row.points >= t.memory_min_points and slope >= t.memory_min_mib_per_minute
                and (row.fit or 0.0) >= t.memory_min_fit and grown >= t.memory_min_growth_mib
                and latest >= t.memory_min_mib_per_minute / 2):
            found.append(Finding(
                ProblemKind.MEMORY_GROWTH, row.service, PROCESS_OPERATION, "", "", now_ns,
                [], round(grown, 1),
                # The climb now (the latest seconds), and over the whole window.
                {"mib_per_minute": round(latest, 1), "window_mib_per_minute": round(slope, 1),
                 "grown_mib": round(grown, 1), "memory_mib": round(row.latest_value / _MIB, 1),
                 "fit": round(row.fit or 0.0, 2), "points": row.points,
                 "window_seconds": t.memory_window_seconds,
                 "threshold_mib_per_minute": t.memory_min_mib_per_minute}))
    return found


def detect_cpu_saturation(series: Sequence[ProcessSeries], thresholds: Thresholds,
                          now_ns: int) -> list[Finding]:
    """Processes keeping a share of a core busy for the whole window, well above their
    usual (`Thresholds.cpu_*`); `process.cpu.utilization` is a share of all cores."""
    t = thresholds
    found = []
    for row in series:
        cores, latest = row.mean * t.cpu_count, row.latest_value * t.cpu_count
        usual = row.baseline_mean * t.cpu_count if row.baseline_mean is not None else None
        if (row.points >= t.cpu_min_points and cores >= t.cpu_min_cores
                and latest >= t.cpu_min_cores and row.share_over >= t.cpu_min_share
                and (usual is None or cores >= t.cpu_factor * usual)):
            above = cores - (usual or 0.0)
            found.append(Finding(
                ProblemKind.CPU_SATURATION, row.service, PROCESS_OPERATION, "", "", now_ns,
                [], round(above * t.cpu_window_seconds, 1),
                {"cores": round(cores, 2), "latest_cores": round(latest, 2),
                 "usual_cores": round(usual, 2) if usual is not None else None,
                 "share_over_percent": round(100 * row.share_over),
                 "threshold_cores": t.cpu_min_cores, "points": row.points,
                 "window_seconds": t.cpu_window_seconds,
                 "baseline_seconds": t.cpu_baseline_seconds}))
    return found


# --- words for people ------------------------------------------------------------------

#: Kinds whose target is a route (the API's `route`): the statement kinds' is a statement,
#: the flag's a flag (named in its details), the resource kinds' nothing.
ROUTE_KINDS = frozenset({ProblemKind.N_PLUS_ONE_HTTP, ProblemKind.ERROR_HOTSPOT,
                         ProblemKind.SLOW_ENDPOINT})


def _duration(ms: float) -> str:
    return f"{ms / 1000:.2f} s" if ms >= 1000 else f"{ms:.0f} ms"


# The texts below are built when the API answers, in the reader's language (kit/i18n.py):
# each is an English text marked with _() whose {names} `format` fills.

def impact_text(kind: ProblemKind, impact: float, occurrences: int) -> str:
    match kind:
        case ProblemKind.ERROR_HOTSPOT:
            return _("{count} more failed requests than usual").format(count=f"{impact:.0f}")
        case ProblemKind.FAULT_FLAG:
            return _("{count} spans marked by the flag").format(count=f"{impact:.0f}")
        case ProblemKind.MEMORY_GROWTH:
            return _("{mib} MiB grown").format(mib=f"{impact:.0f}")
        case ProblemKind.CPU_SATURATION:
            return _("{seconds} s of CPU above the usual").format(seconds=f"{impact:.0f}")
        case ProblemKind.N_PLUS_ONE_DB:
            what = _("{time} spent in the repeated queries")
        case ProblemKind.SLOW_DB_QUERY:
            what = _("{time} spent in the slow query")
        case ProblemKind.CONSECUTIVE_DB:
            what = _("{time} that running the queries at once would save")
        case ProblemKind.N_PLUS_ONE_HTTP:
            what = _("{time} spent in the repeated calls")
        case ProblemKind.SLOW_ENDPOINT:
            what = _("{time} more than the usual time, in all")
        case _:
            assert_never(kind)
    text = what.format(time=_duration(impact))
    if occurrences == 1:
        return text
    return _("{impact} over {count} occurrences").format(impact=text, count=occurrences)


def explain(kind: ProblemKind, service: str, operation: str, target: str,
            details: Mapping[str, Any]) -> tuple[str, str]:
    """A plain-language explanation of the problem, and the suggested fix."""
    count = details.get("count", 0)
    match kind:
        case ProblemKind.N_PLUS_ONE_DB:
            return (_("While handling {operation}, {service} ran the same query {count} "
                      "times, one after another ({total} in all): typically one query per "
                      "item of a list read just before. Every query is a round trip to the "
                      "database, so the time grows with the number of items.").format(
                          operation=operation, service=service, count=count,
                          total=_duration(details.get("total_ms", 0))),
                    _("Fetch everything in one query: a JOIN or GROUP BY over the related "
                      "rows, an IN (…) / = ANY(…) list of the ids, or the ORM's eager "
                      "loading (selectinload or joinedload in SQLAlchemy)."))
        case ProblemKind.SLOW_DB_QUERY:
            took = _duration(details.get("duration_ms", 0))
            limit = _duration(details.get("threshold_ms", 500))
            said = (_("A query of {service} (in {operation}) took up to {duration} ({count} "
                      "times in one request), over the {threshold} a read should take.")
                    if count > 1 else
                    _("A query of {service} (in {operation}) took {duration}, over the "
                      "{threshold} a read should take."))
            return (said.format(service=service, operation=operation, duration=took,
                                count=count, threshold=limit),
                    _("Run EXPLAIN ANALYZE on it: add an index on the columns it filters and "
                      "joins on, bound it (LIMIT, a narrower WHERE), avoid joins without a "
                      "condition (a cartesian product), or cache a result that rarely "
                      "changes."))
        case ProblemKind.CONSECUTIVE_DB:
            return (_("While handling {operation}, {service} ran {count} queries one after "
                      "another, and {independent} of them need nothing from the ones before "
                      "(no WHERE clause, no parameters). Run at the same time they would "
                      "have saved {saved}.").format(
                          operation=operation, service=service, count=count,
                          independent=details.get("independent", 0),
                          saved=_duration(details.get("saved_ms", 0))),
                    _("Start the independent queries together (asyncio.gather, each on a "
                      "connection of its own), or combine them into one query."))
        case ProblemKind.N_PLUS_ONE_HTTP:
            peer = details.get("peer_service") or _("another service")
            return (_("While handling {operation}, {service} called {peer} {count} times for "
                      "the same route ({route}), once per item, {total} in all. Every call "
                      "costs a round trip, its own request handling and its own "
                      "queries.").format(operation=operation, service=service, peer=peer,
                                         count=count, route=target,
                                         total=_duration(details.get("total_ms", 0))),
                    _("Ask {peer} once for all the items: a batch endpoint (for example "
                      "?ids=1,2,3) or a listing that includes what each call fetched; cache "
                      "what rarely changes.").format(peer=peer))
        case ProblemKind.ERROR_HOTSPOT:
            return (_("{operation} of {service} failed in {percent} % of its {requests} "
                      "requests in the last {minutes} minutes, against {before} % "
                      "before.").format(
                          operation=operation, service=service,
                          percent=details.get("error_percent", 0),
                          requests=details.get("requests", 0),
                          minutes=f"{details.get('window_seconds', 300) / 60:.0f}",
                          before=details.get("baseline_error_percent", 0)),
                    _("Open the example trace: the failing span's exception and the trace's "
                      "logs say what broke. Check what changed just before it started — a "
                      "deploy, a dependency that is down, the database."))
        case ProblemKind.SLOW_ENDPOINT:
            return (_("{operation} of {service} answers in {p95} at the 95th percentile over "
                      "the last {minutes} minutes, against {baseline} in the hour "
                      "before.").format(
                          operation=operation, service=service,
                          p95=_duration(details.get("p95_ms", 0)),
                          minutes=f"{details.get('window_seconds', 300) / 60:.0f}",
                          baseline=_duration(details.get("baseline_p95_ms", 0))),
                    _("Compare the example (slow) trace with a normal one of the same route: "
                      "the span that grew tells where the time went — a query, a call to "
                      "another service, waiting for a lock or a connection, or CPU."))
        case ProblemKind.FAULT_FLAG:
            return _fault_flag_words(service, operation, details)
        case ProblemKind.MEMORY_GROWTH:
            return (_("{process} grew {grown} MiB in the last {window} s on a steady line, "
                      "and still climbs, {rate} MiB a minute lately; it holds {memory} MiB "
                      "now. Memory that only grows is a leak: something keeps what it no "
                      "longer needs (a list or cache that is never emptied, objects kept per "
                      "request).").format(
                          process=_process(service, details),
                          grown=f"{details.get('grown_mib', 0):.0f}",
                          window=f"{details.get('window_seconds', 120):.0f}",
                          rate=f"{details.get('mib_per_minute', 0):.0f}",
                          memory=f"{details.get('memory_mib', 0):.0f}"),
                    _("Find what grows with the traffic: compare the process's memory with "
                      "its request or event rate on the Metrics page, and look at what it "
                      "keeps per request. A cache needs a bound "
                      "(functools.lru_cache(maxsize=…)); a list of results needs emptying. "
                      "Restarting frees it only until it fills again."))
        case ProblemKind.CPU_SATURATION:
            usual = details.get("usual_cores")
            values = {
                "process": _process(service, details),
                "cores": f"{details.get('cores', 0):.2f}",
                "window": f"{details.get('window_seconds', 60):.0f}",
                "usual": f"{usual:.2f}" if usual is not None else "",
                "minutes": f"{details.get('baseline_seconds', 600) / 60:.0f}",
                "share": details.get("share_over_percent", 0),
                "threshold": f"{details.get('threshold_cores', 0):g}"}
            said = (_("{process} kept {cores} cores busy over the last {window} s, against "
                      "{usual} in the {minutes} minutes before ({share} % of the readings "
                      "at {threshold} cores or more).") if usual is not None else
                    _("{process} kept {cores} cores busy over the last {window} s ({share} % "
                      "of the readings at {threshold} cores or more)."))
            return (said.format(**values) + " " +
                    _("A Python process runs its code on one core at most: its requests "
                      "queue behind the work that keeps it busy, and every route of it slows "
                      "down."),
                    _("Open its slowest traces: a span that burns CPU (a loop, hashing, "
                      "serialising a large answer) is long without children. Move heavy "
                      "work off the event loop (a worker, a process pool), cache what it "
                      "computes again and again, or give the service more processes."))
        case _:
            assert_never(kind)


def _process(service: str, details: Mapping[str, Any]) -> str:
    pid = details.get("pid")
    return _("{service} (pid {pid})").format(service=service, pid=pid) if pid else service


def _fault_flag_words(service: str, operation: str, details: Mapping[str, Any]
                      ) -> tuple[str, str]:
    flag, variant = details.get("flag", "?"), details.get("variant") or "on"
    spans, failed = details.get("spans", 0), details.get("failed", 0)
    window = details.get("window_seconds", 30)
    what = [_("In the last {window} s, {spans} spans of {operation} in {service} carried "
              "{key}={flag} ({variant_key}={variant}): the fault flag is on and acts on "
              "them.").format(window=f"{window:.0f}", spans=spans, operation=operation,
                              service=service, key=semconv.FEATURE_FLAG_KEY, flag=flag,
                              variant_key=semconv.FEATURE_FLAG_VARIANT, variant=variant)]
    if failed:
        what.append(_("{failed} of them failed, against {other_failed} of the {others} spans "
                      "it did not mark: the flag is why they fail.").format(
                          failed=failed, other_failed=details.get("unmarked_failed", 0),
                          others=details.get("unmarked_spans", 0)))
    elif details.get("unmarked_p95_ms") is not None:
        what.append(_("Their p95 is {p95}, against {others} for the spans it did not "
                      "mark.").format(p95=_duration(details.get("p95_ms", 0)),
                                      others=_duration(details["unmarked_p95_ms"])))
    else:
        what.append(_("Their p95 is {p95}.").format(p95=_duration(details.get("p95_ms", 0))))
    also = details.get("also_marked") or []
    if also:
        what.append(_("It marks {operations} too.").format(operations=", ".join(also)))
    return (" ".join(what),
            _("Turn the flag off (kansoku flags set {flag} off, or kansoku flags reset for "
              "every flag; or the admin's Faults page), or open the example trace to see "
              "what it does; docs/faults.md describes each flag and what it "
              "shows.").format(flag=flag))


def headline(kind: ProblemKind, service: str, operation: str, details: Mapping[str, Any]
             ) -> str:
    """The problem in one line, naming what it is about: the flag and its variant, the
    process, the operation."""
    match kind:
        case ProblemKind.FAULT_FLAG:
            flag, variant = details.get("flag", "?"), details.get("variant") or "on"
            spans, failed = details.get("spans", 0), details.get("failed", 0)
            effect = (_("{failed} of {spans} marked spans failed, {other_failed} of the "
                        "{others} others").format(
                            failed=failed, spans=spans,
                            other_failed=details.get("unmarked_failed", 0),
                            others=details.get("unmarked_spans", 0)) if failed
                      else _("{spans} spans marked, p95 {p95}").format(
                          spans=spans, p95=_duration(details.get("p95_ms", 0))))
            return _("fault flag {flag}={variant} in {service} {operation}: {effect}").format(
                flag=flag, variant=variant, service=service, operation=operation,
                effect=effect)
        case ProblemKind.MEMORY_GROWTH:
            return _("memory growing in {process}: +{rate} MiB a minute, {memory} MiB "
                     "now").format(process=_process(service, details),
                                   rate=f"{details.get('mib_per_minute', 0):.0f}",
                                   memory=f"{details.get('memory_mib', 0):.0f}")
        case ProblemKind.CPU_SATURATION:
            return _("CPU saturation in {process}: {cores} cores busy").format(
                process=_process(service, details), cores=f"{details.get('cores', 0):.2f}")
        case ProblemKind.ERROR_HOTSPOT:
            return _("{operation} of {service} failing: {percent} % of its requests").format(
                operation=operation, service=service,
                percent=details.get("error_percent", 0))
        case ProblemKind.SLOW_ENDPOINT:
            return _("{operation} of {service} slower than usual: p95 {p95} against "
                     "{baseline}").format(operation=operation, service=service,
                                          p95=_duration(details.get("p95_ms", 0)),
                                          baseline=_duration(details.get("baseline_p95_ms", 0)))
        case (ProblemKind.N_PLUS_ONE_DB | ProblemKind.SLOW_DB_QUERY | ProblemKind.CONSECUTIVE_DB
              | ProblemKind.N_PLUS_ONE_HTTP):
            return _("{title} in {service} {operation}").format(
                title=str(PROBLEM_TITLES[kind]), service=service, operation=operation)
        case _:
            assert_never(kind)


def clearing(kind: ProblemKind, thresholds: Thresholds, check_seconds: float
             ) -> tuple[float, str]:
    """How long after its rule last found it a problem of `kind` stays ongoing, and what
    clears it, in words. The rules that look at windows run every `check_seconds`."""
    hold, values = clearing_values(kind, thresholds, check_seconds)
    return hold, clearing_text(kind, values)


def clearing_values(kind: ProblemKind, thresholds: Thresholds, check_seconds: float
                    ) -> tuple[float, dict[str, str]]:
    """How long a problem of `kind` stays ongoing after its rule last found it, and the
    numbers `clearing_text` says what clears it with (kept with the evidence, so that the
    API writes the text in each reader's language)."""
    t = thresholds
    hold = max(2 * check_seconds, 10.0)  # two passes: one late pass does not clear it
    values = {"hold": f"{hold:g}", "check": f"{check_seconds:g}"}
    match kind:
        case (ProblemKind.N_PLUS_ONE_DB | ProblemKind.SLOW_DB_QUERY | ProblemKind.CONSECUTIVE_DB
              | ProblemKind.N_PLUS_ONE_HTTP):
            hold = DEFAULT_HOLD_SECONDS
            values["hold"] = f"{hold:g}"
        case ProblemKind.ERROR_HOTSPOT:
            values.update(latest=f"{t.latest_seconds:g}",
                          rate=f"{100 * t.error_hotspot_min_rate:g}",
                          within=f"{t.latest_seconds + hold:g}")
        case ProblemKind.SLOW_ENDPOINT:
            values.update(latest=f"{t.latest_seconds:g}", factor=f"{t.slow_endpoint_factor:g}",
                          within=f"{t.latest_seconds + hold:g}")
        case ProblemKind.FAULT_FLAG:
            values.update(window=f"{t.flag_window_seconds:g}",
                          within=f"{t.flag_window_seconds + hold:g}")
        case ProblemKind.MEMORY_GROWTH:
            values.update(latest=f"{t.memory_latest_seconds:g}")
        case ProblemKind.CPU_SATURATION:
            values.update(cores=f"{t.cpu_min_cores:g}", after=f"{hold + 10:g}")
        case _:
            assert_never(kind)
    return hold, values


def clearing_text(kind: ProblemKind, values: Mapping[str, Any]) -> str:
    """What clears a problem of `kind`, in the current language, with `clearing_values`'
    numbers."""
    match kind:
        case (ProblemKind.N_PLUS_ONE_DB | ProblemKind.SLOW_DB_QUERY | ProblemKind.CONSECUTIVE_DB
              | ProblemKind.N_PLUS_ONE_HTTP):
            text = _("Clears when no new trace shows it for {hold} s — once the fix is "
                     "running, or the code path is no longer used.")
        case ProblemKind.ERROR_HOTSPOT:
            text = _("Clears when the operation's last {latest} s have no failures at {rate} % "
                     "or more, {hold} s later (checked every {check} s): within about "
                     "{within} s of the cause going away.")
        case ProblemKind.SLOW_ENDPOINT:
            text = _("Clears when the operation's p95 over its last {latest} s is back under "
                     "{factor} times its usual, {hold} s later (checked every {check} s): "
                     "within about {within} s of the cause going away.")
        case ProblemKind.FAULT_FLAG:
            text = _("Clears when no span has carried the flag for {window} s, {hold} s later "
                     "(checked every {check} s): within about {within} s of turning it off.")
        case ProblemKind.MEMORY_GROWTH:
            text = _("Clears when the memory has stopped climbing over the last {latest} s (a "
                     "leak that is freed drops it at once), {hold} s later (checked every "
                     "{check} s).")
        case ProblemKind.CPU_SATURATION:
            text = _("Clears when the process's latest reading is under {cores} cores (or its "
                     "minute no longer stays there), {hold} s later (checked every {check} "
                     "s): about {after} s after the work stops.")
        case _:
            assert_never(kind)
    return text.format_map(_Unknown(values))


class _Unknown(dict[str, Any]):
    """Values for a text, where one it names is missing (evidence kept by an older
    explorer) read "?" rather than fail the answer."""

    def __missing__(self, key: str) -> str:
        return "?"


def problem_state(last_seen_ns: int, details: Mapping[str, Any], now_ns: int) -> ProblemState:
    """Ongoing while its rule found it within its hold time (kept with its evidence)."""
    hold = float(details.get("hold_seconds") or DEFAULT_HOLD_SECONDS)
    return (ProblemState.ONGOING if now_ns - last_seen_ns <= hold * 1e9
            else ProblemState.CLEARED)


def presented(problem: StoredProblem, now_ns: int | None = None) -> ProblemReport:
    """A stored problem (or a trace's occurrence of one) as the API answers it, with its
    state at `now_ns` (now)."""
    kind = problem.kind
    explanation, fix = explain(kind, problem.service, problem.operation,
                               problem.target or "", problem.details)
    now = now_ns if now_ns is not None else time.time_ns()
    clearing_values = problem.details.get("clears_when_values")
    clears_when = (clearing_text(kind, clearing_values) if isinstance(clearing_values, dict)
                   else problem.details.get("clears_when"))
    return ProblemReport(
        fingerprint=problem.fingerprint, kind=kind, title=str(PROBLEM_TITLES[kind]),
        service=problem.service, operation=problem.operation,
        statement=problem.target if kind in STATEMENT_KINDS else None,
        route=problem.target if kind in ROUTE_KINDS else None,
        headline=headline(kind, problem.service, problem.operation, problem.details),
        state=problem_state(problem.last_seen_ns, problem.details, now),
        clears_when=str(clears_when) if clears_when else
        _("Clears when its rule has not found it for {hold} s.").format(
            hold=f"{DEFAULT_HOLD_SECONDS:g}"),
        example_trace_id=problem.example_trace_id,
        first_seen_ns=problem.first_seen_ns, last_seen_ns=problem.last_seen_ns,
        occurrences=problem.occurrences, impact=problem.impact,
        impact_unit=problem.impact_unit,
        impact_text=impact_text(kind, problem.impact, problem.occurrences),
        explanation=explanation, fix=fix, details=problem.details,
        span_ids=problem.span_ids)


# --- following the traffic -------------------------------------------------------------

_TRACE_ID, _PARENT, _START = (SPANS.names.index(name) for name in
                              ("trace_id", "parent_span_id", "start_ns"))


@dataclass(slots=True)
class _Arrival:
    last_seen: float
    first_start_ns: int
    has_root: bool


class TraceTracker:
    """Which traces received spans, and when, so each is checked once complete.

    `note` runs in the store's writer thread after every commit of spans; `complete`
    in the detector's. A trace checked already that receives late spans (a consumer's
    work after the request ended) is checked again; occurrences are kept once per
    trace, so nothing counts twice.
    """

    def __init__(self, *, grace_seconds: float, orphan_seconds: float,
                 max_pending: int = 200_000, max_checked: int = 50_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.grace_seconds = grace_seconds
        self.orphan_seconds = orphan_seconds
        #: Traces waiting to be complete at most (past it, the oldest are checked now),
        #: and checked traces remembered (their late spans wait only the grace).
        self.max_pending = max_pending
        self.max_checked = max_checked
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: dict[str, _Arrival] = {}
        #: Traces checked lately, with their earliest start (late spans keep it).
        self._checked: OrderedDict[str, int] = OrderedDict()

    def note(self, rows: Rows) -> None:
        if rows.table is not SPANS or not len(rows):
            return
        trace_ids, parents, starts = (rows.values[_TRACE_ID], rows.values[_PARENT],
                                      rows.values[_START])
        now = self._clock()
        with self._lock:
            pending, checked = self._pending, self._checked
            for trace_id, parent, start in zip(trace_ids, parents, starts, strict=True):
                arrival = pending.get(trace_id)
                if arrival is None:
                    earlier = checked.get(trace_id)
                    # A trace checked before had its root already: only the grace waits.
                    pending[trace_id] = _Arrival(now, min(start, earlier or start),
                                                 parent is None or earlier is not None)
                else:
                    arrival.last_seen = now
                    arrival.has_root = arrival.has_root or parent is None
                    arrival.first_start_ns = min(arrival.first_start_ns, start)

    def note_roots(self, roots: Iterable[tuple[str, int]]) -> None:
        """Traces to check though their spans arrived before this process started."""
        now = self._clock()
        with self._lock:
            for trace_id, start in roots:
                self._pending.setdefault(trace_id, _Arrival(now, start, True))

    def complete(self) -> list[tuple[str, int]]:
        """Traces complete now, with their earliest start; they leave the pending set."""
        now = self._clock()
        with self._lock:
            over = len(self._pending) - self.max_pending
            ready = [trace_id for trace_id, arrival in self._pending.items()
                     if now - arrival.last_seen >= (self.grace_seconds if arrival.has_root
                                                    else self.orphan_seconds)]
            if over > 0:  # more traces in flight than we keep: the oldest go now
                taken = set(ready)
                ready += [trace_id for trace_id in list(self._pending)[:over]
                          if trace_id not in taken]
            done = []
            for trace_id in ready:
                arrival = self._pending.pop(trace_id)
                done.append((trace_id, arrival.first_start_ns))
                self._checked[trace_id] = arrival.first_start_ns
                self._checked.move_to_end(trace_id)
            while len(self._checked) > self.max_checked:
                self._checked.popitem(last=False)
            return done

    @property
    def pending(self) -> int:
        return len(self._pending)


class ProblemDetector:
    """Runs the rules on what arrives and records what they find in the store."""

    #: How far before a trace's earliest known span its other spans are looked for.
    SLACK_NS = 120 * 1_000_000_000
    #: Traces read in one query at most.
    BATCH = 500

    def __init__(self, store: TelemetryStore, thresholds: Thresholds, *,
                 check_seconds: float = 5.0, grace_seconds: float = 5.0,
                 orphan_seconds: float = 30.0, baseline_check_seconds: float = 60.0) -> None:
        self.store = store
        self.thresholds = thresholds
        self.check_seconds = check_seconds
        self.baseline_check_seconds = baseline_check_seconds
        self.tracker = TraceTracker(grace_seconds=grace_seconds,
                                    orphan_seconds=orphan_seconds)
        store.add_span_listener(self.tracker.note)
        self.traces_checked = 0
        self.occurrences_recorded = 0
        self.last_check_ns = 0
        self.last_baseline_check_ns = 0
        self.last_live_check_ns = 0

    def catch_up(self, seconds: float = 300.0) -> int:
        """After a restart: check the traces whose roots arrived in the last `seconds`
        (those already checked keep their occurrences once)."""
        since = time.time_ns() - int(seconds * 1e9)
        roots = queries.recent_roots(self.store, since)
        self.tracker.note_roots(roots)
        return len(roots)

    def check_traces(self) -> int:
        """Check every trace complete now; returns the occurrences recorded."""
        ready = self.tracker.complete()
        recorded = 0
        for start in range(0, len(ready), self.BATCH):
            batch = ready[start:start + self.BATCH]
            try:
                recorded += self._check(batch)
            except Exception:
                # Nothing of this batch was recorded: check it again on the next pass.
                self.tracker.note_roots(batch)
                raise
            self.traces_checked += len(batch)
        self.occurrences_recorded += recorded
        self.last_check_ns = time.time_ns()
        return recorded

    def _check(self, batch: list[tuple[str, int]]) -> int:
        since = min(first for _, first in batch) - self.SLACK_NS
        rows = queries.spans_for_detection(self.store, [trace for trace, _ in batch], since)
        by_trace: dict[str, list[Span]] = defaultdict(list)
        for row in rows:
            by_trace[row[0]].append(Span(*row))
        findings = [finding for spans in by_trace.values()
                    for finding in detect_in_trace(spans, self.thresholds)]
        if not findings:
            return 0
        return queries.record_problems(
            self.store, [finding.occurrence() for finding in self._cleared_by(findings)])

    def _cleared_by(self, findings: list[Finding]) -> list[Finding]:
        """`findings` with what clears each in their evidence (`clearing`)."""
        for finding in findings:
            hold, values = clearing_values(finding.kind, self.thresholds,
                                           self.baseline_check_seconds)
            # In words (the default language: no reader here) for whoever reads the stored
            # evidence; the API writes them anew from the values in its reader's language.
            finding.details = {**finding.details, "hold_seconds": hold,
                               "clears_when": clearing_text(finding.kind, values),
                               "clears_when_values": values}
        return findings

    def _record_windowed(self, findings: list[Finding], window_seconds: float) -> int:
        """Keep findings of the window rules: one occurrence per problem and window,
        a sighting in between only moves `last_seen` (which keeps it ongoing)."""
        if not findings:
            return 0
        recorded = queries.record_problems(
            self.store, [f.occurrence(once_per_ns=int(window_seconds * 1e9))
                         for f in self._cleared_by(findings)])
        self.occurrences_recorded += recorded
        return recorded

    def check_baselines(self, now_ns: int | None = None) -> int:
        """Run the baseline rules over the recent window ending at `now_ns` (now);
        returns occurrences recorded (at most one per problem and window)."""
        now = now_ns if now_ns is not None else time.time_ns()
        t = self.thresholds
        recent_start = now - int(t.recent_seconds * 1e9)
        windows = queries.operation_windows(
            self.store, baseline_start_ns=recent_start - int(t.baseline_seconds * 1e9),
            recent_start_ns=recent_start, latest_start_ns=now - int(t.latest_seconds * 1e9),
            end_ns=now,
            min_requests=min(t.error_hotspot_min_requests, t.slow_endpoint_min_requests))
        recorded = self._record_windowed(detect_against_baseline(windows, t, now),
                                         t.recent_seconds)
        self.last_baseline_check_ns = now
        return recorded

    def check_live(self, now_ns: int | None = None) -> int:
        """Run the live rules at `now_ns` (now): fault flags marking spans, memory
        growth, CPU saturation. Returns occurrences recorded."""
        now = now_ns if now_ns is not None else time.time_ns()
        t = self.thresholds
        flagged = queries.flagged_spans(
            self.store, start_ns=now - int(t.flag_window_seconds * 1e9), end_ns=now,
            min_spans=1)
        recorded = self._record_windowed(detect_fault_flags(flagged, t, now),
                                         t.flag_window_seconds)
        memory_start = now - int(t.memory_window_seconds * 1e9)
        memory = queries.process_series(
            self.store, semconv.METRIC_PROCESS_MEMORY,
            baseline_start_ns=memory_start - int(t.memory_warmup_seconds * 1e9),
            start_ns=memory_start,
            latest_start_ns=now - int(t.memory_latest_seconds * 1e9), end_ns=now, level=0.0)
        cpu_start = now - int(t.cpu_window_seconds * 1e9)
        cpu = queries.process_series(
            self.store, semconv.METRIC_PROCESS_CPU,
            baseline_start_ns=cpu_start - int(t.cpu_baseline_seconds * 1e9),
            start_ns=cpu_start, latest_start_ns=cpu_start, end_ns=now,
            level=t.cpu_min_cores / t.cpu_count)
        grows = detect_memory_growth(memory, t, now)
        busy = detect_cpu_saturation(cpu, t, now)
        if grows or busy:
            self._name_processes([*grows, *busy], now - int(t.memory_window_seconds * 1e9))
        recorded += self._record_windowed(grows, t.memory_window_seconds)
        recorded += self._record_windowed(busy, t.cpu_window_seconds)
        self.last_live_check_ns = now
        return recorded

    def _name_processes(self, findings: list[Finding], since_ns: int) -> None:
        """The process id of each finding's service, and its latest trace as the example."""
        known = queries.latest_of_services(self.store, sorted({f.service for f in findings}),
                                           since_ns)
        for finding in findings:
            # Not the occurrence's trace (the problem is the process's, not one trace's:
            # the waterfall does not mark it), but a place to start looking.
            pid, trace_id = known.get(finding.service, (None, None))
            finding.details = {**finding.details, "pid": pid, "latest_trace_id": trace_id}

    def stats(self) -> DetectionStats:
        return DetectionStats(
            traces_checked=self.traces_checked, traces_pending=self.tracker.pending,
            occurrences_recorded=self.occurrences_recorded, last_check_ns=self.last_check_ns,
            last_baseline_check_ns=self.last_baseline_check_ns)

    async def run_forever(self) -> None:
        """The explorer's background task: traces every `check_seconds`, the live and
        baseline rules every `baseline_check_seconds`. A failed pass is logged and the
        next one goes on."""
        try:
            await asyncio.to_thread(self.catch_up)
        except Exception:
            logger.exception("problem detection could not look at the recent traces")
        next_baseline = time.monotonic() + min(self.baseline_check_seconds, 15.0)
        while True:
            await asyncio.sleep(self.check_seconds)
            try:
                await asyncio.to_thread(self.check_traces)
            except Exception:
                logger.exception("problem detection failed; trying again later")
            if time.monotonic() >= next_baseline:
                next_baseline = time.monotonic() + self.baseline_check_seconds
                for check in (self.check_live, self.check_baselines):
                    try:
                        await asyncio.to_thread(check)
                    except Exception:
                        logger.exception("%s failed; trying again later", check.__name__)
