"""The questions the explorer answers, as SQL over the store, and the Jaeger shapes the
Jaeger-compatible API returns. Every function runs in a worker thread."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from kansoku.explorer.store import TelemetryStore
from kansoku.kit import semconv


@dataclass(frozen=True)
class TraceQuery:
    service: str | None = None
    operation: str | None = None
    #: Attribute key -> value every matching trace has on a span. Three keys are read as
    #: Jaeger reads them: "error" ("true": a span with error status), "otel.status_code"
    #: (ERROR, OK or UNSET) and "span.kind" (server, client …).
    tags: tuple[tuple[str, str], ...] = ()
    min_duration_ns: int | None = None
    max_duration_ns: int | None = None
    start_ns: int = 0
    end_ns: int = 2**62
    limit: int = 20
    #: Patterns (* for anything) of root span names whose traces are left out, e.g.
    #: "GET */thumbnail": the storefront's images, a trace each.
    exclude_roots: tuple[str, ...] = ()


#: What one span may carry in an answer of the trace API: its name, status message,
#: attributes, resource, events and links as stored, in bytes. A span with more comes
#: without them (its name cut to `_CUT_NAME_CHARACTERS`), saying so in its warnings.
SPAN_DETAIL_BYTES = 64 * 1024
#: What a span costs an answer besides those: ids, times, kind, status and the JSON
#: around them. Measured: a kansoku server span (13 short attributes) is its stored
#: details plus about 750 bytes in Jaeger's shape, so an answer stays within its bound.
SPAN_OVERHEAD_BYTES = 800
_CUT_NAME_CHARACTERS = 200


def _loads(value: str | None) -> Any:
    return json.loads(value) if value else None


def services(store: TelemetryStore) -> list[str]:
    return [row["service"] for row in store.rows(
        "SELECT DISTINCT service FROM spans ORDER BY service")]


def operations(store: TelemetryStore, service: str) -> list[dict[str, str]]:
    return store.rows("SELECT DISTINCT name, kind FROM spans WHERE service = ? "
                      "ORDER BY name", [service])


def _attribute_path(key: str) -> str:
    """`key` as a JSON pointer (DuckDB's other path form): no character of a key needs
    quoting there, only ~ and / an escape."""
    return "/" + key.replace("~", "~0").replace("/", "~1")


#: The tag Jaeger gives a span's OpenTelemetry status (ERROR or OK; none when unset),
#: and the store's status for each of its values.
OTEL_STATUS_CODE = "otel.status_code"
_STATUS_CODES = {"ERROR": "error", "OK": "ok", "UNSET": "unset"}


def _tag_condition(key: str, value: str) -> tuple[str, list[Any]]:
    """A span condition for one searched tag, with its parameters."""
    if key == "error":
        return ("status = 'error'" if value == "true" else "status <> 'error'"), []
    if key == OTEL_STATUS_CODE:
        return "status = ?", [_STATUS_CODES.get(value.upper(), value.lower())]
    if key == "span.kind":
        return "kind = ?", [value.lower()]
    return "json_extract_string(attributes, ?) = ?", [_attribute_path(key), value]


def find_trace_ids(store: TelemetryStore, query: TraceQuery) -> list[str]:
    """The newest traces matching `query`, newest first: a span of `service` (named
    `operation`) within the duration bounds, and spans carrying each tag."""
    where = ["start_ns BETWEEN ? AND ?"]
    parameters: list[Any] = [query.start_ns, query.end_ns]
    if query.service:
        where.append("service = ?")
        parameters.append(query.service)
    if query.operation:
        where.append("name = ?")
        parameters.append(query.operation)
    if query.min_duration_ns is not None:
        where.append("duration_ns >= ?")
        parameters.append(query.min_duration_ns)
    if query.max_duration_ns is not None:
        where.append("duration_ns <= ?")
        parameters.append(query.max_duration_ns)
    for key, value in query.tags:
        tagged, tag_parameters = _tag_condition(key, value)
        where.append(f"trace_id IN (SELECT trace_id FROM spans WHERE {tagged} "
                     "AND start_ns BETWEEN ? AND ?)")
        parameters.extend([*tag_parameters, query.start_ns, query.end_ns])
    if query.exclude_roots:
        roots = " OR ".join("name LIKE ? ESCAPE '\\'" for _ in query.exclude_roots)
        where.append("trace_id NOT IN (SELECT trace_id FROM spans WHERE parent_span_id IS "
                     f"NULL AND ({roots}) AND start_ns BETWEEN ? AND ?)")
        parameters.extend([*(_like(pattern) for pattern in query.exclude_roots),
                           query.start_ns, query.end_ns])
    rows = store.rows(
        f"SELECT trace_id FROM spans WHERE {' AND '.join(where)} "
        "GROUP BY trace_id ORDER BY max(start_ns) DESC LIMIT ?", [*parameters, query.limit])
    return [row["trace_id"] for row in rows]


@dataclass(frozen=True)
class TraceSpans:
    """Spans of some traces, oldest first, as many as an answer's bound let in; and how
    many spans each of those traces has in the store."""

    spans: list[dict[str, Any]]
    span_counts: dict[str, int]

    def cut_warning(self, trace_id: str, kept: int, bound: str) -> str | None:
        """What to tell about a trace of which `kept` spans are in the answer, if that
        is not all of them (`bound` says which bound cut it)."""
        total = self.span_counts.get(trace_id, kept)
        if total <= kept:
            return None
        return (f"This answer holds the first {kept:,} of the trace's {total:,} spans"
                f"{': ' if bound else ''}{bound}.")


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
    # One list parameter, not one per id: DuckDB turns `IN (?, ?, ...)` into a chain of
    # comparisons on every row, `= ANY(list)` into one probe — 20 ids in a third the time.
    rows = store.rows(
        "WITH sized AS (SELECT *, strlen(name) + coalesce(strlen(status_message), 0) "
        "+ coalesce(strlen(CAST(attributes AS VARCHAR)), 0) "
        "+ coalesce(strlen(CAST(resource AS VARCHAR)), 0) "
        "+ coalesce(strlen(CAST(events AS VARCHAR)), 0) "
        "+ coalesce(strlen(CAST(links AS VARCHAR)), 0) AS detail_bytes "
        "FROM spans WHERE trace_id = ANY(?::VARCHAR[])), "
        "ranked AS (SELECT *, detail_bytes <= ? AS whole, "
        "count(*) OVER (PARTITION BY trace_id) AS trace_spans, "
        "row_number() OVER in_order AS position, "
        f"sum(CASE WHEN detail_bytes <= ? THEN detail_bytes ELSE 0 END + "
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
        "FROM ranked WHERE position = 1 OR running <= ? ORDER BY start_ns, span_id",
        [list(trace_ids), detail_limit, detail_limit, bytes_per_trace])
    counts: dict[str, int] = {}
    resources: dict[str, Any] = {}  # a service's resource is the same text on every span
    spans = []
    for row in rows:
        counts[row["trace_id"]] = int(row.pop("trace_spans"))
        detail = int(row.pop("detail_bytes"))
        text = row["resource"]
        if text is not None and text not in resources:
            resources[text] = _loads(text) or {}
        row["resource"] = resources.get(text, {}) if text is not None else {}
        row["attributes"] = _loads(row["attributes"]) or {}
        row["events"] = _loads(row["events"]) or []
        row["links"] = _loads(row["links"]) or []
        row["warnings"] = None if detail <= detail_limit else [
            f"This span's details ({detail:,} bytes of attributes, resource, events, "
            f"links, status message and name) are more than the {detail_limit:,} a span "
            f"may carry in this answer: they are left out, its name cut to "
            f"{_CUT_NAME_CHARACTERS} characters."]
        spans.append(row)
    return TraceSpans(spans, counts)


#: The log records `/api/spans` gives with a trace, at most (the oldest).
LOGS_OF_A_TRACE = 2000


def logs_of(store: TelemetryStore, trace_id: str, limit: int = LOGS_OF_A_TRACE
            ) -> list[dict[str, Any]]:
    """The trace's log records, oldest first, `limit` at most."""
    rows = store.rows("SELECT time_ns, service, severity, body, span_id, attributes "
                      "FROM logs WHERE trace_id = ? ORDER BY time_ns LIMIT ?",
                      [trace_id, limit])
    for row in rows:
        row["attributes"] = _loads(row["attributes"]) or {}
    return rows


# --- Jaeger's shapes ------------------------------------------------------------------


def _tag(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        kind = "bool"
    elif isinstance(value, int):
        kind = "int64"
    elif isinstance(value, float):
        kind = "float64"
    else:
        kind, value = "string", value if isinstance(value, str) else json.dumps(value)
    return {"key": key, "type": kind, "value": value}


def jaeger_traces(found: TraceSpans, trace_ids: list[str], *, bound: str = ""
                  ) -> list[dict[str, Any]]:
    """`found` grouped into traces in the order of `trace_ids`, in the JSON Jaeger's
    query service returns. A trace cut by its answer's bound says so in its
    `warnings`, as Jaeger does with a trace past its `max_trace_size` (`bound` says
    which bound); so does a span that came without its details."""
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for span in found.spans:
        grouped[span["trace_id"]].append(span)
    traces = []
    for trace_id in trace_ids:
        members = grouped.get(trace_id)
        if not members:
            continue
        processes: dict[str, dict[str, Any]] = {}
        process_of: dict[str, str] = {}
        jaeger_spans = []
        for span in members:
            service = span["service"]
            if service not in process_of:
                process_of[service] = f"p{len(process_of) + 1}"
                processes[process_of[service]] = {"serviceName": service, "tags": []}
            process = processes[process_of[service]]
            if not process["tags"] and span["resource"]:
                process["tags"] = [_tag(k, v) for k, v in span["resource"].items()]
            tags = [_tag(k, v) for k, v in span["attributes"].items()]
            tags.append(_tag("span.kind", span["kind"]))
            # As Jaeger translates OpenTelemetry's status: `otel.status_code` ERROR or
            # OK (nothing when unset), `error` = true on an error.
            if span["status"] in ("error", "ok"):
                tags.append(_tag(OTEL_STATUS_CODE, span["status"].upper()))
            if span["status"] == "error":
                tags.append(_tag("error", True))
            if span["status_message"]:
                tags.append(_tag("otel.status_description", span["status_message"]))
            jaeger_spans.append({
                "traceID": trace_id, "spanID": span["span_id"], "flags": 1,
                "operationName": span["name"],
                "references": ([{"refType": "CHILD_OF", "traceID": trace_id,
                                 "spanID": span["parent_span_id"]}]
                               if span["parent_span_id"] else []),
                "startTime": span["start_ns"] // 1000,
                "duration": span["duration_ns"] // 1000,
                "tags": tags,
                "logs": [{"timestamp": event["time_ns"] // 1000,
                          "fields": [_tag("event", event["name"]),
                                     *(_tag(k, v) for k, v in event["attributes"].items())]}
                         for event in span["events"]],
                "processID": process_of[service], "warnings": span["warnings"],
            })
        cut = found.cut_warning(trace_id, len(members), bound)
        traces.append({"traceID": trace_id, "spans": jaeger_spans, "processes": processes,
                       "warnings": [cut] if cut else None})
    return traces


# --- service map and RED --------------------------------------------------------------


def dependencies(store: TelemetryStore, start_ns: int, end_ns: int) -> list[dict[str, Any]]:
    """Calls between services (a span whose parent is another service's), with rate,
    errors and latency; plus each service's calls to databases and caches."""
    between = store.rows(
        "SELECT p.service AS parent, c.service AS child, count(*) AS calls, "
        "sum(CASE WHEN c.status = 'error' THEN 1 ELSE 0 END) AS errors, "
        "avg(c.duration_ns) / 1e6 AS mean_ms, "
        "max(CASE WHEN c.kind = 'consumer' THEN 1 ELSE 0 END) AS messaging "
        "FROM spans c JOIN spans p ON c.trace_id = p.trace_id "
        "AND c.parent_span_id = p.span_id "
        "WHERE c.service <> p.service AND c.start_ns BETWEEN ? AND ? "
        "GROUP BY 1, 2 ORDER BY 1, 2", [start_ns, end_ns])
    stores = store.rows(
        "SELECT service AS parent, db_system AS child, count(*) AS calls, "
        "sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS errors, "
        "avg(duration_ns) / 1e6 AS mean_ms, 0 AS messaging FROM spans "
        "WHERE db_system IS NOT NULL AND start_ns BETWEEN ? AND ? "
        "GROUP BY 1, 2 ORDER BY 1, 2", [start_ns, end_ns])
    for edge in stores:
        edge["kind"] = "database"
    for edge in between:
        edge["kind"] = "messaging" if edge.pop("messaging") else "http"
    for edge in stores:
        edge.pop("messaging")
    return between + stores


def red(store: TelemetryStore, start_ns: int, end_ns: int, service: str | None = None,
        by_route: bool = False) -> list[dict[str, Any]]:
    """Rate, errors and duration of server spans per service (and route)."""
    group = "service, coalesce(route, name)" if by_route else "service"
    where = "kind IN ('server', 'consumer') AND start_ns BETWEEN ? AND ?"
    parameters: list[Any] = [start_ns, end_ns]
    if service:
        where += " AND service = ?"
        parameters.append(service)
    seconds = max((end_ns - start_ns) / 1e9, 1e-9)
    columns = "service, coalesce(route, name) AS route" if by_route else "service"
    rows = store.rows(
        f"SELECT {columns}, count(*) AS requests, "
        "sum(CASE WHEN status = 'error' OR http_status >= 500 THEN 1 ELSE 0 END) AS errors, "
        "quantile_cont(duration_ns, [0.5, 0.9, 0.95, 0.99]) AS quantiles "
        f"FROM spans WHERE {where} GROUP BY {group} ORDER BY {group}", parameters)
    for row in rows:
        p50, p90, p95, p99 = (value / 1e6 for value in row.pop("quantiles"))
        row.update(rate_per_second=row["requests"] / seconds,
                   error_percent=100.0 * row["errors"] / row["requests"],
                   p50_ms=p50, p90_ms=p90, p95_ms=p95, p99_ms=p99)
    return rows


def red_series(store: TelemetryStore, start_ns: int, end_ns: int, step_ns: int,
               service: str, route: str | None = None) -> list[dict[str, Any]]:
    """Requests, errors and p95 of one service (or route) per time step, for charts."""
    where = "kind IN ('server', 'consumer') AND service = ? AND start_ns BETWEEN ? AND ?"
    parameters: list[Any] = [service, start_ns, end_ns]
    if route:
        where += " AND coalesce(route, name) = ?"
        parameters.append(route)
    step = int(step_ns)  # an int, so safe to write into the statement
    return store.rows(
        f"SELECT (start_ns // {step}) * {step} AS time_ns, count(*) AS requests, "
        "sum(CASE WHEN status = 'error' OR http_status >= 500 THEN 1 ELSE 0 END) AS errors, "
        "quantile_cont(duration_ns, 0.95) / 1e6 AS p95_ms "
        f"FROM spans WHERE {where} GROUP BY 1 ORDER BY 1", parameters)


def search_logs(store: TelemetryStore, *, start_ns: int, end_ns: int, service: str | None,
                min_severity: int | None, text: str | None, trace_id: str | None,
                limit: int) -> list[dict[str, Any]]:
    where = ["time_ns BETWEEN ? AND ?"]
    parameters: list[Any] = [start_ns, end_ns]
    if service:
        where.append("service = ?")
        parameters.append(service)
    if min_severity:
        where.append("severity_number >= ?")
        parameters.append(min_severity)
    if text:
        where.append("body ILIKE ?")
        parameters.append("%" + text.replace("\\", "\\\\").replace("%", "\\%")
                          .replace("_", "\\_") + "%")
    if trace_id:
        where.append("trace_id = ?")
        parameters.append(trace_id.lower())
    rows = store.rows(
        "SELECT time_ns, service, severity_number, severity, body, trace_id, span_id, "
        f"attributes FROM logs WHERE {' AND '.join(where)} "
        "ORDER BY time_ns DESC LIMIT ?", [*parameters, limit])
    for row in rows:
        row["attributes"] = _loads(row["attributes"]) or {}
    return rows


# --- metrics --------------------------------------------------------------------------

#: How a metric's value per step is found: counters (and histogram counts) by their
#: increase, anything else by its average.
_CUMULATIVE_KINDS = ("sum", "histogram", "exponential_histogram", "summary")


def metric_names(store: TelemetryStore, start_ns: int, end_ns: int) -> list[dict[str, Any]]:
    return store.rows(
        "SELECT name, kind, any_value(unit) AS unit, list(DISTINCT service) AS services "
        "FROM metric_points WHERE time_ns BETWEEN ? AND ? GROUP BY name, kind ORDER BY name",
        [start_ns, end_ns])


def _step_of(start: int, step: int) -> str:
    """SQL: the start of the step a point's time falls in. Steps are counted from the
    start of the range, so a range a whole number of steps long ends with a whole step
    (ending now, for a range that ends now) rather than a part of one."""
    return f"({start} + ((time_ns - {start}) // {step}) * {step})"


def _increase_sql(value: str, start: int, step: int, extra_where: str) -> str:
    """Per step and series, how much a cumulative value grew since the step before (or,
    in the first step, since the last value before the window; 0 for a series that
    began inside it); a counter reset counts as no growth; delta points are summed.
    Parameters: name, start, end, the extra ones; name, start, the extra ones again."""
    return (
        f"WITH per AS (SELECT service, attributes, temporality, {_step_of(start, step)} "
        f"AS t, max({value}) AS latest, sum({value}) AS total FROM metric_points "
        f"WHERE name = ? AND time_ns BETWEEN ? AND ? {extra_where} "
        "GROUP BY service, attributes, temporality, t), "
        f"base AS (SELECT service, attributes, arg_max({value}, time_ns) AS before "
        f"FROM metric_points WHERE name = ? AND time_ns < ? {extra_where} "
        "GROUP BY service, attributes), "
        "lagged AS (SELECT per.*, coalesce(lag(latest) OVER (PARTITION BY per.service, "
        "per.attributes ORDER BY t), base.before, 0) AS previous FROM per "
        "LEFT JOIN base ON base.service = per.service "
        "AND CAST(base.attributes AS VARCHAR) IS NOT DISTINCT FROM "
        "CAST(per.attributes AS VARCHAR)), "
        "steps AS (SELECT service, attributes, t, CASE WHEN temporality = 'delta' "
        "THEN total ELSE greatest(latest - previous, 0) END AS increase FROM lagged) ")


def metric_series(store: TelemetryStore, name: str, service: str | None, start_ns: int,
                  end_ns: int, step_ns: int, by: str | None = None) -> list[dict[str, Any]]:
    """`name` per step and service (see `_CUMULATIVE_KINDS`), and with `by` (an
    attribute key) per value of that attribute too, as `attribute` (e.g. revenue per
    currency). `time_ns` is the start of each step; steps are counted from `start_ns`."""
    kinds = store.rows("SELECT DISTINCT kind FROM metric_points WHERE name = ?", [name])
    kind = kinds[0]["kind"] if kinds else "gauge"
    extra, extra_parameters = "", []
    if service:
        extra, extra_parameters = "AND service = ?", [service]
    # An int, so safe to write into the statement; the attribute's path is a parameter.
    start, step = int(start_ns), int(step_ns)
    attribute = "json_extract_string(attributes, ?)" if by else "NULL"
    by_parameters = [_attribute_path(by)] if by else []
    if kind in _CUMULATIVE_KINDS:
        value = "value" if kind == "sum" else "count"
        return store.rows(
            _increase_sql(value, start, step, extra)
            + f"SELECT service, {attribute} AS attribute, t AS time_ns, "
            "sum(increase) AS value FROM steps GROUP BY service, attribute, t "
            "ORDER BY t, service, attribute",
            [name, start_ns, end_ns, *extra_parameters, name, start_ns, *extra_parameters,
             *by_parameters])
    return store.rows(
        f"SELECT service, {attribute} AS attribute, {_step_of(start, step)} AS time_ns, "
        f"avg(value) AS value FROM metric_points WHERE name = ? AND time_ns BETWEEN ? AND ? "
        f"{extra} GROUP BY 1, 2, 3 ORDER BY 3, 1, 2",
        [*by_parameters, name, start_ns, end_ns, *extra_parameters])


def metric_increase(store: TelemetryStore, name: str, start_ns: int, end_ns: int,
                    attributes: dict[str, str] | None = None) -> float:
    """How much a counter grew over the window, across services, optionally only its
    series with the given attribute values. A cumulative series grew by its last value
    in the window minus its last value before it (0 for a series that began inside the
    window: its whole count happened there); delta points are summed."""
    extra, parameters = "", [name, end_ns]
    for key, value in (attributes or {}).items():
        extra += " AND json_extract_string(attributes, ?) = ?"
        parameters += [_attribute_path(key), value]
    rows = store.rows(
        "SELECT coalesce(sum(CASE WHEN temporality = 'delta' THEN inside ELSE "
        "greatest(last_inside - coalesce(last_before, 0), 0) END), 0) AS total FROM ("
        "SELECT service, attributes, temporality, "
        f"sum(value) FILTER (WHERE time_ns >= {int(start_ns)}) AS inside, "
        f"arg_max(value, time_ns) FILTER (WHERE time_ns >= {int(start_ns)}) AS last_inside, "
        f"arg_max(value, time_ns) FILTER (WHERE time_ns < {int(start_ns)}) AS last_before "
        f"FROM metric_points WHERE name = ? AND time_ns <= ? {extra} "
        "GROUP BY service, attributes, temporality) WHERE last_inside IS NOT NULL",
        parameters)
    return float(rows[0]["total"])


# --- the browser (real-user monitoring) -----------------------------------------------

#: What the storefront's script reports arrives as log records with these event names
#: (attribute `event.name`), from service `storefront-web`:
#: a Web Vital: `web_vital.name` (LCP, INP, CLS, FCP, TTFB), `web_vital.value` (ms; CLS
#: unitless), `url.path`; a JavaScript error: `exception.type`, `exception.message`,
#: `url.path`.
WEB_VITAL_EVENT = semconv.EVENT_WEB_VITAL
BROWSER_ERROR_EVENT = semconv.EVENT_ERROR

#: web-vitals' thresholds: (good up to, poor above), as the intake rates them.
VITAL_THRESHOLDS = semconv.VITAL_THRESHOLDS


def rating(name: str, value: float) -> str:
    good, poor = VITAL_THRESHOLDS.get(name, (float("inf"), float("inf")))
    return "good" if value <= good else "poor" if value > poor else "needs-improvement"


def web_vitals(store: TelemetryStore, start_ns: int, end_ns: int) -> list[dict[str, Any]]:
    """Each page's Web Vitals at the 75th percentile (how web-vitals judges a page), with
    how many measurements and the rating."""
    rows = store.rows(
        "SELECT json_extract_string(attributes, '$.\"url.path\"') AS page, "
        "json_extract_string(attributes, '$.\"web_vital.name\"') AS name, "
        "quantile_cont(CAST(json_extract(attributes, '$.\"web_vital.value\"') AS DOUBLE), "
        "0.75) AS p75, count(*) AS samples FROM logs "
        "WHERE time_ns BETWEEN ? AND ? "
        "AND json_extract_string(attributes, '$.\"event.name\"') = ? "
        "GROUP BY 1, 2 ORDER BY 1, 2", [start_ns, end_ns, WEB_VITAL_EVENT])
    for row in rows:
        row["rating"] = rating(row["name"] or "", float(row["p75"] or 0))
    return rows


def browser_errors(store: TelemetryStore, start_ns: int, end_ns: int) -> list[dict[str, Any]]:
    """JavaScript errors by message and page, most frequent first."""
    return store.rows(
        "SELECT json_extract_string(attributes, '$.\"exception.message\"') AS message, "
        "json_extract_string(attributes, '$.\"url.path\"') AS page, count(*) AS count, "
        "max(time_ns) AS last_seen_ns, arg_max(trace_id, time_ns) AS trace_id FROM logs "
        "WHERE time_ns BETWEEN ? AND ? "
        "AND json_extract_string(attributes, '$.\"event.name\"') = ? "
        "GROUP BY 1, 2 ORDER BY count DESC LIMIT 50", [start_ns, end_ns, BROWSER_ERROR_EVENT])


# --- problem detection (explorer/problems.py) -----------------------------------------

#: The columns the detection rules read, in the order of `problems.Span`'s fields (rows
#: become spans positionally: dicts would cost more than the rules themselves).
DETECTION_COLUMNS = ("trace_id", "span_id", "parent_span_id", "service", "name", "kind",
                     "start_ns", "duration_ns", "status", "route", "http_status", "db_system",
                     "db_statement", "peer_service", "url")
#: ... the last one being a client span's URL, from its attributes, to group calls by route.
_DETECTION_FIELDS = (
    ", ".join(DETECTION_COLUMNS[:-1]) + ", CASE WHEN kind = 'client' THEN "
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
                      end_ns: int, min_requests: int) -> list[dict[str, Any]]:
    """For each operation (server and consumer spans of one service with one name, e.g.
    'GET /products', and its route): requests, errors (error status or 5xx), p95 and
    mean duration in the recent window [recent_start, end] and in the baseline
    [baseline_start, recent_start); the slowest recent span and the latest recent
    failure as examples. Only operations with at least `min_requests` recent requests."""
    failed = "(status = 'error' OR coalesce(http_status, 0) >= 500)"
    return store.rows(
        "WITH w AS (SELECT service, name AS operation, route, trace_id, span_id, "
        f"duration_ns, start_ns, {failed} AS failed, start_ns >= ? AS recent FROM spans "
        "WHERE kind IN ('server', 'consumer') AND start_ns >= ? AND start_ns <= ?) "
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
        "arg_max(span_id, start_ns) FILTER (WHERE recent AND failed) AS error_span_id "
        "FROM w GROUP BY service, operation "
        "HAVING count(*) FILTER (WHERE recent) >= ? ORDER BY service, operation",
        [recent_start_ns, baseline_start_ns, end_ns, min_requests])


_PROBLEM_FIELDS = ("p.fingerprint, p.kind, p.service, p.operation, p.target, p.first_seen_ns, "
                   "p.last_seen_ns, p.occurrences, p.impact, p.impact_unit, "
                   "p.example_trace_id, p.details")


def problems(store: TelemetryStore, *, since_ns: int, service: str | None = None,
             kind: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Problems seen since `since_ns`, the most recently seen first."""
    where = ["p.last_seen_ns >= ?"]
    parameters: list[Any] = [since_ns]
    if service:
        where.append("p.service = ?")
        parameters.append(service)
    if kind:
        where.append("p.kind = ?")
        parameters.append(kind)
    rows = store.rows(
        f"SELECT {_PROBLEM_FIELDS} FROM problems p WHERE {' AND '.join(where)} "
        "ORDER BY p.last_seen_ns DESC, p.fingerprint LIMIT ?", [*parameters, limit])
    for row in rows:
        row["details"] = _loads(row["details"]) or {}
    return rows


def problems_of_trace(store: TelemetryStore, trace_id: str) -> list[dict[str, Any]]:
    """The problems that occurred in one trace, each with that occurrence's spans, its
    impact and evidence (in place of the problem's totals)."""
    rows = store.rows(
        f"SELECT {_PROBLEM_FIELDS}, o.span_ids, o.impact AS occurrence_impact, "
        "o.details AS occurrence_details FROM problem_occurrences o "
        "JOIN problems p ON p.fingerprint = o.fingerprint WHERE o.trace_id = ? "
        "ORDER BY o.time_ns", [trace_id])
    for row in rows:
        row["impact"] = row.pop("occurrence_impact")
        row["details"] = _loads(row.pop("occurrence_details")) or {}
        row["occurrences"] = 1
    return rows


# --- alerts and SLOs (explorer/alerts.py, explorer/slos.py) ----------------------------

#: A request failed: error status, or an HTTP status of 500 or more.
_FAILED = "(status = 'error' OR coalesce(http_status, 0) >= 500)"


def _like(pattern: str) -> str:
    """A pattern with * for anything as a LIKE pattern (escape: backslash)."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


def request_windows(store: TelemetryStore, *, start_ns: int, end_ns: int, by_route: bool,
                    quantile: float, services: list[str], exclude_services: list[str],
                    exclude_routes: list[str], min_requests: int) -> list[dict[str, Any]]:
    """Server spans that started in [start, end), per service (and route): requests,
    failures (error status or 5xx), the duration at `quantile` (ns), and as examples
    the slowest trace and the latest failed one. Only groups with at least
    `min_requests` requests."""
    where = ["kind = 'server'", "start_ns >= ?", "start_ns < ?"]
    parameters: list[Any] = [start_ns, end_ns]
    if services:
        where.append("service = ANY(?::VARCHAR[])")
        parameters.append(list(services))
    if exclude_services:
        where.append("NOT service = ANY(?::VARCHAR[])")
        parameters.append(list(exclude_services))
    for pattern in exclude_routes:
        where.append("coalesce(route, name) NOT LIKE ? ESCAPE '\\'")
        parameters.append(_like(pattern))
    group = "service, coalesce(route, name)" if by_route else "service"
    route = "coalesce(route, name)" if by_route else "NULL"
    return store.rows(
        f"SELECT service, {route} AS route, count(*) AS requests, "
        f"count(*) FILTER (WHERE {_FAILED}) AS errors, "
        "quantile_cont(duration_ns, ?) AS quantile_ns, "
        "arg_max(trace_id, duration_ns) AS slowest_trace_id, "
        f"arg_max(trace_id, start_ns) FILTER (WHERE {_FAILED}) AS failed_trace_id "
        f"FROM spans WHERE {' AND '.join(where)} GROUP BY {group} "
        f"HAVING count(*) >= ? ORDER BY {group}",
        [quantile, *parameters, min_requests])


def _attribute_filter(attributes: dict[str, str] | None) -> tuple[str, list[Any]]:
    extra, parameters = "", []
    for key, value in (attributes or {}).items():
        extra += " AND json_extract_string(attributes, ?) = ?"
        parameters += [_attribute_path(key), value]
    return extra, parameters


def gauge_by_series(store: TelemetryStore, name: str, start_ns: int, end_ns: int,
                    attributes: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """A gauge (or up-down counter) in [start, end), per series (service and attribute
    set): its mean and its latest value; attributes as a dict."""
    extra, parameters = _attribute_filter(attributes)
    rows = store.rows(
        "SELECT service, CAST(attributes AS VARCHAR) AS attributes, avg(value) AS mean, "
        "arg_max(value, time_ns) AS latest FROM metric_points "
        f"WHERE name = ? AND time_ns >= ? AND time_ns < ? AND value IS NOT NULL {extra} "
        "GROUP BY service, CAST(attributes AS VARCHAR) ORDER BY service",
        [name, start_ns, end_ns, *parameters])
    for row in rows:
        row["attributes"] = _loads(row["attributes"]) or {}
    return rows


def increase_by_series(store: TelemetryStore, name: str, start_ns: int, end_ns: int,
                       attributes: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """How much a counter grew in [start, end), per series (service and attribute set),
    as `metric_increase` counts it; attributes as a dict."""
    extra, parameters = _attribute_filter(attributes)
    rows = store.rows(
        "SELECT service, attributes, CASE WHEN temporality = 'delta' THEN inside ELSE "
        "greatest(last_inside - coalesce(last_before, 0), 0) END AS increase FROM ("
        "SELECT service, CAST(attributes AS VARCHAR) AS attributes, temporality, "
        "sum(value) FILTER (WHERE time_ns >= ?) AS inside, "
        "arg_max(value, time_ns) FILTER (WHERE time_ns >= ?) AS last_inside, "
        "arg_max(value, time_ns) FILTER (WHERE time_ns < ?) AS last_before "
        f"FROM metric_points WHERE name = ? AND time_ns < ? {extra} "
        "GROUP BY service, CAST(attributes AS VARCHAR), temporality) "
        "WHERE last_inside IS NOT NULL ORDER BY service",
        [start_ns, start_ns, start_ns, name, end_ns, *parameters])
    for row in rows:
        row["attributes"] = _loads(row["attributes"]) or {}
    return rows


def histogram_by_series(store: TelemetryStore, name: str, start_ns: int, end_ns: int
                        ) -> list[dict[str, Any]]:
    """A histogram's points per series for the window: cumulative series give their
    latest buckets inside [start, end) and their latest before it; delta series every
    point inside (`bucket_counts`, `bounds`, `temporality`; attributes as a dict)."""
    rows = store.rows(
        "SELECT service, CAST(attributes AS VARCHAR) AS attributes, temporality, "
        "bounds, bucket_counts, time_ns >= ? AS inside FROM ("
        "SELECT *, row_number() OVER (PARTITION BY service, CAST(attributes AS VARCHAR), "
        "temporality, time_ns >= ? ORDER BY time_ns DESC) AS newest FROM metric_points "
        "WHERE name = ? AND kind = 'histogram' AND time_ns < ? "
        "AND time_ns >= ? - (? - ?)) "
        "WHERE temporality = 'delta' AND time_ns >= ? OR temporality <> 'delta' "
        "AND newest = 1", [start_ns, start_ns, name, end_ns, start_ns, end_ns, start_ns,
                           start_ns])
    for row in rows:
        row["attributes"] = _loads(row["attributes"]) or {}
    return rows


def slo_counts(store: TelemetryStore, *, service: str, operations: list[str],
               threshold_ns: int | None, start_ns: int, end_ns: int) -> tuple[int, int]:
    """(requests, bad requests) of a journey in [start, end): bad = failed, or (with
    `threshold_ns`) slower than it."""
    bad = f"duration_ns > {int(threshold_ns)}" if threshold_ns else _FAILED
    rows = store.rows(
        f"SELECT count(*) AS total, count(*) FILTER (WHERE {bad}) AS bad FROM spans "
        "WHERE kind = 'server' AND service = ? AND name = ANY(?::VARCHAR[]) "
        "AND start_ns >= ? AND start_ns < ?", [service, list(operations), start_ns, end_ns])
    return int(rows[0]["total"]), int(rows[0]["bad"])


def slo_steps(store: TelemetryStore, *, service: str, operations: list[str],
              threshold_ns: int | None, start_ns: int, end_ns: int, step_ns: int
              ) -> list[dict[str, Any]]:
    """`slo_counts` per time step (`time_ns`, `total`, `bad`), oldest first; steps
    without requests are left out."""
    bad = f"duration_ns > {int(threshold_ns)}" if threshold_ns else _FAILED
    step = int(step_ns)
    return store.rows(
        f"SELECT (start_ns // {step}) * {step} AS time_ns, count(*) AS total, "
        f"count(*) FILTER (WHERE {bad}) AS bad FROM spans "
        "WHERE kind = 'server' AND service = ? AND name = ANY(?::VARCHAR[]) "
        "AND start_ns >= ? AND start_ns < ? GROUP BY 1 ORDER BY 1",
        [service, list(operations), start_ns, end_ns])


def alert_states(store: TelemetryStore) -> list[dict[str, Any]]:
    """The alerts' current states, as `TelemetryStore.save_alerts` keeps them."""
    rows = store.rows(
        "SELECT fingerprint, rule, labels, state, since_ns, active_since_ns, value, "
        "summary, details, notified_state, notified_ns FROM alert_states "
        "ORDER BY rule, fingerprint")
    for row in rows:
        row["labels"] = _loads(row["labels"]) or {}
        row["details"] = _loads(row["details"]) or {}
    return rows


def alert_history(store: TelemetryStore, *, since_ns: int, rule: str | None = None,
                  service: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Alert state changes since `since_ns`, newest first."""
    where, parameters = ["time_ns >= ?"], list[Any]([since_ns])
    if rule:
        where.append("rule = ?")
        parameters.append(rule)
    if service:
        where.append("json_extract_string(labels, '$.service') = ?")
        parameters.append(service)
    rows = store.rows(
        "SELECT time_ns, fingerprint, rule, labels, from_state, to_state, value, summary, "
        f"reason FROM alert_history WHERE {' AND '.join(where)} "
        "ORDER BY time_ns DESC, rule LIMIT ?", [*parameters, limit])
    for row in rows:
        row["labels"] = _loads(row["labels"]) or {}
    return rows
