"""Problem detection's SQL: the recent traces and their spans for the rules, each
operation's recent and baseline windows, and the problems found (kept and read)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb

from kansoku.explorer.common.spans import FAILED_REQUEST, HANDLED_REQUEST, SpanKind
from kansoku.explorer.common.sql import Where, loads
from kansoku.explorer.problems.models import (
    FlaggedSpans,
    ImpactUnit,
    OperationWindow,
    ProblemKind,
    ProblemOccurrence,
    ProcessSeries,
    StoredProblem,
)
from kansoku.explorer.store import TelemetryStore, as_json
from kansoku.kit import semconv

#: The columns the detection rules read, in the order of `detector.Span`'s fields (rows
#: become spans positionally: dicts would cost more than the rules themselves).
DETECTION_COLUMNS = ("trace_id", "span_id", "parent_span_id", "service", "name", "kind",
                     "start_ns", "duration_ns", "status", "route", "http_status", "db_system",
                     "db_statement", "peer_service", "url")


#: ... the last one being a client span's URL, from its attributes, to group calls by route.
_DETECTION_FIELDS = (
    ", ".join(DETECTION_COLUMNS[:-1]) + f", CASE WHEN kind = '{SpanKind.CLIENT}' THEN "
    f"json_extract_string(attributes, '$.\"{semconv.URL_FULL}\"') END AS url")


def recent_roots(store: TelemetryStore, since_ns: int) -> list[tuple[str, int]]:
    """Traces whose root span started since `since_ns`: (trace id, root's start)."""
    return [(row["trace_id"], int(row["start_ns"])) for row in store.rows(
        "SELECT trace_id, min(start_ns) AS start_ns FROM spans "
        "WHERE parent_span_id IS NULL AND start_ns >= ? GROUP BY trace_id", [since_ns])]


def spans_for_detection(store: TelemetryStore, trace_ids: list[str], since_ns: int
                        ) -> list[tuple[Any, ...]]:
    """The spans of `trace_ids` that started since `since_ns` (the bound lets DuckDB skip
    all older row groups instead of reading every trace id in the store), as tuples of
    `DETECTION_COLUMNS`."""
    return store.read(lambda cursor: cursor.execute(
        f"SELECT {_DETECTION_FIELDS} FROM spans WHERE start_ns >= ? "
        "AND trace_id = ANY(?::VARCHAR[])", [since_ns, trace_ids]).fetchall())


def operation_windows(store: TelemetryStore, *, baseline_start_ns: int, recent_start_ns: int,
                      latest_start_ns: int, end_ns: int, min_requests: int
                      ) -> list[OperationWindow]:
    """For each operation (server and consumer spans of one service with one name, e.g.
    'GET /products', and its route): requests, errors (error status or 5xx), p95 and
    mean duration in the recent window [recent_start, end] and in the baseline
    [baseline_start, recent_start); requests, errors and p95 in the latest part of the
    recent window [latest_start, end]; the slowest recent span and the latest recent
    failure as examples. Only operations with at least `min_requests` recent requests."""
    return [OperationWindow(**row) for row in store.rows(
        "WITH w AS (SELECT service, name AS operation, route, trace_id, span_id, "
        f"duration_ns, start_ns, {FAILED_REQUEST} AS failed, start_ns >= ? AS recent, "
        "start_ns >= ? AS latest "
        f"FROM spans WHERE {HANDLED_REQUEST} AND start_ns >= ? AND start_ns <= ?) "
        "SELECT service, operation, coalesce(any_value(route), operation) AS route, "
        "count(*) FILTER (WHERE recent) AS recent_requests, "
        "count(*) FILTER (WHERE recent AND failed) AS recent_errors, "
        "quantile_cont(duration_ns, 0.95) FILTER (WHERE recent) AS recent_p95_ns, "
        "avg(duration_ns) FILTER (WHERE recent) AS recent_mean_ns, "
        "count(*) FILTER (WHERE NOT recent) AS baseline_requests, "
        "count(*) FILTER (WHERE NOT recent AND failed) AS baseline_errors, "
        "quantile_cont(duration_ns, 0.95) FILTER (WHERE NOT recent) AS baseline_p95_ns, "
        "avg(duration_ns) FILTER (WHERE NOT recent) AS baseline_mean_ns, "
        "arg_max(trace_id, duration_ns) FILTER (WHERE recent) AS slow_trace_id, "
        "arg_max(span_id, duration_ns) FILTER (WHERE recent) AS slow_span_id, "
        "arg_max(trace_id, start_ns) FILTER (WHERE recent AND failed) AS error_trace_id, "
        "arg_max(span_id, start_ns) FILTER (WHERE recent AND failed) AS error_span_id, "
        "count(*) FILTER (WHERE latest) AS latest_requests, "
        "count(*) FILTER (WHERE latest AND failed) AS latest_errors, "
        "quantile_cont(duration_ns, 0.95) FILTER (WHERE latest) AS latest_p95_ns "
        "FROM w GROUP BY service, operation "
        "HAVING count(*) FILTER (WHERE recent) >= ? ORDER BY service, operation",
        [recent_start_ns, latest_start_ns, baseline_start_ns, end_ns, min_requests])]


#: SQL over `spans`: the fault flag that marked the span (None: none did).
_FLAG = f"json_extract_string(attributes, '$.\"{semconv.FEATURE_FLAG_KEY}\"')"
_VARIANT = f"json_extract_string(attributes, '$.\"{semconv.FEATURE_FLAG_VARIANT}\"')"


def flagged_spans(store: TelemetryStore, *, start_ns: int, end_ns: int, min_spans: int
                  ) -> list[FlaggedSpans]:
    """Spans that started in [start, end) marked by a fault flag, per service, span name,
    flag and variant (at least `min_spans` of them): how many, how many failed, their
    p95; the same operation's unmarked spans beside them; the latest failed marked span
    (else the slowest) as the example. Request spans (server, consumer) come first in
    each service, then the rest, by count."""
    return [FlaggedSpans(**row) for row in store.rows(
        "WITH w AS (SELECT service, name, trace_id, span_id, start_ns, duration_ns, "
        f"{FAILED_REQUEST} AS failed, {_FLAG} AS flag, {_VARIANT} AS variant, "
        f"{HANDLED_REQUEST} AS request FROM spans WHERE start_ns >= ? AND start_ns < ?), "
        "marked AS (SELECT service, name, flag, coalesce(variant, '') AS variant, "
        "bool_or(request) AS request, count(*) AS spans, "
        "count(*) FILTER (WHERE failed) AS failed, "
        "quantile_cont(duration_ns, 0.95) AS p95_ns, "
        "coalesce(arg_max(trace_id, start_ns) FILTER (WHERE failed), "
        "arg_max(trace_id, duration_ns)) AS example_trace_id, "
        "coalesce(arg_max(span_id, start_ns) FILTER (WHERE failed), "
        "arg_max(span_id, duration_ns)) AS example_span_id "
        "FROM w WHERE flag IS NOT NULL GROUP BY service, name, flag, coalesce(variant, '') "
        "HAVING count(*) >= ?), "
        "unmarked AS (SELECT service, name, count(*) AS spans, "
        "count(*) FILTER (WHERE failed) AS failed, "
        "quantile_cont(duration_ns, 0.95) AS p95_ns FROM w "
        "WHERE flag IS NULL GROUP BY service, name) "
        "SELECT m.service, m.name AS operation, m.flag, m.variant, m.spans, m.failed, "
        "m.p95_ns, coalesce(u.spans, 0) AS unmarked_spans, "
        "coalesce(u.failed, 0) AS unmarked_failed, u.p95_ns AS unmarked_p95_ns, "
        "m.example_trace_id, m.example_span_id "
        "FROM marked m LEFT JOIN unmarked u ON u.service = m.service AND u.name = m.name "
        "ORDER BY m.service, m.flag, m.request DESC, m.spans DESC, m.name",
        [start_ns, end_ns, min_spans])]


def process_series(store: TelemetryStore, metric: str, *, baseline_start_ns: int,
                   start_ns: int, latest_start_ns: int, end_ns: int, level: float
                   ) -> list[ProcessSeries]:
    """One process metric (`process.memory.usage`, `process.cpu.utilization`) per
    service over the window [start, end): its points (the series of a service summed
    at each time: CPU's user and system, if it reports them apart), first, latest and
    mean value, least-squares slope per second and its r², the slope over
    [latest_start, end], the share of points at or above `level`, and the mean over
    [baseline_start, start). With the process id the service's latest spans name."""
    rows = store.rows(
        "WITH p AS (SELECT service, time_ns, sum(value) AS value FROM metric_points "
        "WHERE name = ? AND time_ns >= ? AND time_ns < ? AND value IS NOT NULL "
        "GROUP BY service, time_ns), "
        "s AS (SELECT service, count(*) FILTER (WHERE time_ns >= ?) AS points, "
        "arg_min(value, time_ns) FILTER (WHERE time_ns >= ?) AS first_value, "
        "arg_max(value, time_ns) FILTER (WHERE time_ns >= ?) AS latest_value, "
        "avg(value) FILTER (WHERE time_ns >= ?) AS mean, "
        "regr_slope(value, time_ns / 1e9) FILTER (WHERE time_ns >= ?) AS slope_per_second, "
        "regr_r2(value, time_ns / 1e9) FILTER (WHERE time_ns >= ?) AS fit, "
        "regr_slope(value, time_ns / 1e9) FILTER (WHERE time_ns >= ?) "
        "AS latest_slope_per_second, "
        "avg(CASE WHEN value >= ? THEN 1.0 ELSE 0.0 END) FILTER (WHERE time_ns >= ?) "
        "AS share_over, avg(value) FILTER (WHERE time_ns < ?) AS baseline_mean "
        "FROM p GROUP BY service HAVING count(*) FILTER (WHERE time_ns >= ?) > 0) "
        "SELECT * FROM s ORDER BY service",
        [metric, baseline_start_ns, end_ns, start_ns, start_ns, start_ns, start_ns,
         start_ns, start_ns, latest_start_ns, level, start_ns, start_ns, start_ns])
    return [ProcessSeries(**row) for row in rows]


def latest_of_services(store: TelemetryStore, services: list[str], since_ns: int
                       ) -> dict[str, tuple[int | None, str | None]]:
    """For each of `services`, from its spans since `since_ns`: the process id its latest
    span's resource names (`process.pid`), and its latest request's trace (an example
    of what the process was doing)."""
    rows = store.rows(
        f"SELECT service, arg_max(json_extract_string(resource, '$.\"{semconv.PROCESS_PID}\"'), "
        "start_ns) AS pid, "
        f"arg_max(trace_id, start_ns) FILTER (WHERE {HANDLED_REQUEST}) AS trace_id "
        "FROM spans WHERE start_ns >= ? AND service = ANY(?::VARCHAR[]) GROUP BY service",
        [since_ns, services])
    found: dict[str, tuple[int | None, str | None]] = {}
    for row in rows:
        pid = row["pid"]
        found[row["service"]] = (int(pid) if pid and str(pid).isdigit() else None,
                                 row["trace_id"])
    return found


_PROBLEM_FIELDS = ("p.fingerprint, p.kind, p.service, p.operation, p.target, p.first_seen_ns, "
                   "p.last_seen_ns, p.occurrences, p.impact, p.impact_unit, "
                   "p.example_trace_id, p.details")


def problems(store: TelemetryStore, *, since_ns: int, service: str | None = None,
             kind: str | None = None, limit: int = 200) -> list[StoredProblem]:
    """Problems seen since `since_ns`, the most recently seen first."""
    where = Where("p.last_seen_ns >= ?", since_ns)
    where.add_if(service, "p.service = ?")
    where.add_if(kind, "p.kind = ?")
    rows = store.rows(
        f"SELECT {_PROBLEM_FIELDS} FROM problems p WHERE {where} "
        "ORDER BY p.last_seen_ns DESC, p.fingerprint LIMIT ?", [*where.parameters, limit])
    return [_stored_problem(row) for row in rows]


def problems_of_trace(store: TelemetryStore, trace_id: str) -> list[StoredProblem]:
    """The problems that occurred in one trace, each with that occurrence's spans, its
    impact and evidence (in place of the problem's totals)."""
    rows = store.rows(
        f"SELECT {_PROBLEM_FIELDS}, o.span_ids, o.impact AS occurrence_impact, "
        "o.details AS occurrence_details FROM problem_occurrences o "
        "JOIN problems p ON p.fingerprint = o.fingerprint WHERE o.trace_id = ? "
        "ORDER BY o.time_ns", [trace_id])
    for row in rows:
        row["impact"] = row.pop("occurrence_impact")
        row["details"] = row.pop("occurrence_details")
        row["occurrences"] = 1
    return [_stored_problem(row) for row in rows]


def _stored_problem(row: dict[str, Any]) -> StoredProblem:
    return StoredProblem(**{**row, "kind": ProblemKind(row["kind"]),
                            "impact_unit": ImpactUnit(row["impact_unit"]),
                            "details": loads(row["details"]) or {}})


# --- what detection finds ---------------------------------------------------------

def record_problems(store: TelemetryStore, occurrences: Sequence[ProblemOccurrence]) -> int:
    """Keep new occurrences and fold them into their problems (one row per
    fingerprint: first and last seen, occurrences, total impact, the latest trace
    as the example). An occurrence already kept for the same problem and trace, or
    (with `once_per_ns`) one too soon after the last, only moves `last_seen` and
    brings the evidence up to date.
    Returns the occurrences kept. Call it from one thread at a time (a worker thread)."""
    if not occurrences:
        return 0

    def run(cursor: duckdb.DuckDBPyConnection) -> int:
        prints = sorted({o.fingerprint for o in occurrences})
        kept = _new_occurrences(cursor, prints, occurrences)
        if kept:
            cursor.executemany(
                "INSERT INTO problem_occurrences (fingerprint, trace_id, time_ns, "
                "span_ids, impact, details) VALUES (?, ?, ?, ?, ?, ?)",
                [[o.fingerprint, o.trace_id, o.time_ns, list(o.span_ids), o.impact,
                  as_json(o.details)] for o in kept])
        _fold_into_problems(cursor, prints, occurrences, kept)
        return len(kept)
    return store.in_transaction(run)

def _new_occurrences(cursor: duckdb.DuckDBPyConnection, prints: list[str],
                     occurrences: Sequence[ProblemOccurrence]) -> list[ProblemOccurrence]:
    traces = sorted({o.trace_id for o in occurrences})
    seen = {(row[0], row[1]) for row in cursor.execute(
        "SELECT fingerprint, trace_id FROM problem_occurrences "
        "WHERE fingerprint = ANY(?::VARCHAR[]) AND trace_id = ANY(?::VARCHAR[])",
        [prints, traces]).fetchall()}
    latest = dict(cursor.execute(
        "SELECT fingerprint, max(time_ns) FROM problem_occurrences "
        "WHERE fingerprint = ANY(?::VARCHAR[]) GROUP BY fingerprint", [prints]).fetchall())
    kept = []
    for occurrence in occurrences:
        key = (occurrence.fingerprint, occurrence.trace_id)
        last = latest.get(occurrence.fingerprint)
        if key in seen or (occurrence.once_per_ns and last is not None
                           and occurrence.time_ns - last < occurrence.once_per_ns):
            continue
        seen.add(key)
        latest[occurrence.fingerprint] = max(last or 0, occurrence.time_ns)
        kept.append(occurrence)
    return kept

def _fold_into_problems(cursor: duckdb.DuckDBPyConnection, prints: list[str],
                        occurrences: Sequence[ProblemOccurrence],
                        kept: list[ProblemOccurrence]) -> None:
    known = {row[0] for row in cursor.execute(
        "SELECT fingerprint FROM problems WHERE fingerprint = ANY(?::VARCHAR[])",
        [prints]).fetchall()}
    for fingerprint in prints:
        mine = [o for o in occurrences if o.fingerprint == fingerprint]
        new = [o for o in kept if o.fingerprint == fingerprint]
        latest = max(mine, key=lambda o: o.time_ns)
        if fingerprint in known:
            if new:
                example = max(new, key=lambda o: o.time_ns)
                cursor.execute(
                    "UPDATE problems SET last_seen_ns = greatest(last_seen_ns, ?), "
                    "first_seen_ns = least(first_seen_ns, ?), "
                    "occurrences = occurrences + ?, impact = impact + ?, "
                    "example_trace_id = ?, details = ? WHERE fingerprint = ?",
                    [example.time_ns, min(o.time_ns for o in new), len(new),
                     sum(o.impact for o in new), example.trace_id,
                     as_json(example.details), fingerprint])
            else:  # seen again: the latest evidence, nothing counted twice
                cursor.execute(
                    "UPDATE problems SET last_seen_ns = greatest(last_seen_ns, ?), "
                    "details = ? WHERE fingerprint = ?",
                    [latest.time_ns, as_json(latest.details), fingerprint])
        elif new:
            example = max(new, key=lambda o: o.time_ns)
            cursor.execute(
                "INSERT INTO problems (fingerprint, kind, service, operation, target, "
                "first_seen_ns, last_seen_ns, occurrences, impact, impact_unit, "
                "example_trace_id, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [fingerprint, example.kind, example.service, example.operation,
                 example.target, min(o.time_ns for o in new), example.time_ns, len(new),
                 sum(o.impact for o in new), example.impact_unit, example.trace_id,
                 as_json(example.details)])
