"""The traces' SQL: services and their operations, a search for trace ids, the spans of
some traces within an answer's bound, and a trace's log records. Every function runs
in a worker thread."""

from __future__ import annotations

from typing import Any

from kansoku.explorer.common.spans import SpanStatus
from kansoku.explorer.common.sql import ESCAPE, Where, as_models, attribute_path, like, loads
from kansoku.explorer.store import TelemetryStore
from kansoku.explorer.traces.models import Operation, TraceLog, TraceQuery, TraceSpans
from kansoku.kit.i18n import gettext as _

#: What one span may carry in an answer of the trace API: its name, status message,
#: attributes, resource, events and links as stored, in bytes. A span with more comes
#: without them (its name cut to `_CUT_NAME_CHARACTERS`), saying so in its warnings.
SPAN_DETAIL_BYTES = 64 * 1024

#: What a span costs an answer besides those: ids, times, kind, status and the JSON
#: around them. Measured: a kansoku server span (13 short attributes) is its stored
#: details plus about 750 bytes in Jaeger's shape, so an answer stays within its bound.
SPAN_OVERHEAD_BYTES = 800

_CUT_NAME_CHARACTERS = 200


def services(store: TelemetryStore) -> list[str]:
    return [row["service"] for row in store.rows(
        "SELECT DISTINCT service FROM spans ORDER BY service")]


def operations(store: TelemetryStore, service: str) -> list[Operation]:
    """The span names of `service`, each with its kind."""
    return [Operation(name=row["name"], spanKind=row["kind"]) for row in store.rows(
        "SELECT DISTINCT name, kind FROM spans WHERE service = ? ORDER BY name", [service])]


#: The tag Jaeger gives a span's OpenTelemetry status (ERROR or OK; none when unset),
#: and the store's status for each of its values.
OTEL_STATUS_CODE = "otel.status_code"

_STATUS_CODES = {status.upper(): status for status in SpanStatus}


def _tag_condition(key: str, value: str) -> tuple[str, list[Any]]:
    """A span condition for one searched tag, with its parameters."""
    match key:
        case "error":
            return ("status = ?" if value == "true" else "status <> ?"), [SpanStatus.ERROR]
        case "otel.status_code":  # OTEL_STATUS_CODE
            return "status = ?", [_STATUS_CODES.get(value.upper(), value.lower())]
        case "span.kind":
            return "kind = ?", [value.lower()]
    return "json_extract_string(attributes, ?) = ?", [attribute_path(key), value]


def find_trace_ids(store: TelemetryStore, query: TraceQuery) -> list[str]:
    """The newest traces matching `query`, newest first: a span of `service` (named
    `operation`) within the duration bounds, spans carrying each tag, no root named as
    `exclude_roots` says, and at least `min_spans` spans."""
    window = Where("start_ns BETWEEN ? AND ?", query.start_ns, query.end_ns)
    for key, value in query.tags:
        tagged, tag_parameters = _tag_condition(key, value)
        window.add(f"trace_id IN (SELECT trace_id FROM spans WHERE {tagged} "
                   "AND start_ns BETWEEN ? AND ?)", *tag_parameters, query.start_ns,
                   query.end_ns)
    span = Where("true")  # what one span of the trace must be
    span.add_if(query.service, "service = ?")
    span.add_if(query.operation, "name = ?")
    span.add_if(query.min_duration_ns, "duration_ns >= ?")
    span.add_if(query.max_duration_ns, "duration_ns <= ?")
    if not query.exclude_roots and query.min_spans <= 1:
        # Only spans matter: the matching spans alone are grouped (fewest rows).
        window.add(str(span), *span.parameters)
        rows = store.rows(
            f"SELECT trace_id FROM spans WHERE {window} "
            "GROUP BY trace_id ORDER BY max(start_ns) DESC LIMIT ?",
            [*window.parameters, query.limit])
        return [row["trace_id"] for row in rows]
    # The trace's shape matters too (its root, its size): every span of the window is
    # grouped once, and each condition read in the same pass — two subqueries joined
    # back cost four times as much at a million spans.
    trace = Where(f"bool_or({span})", *span.parameters)
    if query.min_spans > 1:
        trace.add("count(*) >= ?", query.min_spans)
    if query.exclude_roots:
        roots = " OR ".join(f"name LIKE ? {ESCAPE}" for _ in query.exclude_roots)
        trace.add(f"NOT bool_or(parent_span_id IS NULL AND ({roots}))",
                  *(like(pattern) for pattern in query.exclude_roots))
    rows = store.rows(
        f"SELECT trace_id FROM spans WHERE {window} GROUP BY trace_id HAVING {trace} "
        "ORDER BY max(start_ns) DESC LIMIT ?",
        [*window.parameters, *trace.parameters, query.limit])
    return [row["trace_id"] for row in rows]


def spans_of(store: TelemetryStore, trace_ids: list[str], *,
             bytes_per_trace: int = 16 * 1024 * 1024) -> TraceSpans:
    """The spans of `trace_ids`, each trace's oldest first until its spans' details
    (`SPAN_DETAIL_BYTES`, plus `SPAN_OVERHEAD_BYTES` each) would pass `bytes_per_trace`
    (its first span always comes; 16 MiB by default, the API's own default bound). A
    span whose details are larger than a span may carry (or than the trace's share)
    comes without them, saying so in `warnings`; the others' `warnings` are None.
    Counted in SQL from the stored sizes, so a trace of a million spans is not read to
    be cut."""
    if not trace_ids:
        return TraceSpans([], {})
    detail_limit = min(SPAN_DETAIL_BYTES, bytes_per_trace)
    # Each id's number (store.TRACE_KEY) first: a scan of 64-bit numbers instead of
    # strings, then the ids of the few spans it finds compared. One list parameter, not
    # one per id: DuckDB turns `IN (?, ?, ...)` into a chain of comparisons on every
    # row, `= ANY(list)` into one probe. One id (a trace opened): plain comparisons.
    wanted = ("trace_key = trace_key_of($1) AND trace_id = $1" if len(trace_ids) == 1
              else "trace_key = ANY(list_transform($1::VARCHAR[], lambda id: trace_key_of(id))) "
                   "AND trace_id = ANY($1::VARCHAR[])")
    rows = store.rows(
        "WITH sized AS (SELECT *, strlen(name) + coalesce(strlen(status_message), 0) "
        "+ coalesce(strlen(CAST(attributes AS VARCHAR)), 0) "
        "+ coalesce(strlen(CAST(resource AS VARCHAR)), 0) "
        "+ coalesce(strlen(CAST(events AS VARCHAR)), 0) "
        "+ coalesce(strlen(CAST(links AS VARCHAR)), 0) AS detail_bytes "
        f"FROM spans WHERE {wanted}), "
        "ranked AS (SELECT *, detail_bytes <= $2 AS whole, "
        "count(*) OVER (PARTITION BY trace_id) AS trace_spans, "
        "row_number() OVER in_order AS position, "
        f"sum(CASE WHEN detail_bytes <= $2 THEN detail_bytes ELSE 0 END + "
        f"{SPAN_OVERHEAD_BYTES}) OVER (in_order ROWS UNBOUNDED PRECEDING) AS running "
        "FROM sized WINDOW in_order AS (PARTITION BY trace_id ORDER BY start_ns, span_id)) "
        "SELECT trace_id, span_id, parent_span_id, service, "
        f"CASE WHEN whole THEN name ELSE left(name, {_CUT_NAME_CHARACTERS}) END AS name, "
        "kind, start_ns, duration_ns, status, "
        "CASE WHEN whole THEN status_message END AS status_message, route, http_status, "
        "user_id, db_system, CASE WHEN whole THEN db_statement END AS db_statement, "
        "CASE WHEN whole THEN attributes END AS attributes, "
        "CASE WHEN whole THEN resource END AS resource, "
        "CASE WHEN whole THEN events END AS events, "
        "CASE WHEN whole THEN links END AS links, detail_bytes, trace_spans "
        "FROM ranked WHERE position = 1 OR running <= $3 ORDER BY start_ns, span_id",
        [trace_ids[0] if len(trace_ids) == 1 else list(trace_ids), detail_limit,
         bytes_per_trace])
    counts: dict[str, int] = {}
    resources: dict[str, Any] = {}  # a service's resource is the same text on every span
    spans = []
    for row in rows:
        counts[row["trace_id"]] = int(row.pop("trace_spans"))
        detail = int(row.pop("detail_bytes"))
        text = row["resource"]
        if text is not None and text not in resources:
            resources[text] = loads(text) or {}
        row["resource"] = resources.get(text, {}) if text is not None else {}
        row["attributes"] = loads(row["attributes"]) or {}
        row["events"] = loads(row["events"]) or []
        row["links"] = loads(row["links"]) or []
        row["warnings"] = None if detail <= detail_limit else [_(
            "This span's details ({size} bytes of attributes, resource, events, links, "
            "status message and name) are more than the {limit} a span may carry in this "
            "answer: they are left out, its name cut to {characters} characters.").format(
            size=f"{detail:,}", limit=f"{detail_limit:,}", characters=_CUT_NAME_CHARACTERS)]
        spans.append(row)
    return TraceSpans(spans, counts)


#: The log records `/api/spans` gives with a trace, at most (the oldest).
LOGS_OF_A_TRACE = 2000


def logs_of(store: TelemetryStore, trace_id: str, limit: int = LOGS_OF_A_TRACE
            ) -> list[TraceLog]:
    """The trace's log records, oldest first, `limit` at most."""
    rows = store.rows("SELECT time_ns, service, severity, body, span_id, attributes "
                      "FROM logs WHERE trace_key = trace_key_of($1) AND trace_id = $1 "
                      "ORDER BY time_ns LIMIT $2", [trace_id, limit])
    for row in rows:
        row["attributes"] = loads(row["attributes"]) or {}
    return as_models(TraceLog, rows)
