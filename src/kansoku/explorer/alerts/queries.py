"""The alert rules' SQL (requests per window, gauges, counters, histograms per series)
and the alerts' states and history."""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from kansoku.explorer.alerts.models import (
    AlertRow,
    AlertState,
    AlertTexts,
    CounterSeries,
    GaugeSeries,
    HistogramPoint,
    RequestWindow,
    StateChange,
)
from kansoku.explorer.common.spans import FAILED_REQUEST, SpanKind
from kansoku.explorer.common.sql import (
    ESCAPE,
    Where,
    attribute_filter,
    counter_increase,
    like,
    loads,
)
from kansoku.explorer.metrics.models import MetricKind, Temporality
from kansoku.explorer.store import TelemetryStore, as_json
from kansoku.kit import semconv


def request_windows(store: TelemetryStore, *, start_ns: int, end_ns: int, by_route: bool,
                    quantile: float, services: list[str], exclude_services: list[str],
                    exclude_routes: list[str], min_requests: int) -> list[RequestWindow]:
    """Server spans that started in [start, end), per service (and route): requests,
    failures (error status or 5xx), the duration at `quantile` (ns), and as examples
    the slowest trace and the latest failed one. Only groups with at least
    `min_requests` requests."""
    where = Where(f"kind = '{SpanKind.SERVER}' AND start_ns >= ? AND start_ns < ?",
                  start_ns, end_ns)
    if services:
        where.add("service = ANY(?::VARCHAR[])", list(services))
    if exclude_services:
        where.add("NOT service = ANY(?::VARCHAR[])", list(exclude_services))
    for pattern in exclude_routes:
        where.add(f"coalesce(route, name) NOT LIKE ? {ESCAPE}", like(pattern))
    group = "service, coalesce(route, name)" if by_route else "service"
    route = "coalesce(route, name)" if by_route else "NULL"
    # The fault flag most of the failed requests carry (the flag marks what it breaks).
    flag = f"json_extract_string(attributes, '$.\"{semconv.FEATURE_FLAG_KEY}\"')"
    variant = f"json_extract_string(attributes, '$.\"{semconv.FEATURE_FLAG_VARIANT}\"')"
    return [RequestWindow(**row) for row in store.rows(
        f"SELECT service, {route} AS route, count(*) AS requests, "
        f"count(*) FILTER (WHERE {FAILED_REQUEST}) AS errors, "
        "quantile_cont(duration_ns, ?) AS quantile_ns, "
        "arg_max(trace_id, duration_ns) AS slowest_trace_id, "
        f"arg_max(trace_id, start_ns) FILTER (WHERE {FAILED_REQUEST}) AS failed_trace_id, "
        f"mode({flag} || '=' || coalesce({variant}, '')) "
        f"FILTER (WHERE {FAILED_REQUEST} AND {flag} IS NOT NULL) AS failed_flag "
        f"FROM spans WHERE {where} GROUP BY {group} "
        f"HAVING count(*) >= ? ORDER BY {group}",
        [quantile, *where.parameters, min_requests])]


def gauge_by_series(store: TelemetryStore, name: str, start_ns: int, end_ns: int,
                    attributes: dict[str, str] | None = None) -> list[GaugeSeries]:
    """A gauge (or up-down counter) in [start, end), per series (service and attribute
    set): its mean and its latest value; attributes as a dict."""
    extra, parameters = attribute_filter(attributes)
    rows = store.rows(
        "SELECT service, CAST(attributes AS VARCHAR) AS attributes, avg(value) AS mean, "
        "arg_max(value, time_ns) AS latest FROM metric_points "
        f"WHERE name = ? AND time_ns >= ? AND time_ns < ? AND value IS NOT NULL {extra} "
        "GROUP BY service, CAST(attributes AS VARCHAR) ORDER BY service",
        [name, start_ns, end_ns, *parameters])
    return [GaugeSeries(row["service"], loads(row["attributes"]) or {}, float(row["mean"]),
                        float(row["latest"])) for row in rows]


def increase_by_series(store: TelemetryStore, name: str, start_ns: int, end_ns: int,
                       attributes: dict[str, str] | None = None) -> list[CounterSeries]:
    """How much a counter grew in [start, end), per series (service and attribute set),
    as `common.sql.counter_increase` counts it."""
    per_series, parameters = counter_increase(name, start_ns, end_ns, attributes,
                                              end_inclusive=False)
    return [CounterSeries(row["service"], loads(row["attributes"]) or {},
                          float(row["increase"] or 0))
            for row in store.rows(f"{per_series} ORDER BY service", parameters)]


def histogram_by_series(store: TelemetryStore, name: str, start_ns: int, end_ns: int
                        ) -> list[HistogramPoint]:
    """A histogram's points per series for the window: cumulative series give their
    latest buckets inside [start, end) and their latest before it; delta series every
    point inside (`bucket_counts`, `bounds`, `temporality`; attributes as a dict)."""
    rows = store.rows(
        "SELECT service, CAST(attributes AS VARCHAR) AS attributes, temporality, "
        "bounds, bucket_counts, time_ns >= ? AS inside FROM ("
        "SELECT *, row_number() OVER (PARTITION BY service, CAST(attributes AS VARCHAR), "
        "temporality, time_ns >= ? ORDER BY time_ns DESC) AS newest FROM metric_points "
        f"WHERE name = ? AND kind = '{MetricKind.HISTOGRAM}' AND time_ns < ? "
        "AND time_ns >= ? - (? - ?)) "
        "WHERE temporality = 'delta' AND time_ns >= ? OR temporality <> 'delta' "
        "AND newest = 1", [start_ns, start_ns, name, end_ns, start_ns, end_ns, start_ns,
                           start_ns])
    return [HistogramPoint(row["service"], loads(row["attributes"]) or {},
                           Temporality(row["temporality"]), row["bounds"], row["bucket_counts"],
                           bool(row["inside"])) for row in rows]


def _texts(stored: str | None) -> AlertTexts | None:
    """An alert's texts as kept (None for a row kept before them)."""
    return AlertTexts.model_validate_json(stored) if stored else None


def alert_states(store: TelemetryStore) -> list[AlertRow]:
    """The alerts' current states, as `save_alerts` keeps them."""
    rows = store.rows(
        "SELECT fingerprint, rule, labels, state, since_ns, active_since_ns, value, "
        "summary, details, notified_state, notified_ns, texts "
        "FROM alert_states ORDER BY rule, fingerprint")
    return [AlertRow(
        row["fingerprint"], row["rule"], loads(row["labels"]) or {}, AlertState(row["state"]),
        int(row["since_ns"]), int(row["active_since_ns"]), row["value"],
        row["summary"] or "", loads(row["details"]) or {},
        AlertState(row["notified_state"]) if row["notified_state"] else None,
        row["notified_ns"], _texts(row["texts"])) for row in rows]


def alert_history(store: TelemetryStore, *, since_ns: int, rule: str | None = None,
                  service: str | None = None, limit: int = 200) -> list[StateChange]:
    """Alert state changes since `since_ns`, newest first."""
    where = Where("time_ns >= ?", since_ns)
    where.add_if(rule, "rule = ?")
    where.add_if(service, "json_extract_string(labels, '$.service') = ?")
    rows = store.rows(
        "SELECT time_ns, fingerprint, rule, labels, from_state, to_state, value, summary, "
        f"reason, texts FROM alert_history WHERE {where} "
        "ORDER BY time_ns DESC, rule LIMIT ?", [*where.parameters, limit])
    return [StateChange(
        int(row["time_ns"]), row["fingerprint"], row["rule"], loads(row["labels"]) or {},
        AlertState(row["from_state"]), AlertState(row["to_state"]), row["value"],
        row["summary"], row["reason"], _texts(row["texts"])) for row in rows]


def _json(texts: AlertTexts | None) -> str | None:
    return texts.model_dump_json(exclude_defaults=True) if texts else None


def save_alerts(store: TelemetryStore, alerts: Sequence[AlertRow],
                transitions: Sequence[StateChange]) -> None:
    """Replace the alerts' current states with `alerts` and append `transitions` to
    their history, in one transaction (a few hundred rows at most: the states are
    rewritten whole). Call it from one thread at a time."""
    def run(cursor: duckdb.DuckDBPyConnection) -> None:
        cursor.execute("DELETE FROM alert_states")
        if alerts:
            cursor.executemany(
                "INSERT INTO alert_states (fingerprint, rule, labels, state, "
                "since_ns, active_since_ns, value, summary, details, "
                "notified_state, notified_ns, texts) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [[a.fingerprint, a.rule, as_json(a.labels), a.state, a.since_ns,
                  a.active_since_ns, a.value, a.summary, as_json(a.details),
                  a.notified_state, a.notified_ns, _json(a.texts)] for a in alerts])
        if transitions:
            cursor.executemany(
                "INSERT INTO alert_history (time_ns, fingerprint, rule, labels, "
                "from_state, to_state, value, summary, reason, texts) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [[t.time_ns, t.fingerprint, t.rule, as_json(t.labels), t.from_state,
                  t.to_state, t.value, t.summary, t.reason, _json(t.texts)]
                 for t in transitions])
    store.in_transaction(run)
