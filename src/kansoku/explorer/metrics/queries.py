"""The metrics' SQL: RED from the server spans, the metrics that arrived and their
series per step by instrument (a counter's rate, a gauge's value, a histogram's
percentiles), a counter's increase."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, assert_never

from kansoku.explorer.common.spans import FAILED_REQUEST, HANDLED_REQUEST
from kansoku.explorer.common.sql import (
    Where,
    as_models,
    attribute_path,
    counter_increase,
)
from kansoku.explorer.metrics.models import (
    PERCENTILES,
    Instrument,
    MetricKind,
    MetricName,
    MetricPoint,
    MetricSeries,
    Red,
    RedPoint,
    Statistic,
    instrument_of,
)
from kansoku.explorer.store import TelemetryStore


def _covered_seconds(store: TelemetryStore, start_ns: int, end_ns: int) -> float:
    """The seconds of [start, end] the explorer holds spans for: all of them, unless its
    earliest span is younger than `start_ns` (it started, or retention dropped the rest,
    within the range) — then from that span on, so a rate is not diluted by time the
    explorer did not watch."""
    rows = store.rows("SELECT min(start_ns) AS earliest FROM spans")
    earliest = rows[0]["earliest"] if rows else None
    since = max(start_ns, int(earliest)) if earliest is not None else start_ns
    return max((end_ns - since) / 1e9, 1.0)


def red(store: TelemetryStore, start_ns: int, end_ns: int, service: str | None = None,
        by_route: bool = False) -> list[Red]:
    """Rate, errors and duration of server spans per service (and route)."""
    group = "service, coalesce(route, name)" if by_route else "service"
    where = Where(f"{HANDLED_REQUEST} AND start_ns BETWEEN ? AND ?", start_ns, end_ns)
    where.add_if(service, "service = ?")
    seconds = _covered_seconds(store, start_ns, end_ns)
    columns = "service, coalesce(route, name) AS route" if by_route else "service"
    rows = store.rows(
        f"SELECT {columns}, count(*) AS requests, "
        f"count(*) FILTER (WHERE {FAILED_REQUEST}) AS errors, "
        "quantile_cont(duration_ns, [0.5, 0.9, 0.95, 0.99]) AS quantiles "
        f"FROM spans WHERE {where} GROUP BY {group} ORDER BY {group}", where.parameters)
    for row in rows:
        p50, p90, p95, p99 = (value / 1e6 for value in row.pop("quantiles"))
        row.update(rate_per_second=row["requests"] / seconds, seconds=seconds,
                   error_percent=100.0 * row["errors"] / row["requests"],
                   p50_ms=p50, p90_ms=p90, p95_ms=p95, p99_ms=p99)
    return as_models(Red, rows)


def red_series(store: TelemetryStore, start_ns: int, end_ns: int, step_ns: int,
               service: str | None = None, route: str | None = None) -> list[RedPoint]:
    """Requests per second, error % and p50/p95/p99 per time step, of one service (or
    one of its routes), or of every service; steps count from `start_ns`."""
    where = Where(f"{HANDLED_REQUEST} AND start_ns BETWEEN ? AND ?", start_ns, end_ns)
    where.add_if(service, "service = ?")
    where.add_if(route, "coalesce(route, name) = ?")
    start, step = int(start_ns), int(step_ns)  # ints, so safe to write into the statement
    rows = store.rows(
        f"SELECT service, ({start} + ((start_ns - {start}) // {step}) * {step}) AS time_ns, "
        f"count(*) AS requests, count(*) FILTER (WHERE {FAILED_REQUEST}) AS errors, "
        "quantile_cont(duration_ns, [0.5, 0.95, 0.99]) AS quantiles "
        f"FROM spans WHERE {where} GROUP BY 1, 2 ORDER BY 2, 1", where.parameters)
    for row in rows:
        p50, p95, p99 = (value / 1e6 for value in row.pop("quantiles"))
        row.update(rate_per_second=row["requests"] / (step / 1e9),
                   error_percent=100.0 * row["errors"] / row["requests"],
                   p50_ms=p50, p95_ms=p95, p99_ms=p99)
    return as_models(RedPoint, rows)


def metric_names(store: TelemetryStore, start_ns: int, end_ns: int) -> list[MetricName]:
    """Every metric that arrived in [start, end]: its kind, instrument, unit and
    senders."""
    rows = store.rows(
        "SELECT name, kind, bool_or(coalesce(monotonic, false)) AS monotonic, "
        "any_value(unit) AS unit, list(DISTINCT service ORDER BY service) AS services "
        "FROM metric_points WHERE time_ns BETWEEN ? AND ? GROUP BY name, kind ORDER BY name",
        [start_ns, end_ns])
    for row in rows:
        row["instrument"] = instrument_of(MetricKind(row["kind"]), row.pop("monotonic"))
    return as_models(MetricName, rows)


def _step_of(start: int, step: int, column: str = "time_ns") -> str:
    """SQL: the start of the step a point's time falls in. Steps are counted from the
    start of the range, so a range a whole number of steps long ends with a whole step
    (ending now, for a range that ends now) rather than a part of one."""
    return f"({start} + (({column} - {start}) // {step}) * {step})"


#: How far before a chart's window a cumulative series' last point is looked for: its
#: first step in the window grows from that point. A series silent for longer (its
#: process was stopped) counts its first point in the window in full, as one that began
#: there — as a restarted process's counter did.
_LOOKBEHIND_NS = 30 * 60 * 1_000_000_000
#: SQL: a point's attributes as text, its series' name beside its service and temporality
#: ('{}' for none: a key to join on and group by, which NULL is not).
_SERIES = "coalesce(CAST(attributes AS VARCHAR), '{}')"
def _rates(store: TelemetryStore, value: str, name: str, service: str | None, start: int,
           end: int, step: int, by: str | None) -> list[dict[str, Any]]:
    """Per step, service (and value of `by`): how much `value` (a counter's value or a
    histogram's count) grew per second. A cumulative point grew by its value less the
    series' point before it (the last before the window, up to `_LOOKBEHIND_NS` earlier,
    for the first); one that is smaller than that one follows a reset (the process
    restarted, counting from 0), so it grew by its whole value; a series' first point,
    with none before it, began in the window and counts in full. A delta point is the
    growth itself. Each series (its service, attributes and temporality) is known by a
    hash, so the window partitions by a number, not by text."""
    extra, extra_parameters = ("AND service = ?", [service]) if service else ("", [])
    key = f"hash(service, {_SERIES}, temporality)"
    attribute = f"json_extract_string({_SERIES}, ?)" if by else "NULL"
    return store.rows(
        f"WITH points AS (SELECT {key} AS key, service, {attribute} AS attribute, "
        f"temporality, time_ns, {value} AS v FROM metric_points "
        f"WHERE name = ? AND time_ns BETWEEN ? AND ? {extra} "
        f"UNION ALL SELECT {key}, NULL, NULL, temporality, max(time_ns), "
        f"arg_max({value}, time_ns) FROM metric_points "
        f"WHERE name = ? AND time_ns >= ? AND time_ns < ? {extra} GROUP BY 1, 4), "
        "growth AS (SELECT service, attribute, time_ns, CASE "
        "WHEN temporality = 'delta' THEN v WHEN previous IS NULL OR v < previous THEN v "
        "ELSE v - previous END AS grew FROM (SELECT *, lag(v) OVER (PARTITION BY key "
        "ORDER BY time_ns) AS previous FROM points)) "
        f"SELECT service, attribute, {_step_of(start, step)} AS time_ns, "
        f"'{Statistic.RATE}' AS statistic, sum(grew) / {step / 1e9!r} AS value FROM growth "
        f"WHERE time_ns >= {start} GROUP BY 1, 2, 3 ORDER BY 3, 1, 2",
        [*([attribute_path(by)] if by else []), name, start, end, *extra_parameters,
         name, start - _LOOKBEHIND_NS, start, *extra_parameters])


def _averages(store: TelemetryStore, name: str, service: str | None, start: int, end: int,
              step: int, by: str | None) -> list[dict[str, Any]]:
    """Per step, service (and value of `by`): the average of the points' values. For an
    up-down counter too: OpenTelemetry's SDKs export those cumulatively even when asked
    for deltas, so each point is the value at its time."""
    extra, extra_parameters = ("AND service = ?", [service]) if service else ("", [])
    attribute = "json_extract_string(attributes, ?)" if by else "NULL"
    return store.rows(
        f"SELECT service, {attribute} AS attribute, {_step_of(start, step)} AS time_ns, "
        f"'{Statistic.VALUE}' AS statistic, avg(value) AS value FROM metric_points "
        f"WHERE name = ? AND time_ns BETWEEN ? AND ? {extra} GROUP BY 1, 2, 3 "
        "ORDER BY 3, 1, 2",
        [*([attribute_path(by)] if by else []), name, start, end, *extra_parameters])


def _percentiles(store: TelemetryStore, name: str, service: str | None, start: int,
                 end: int, step: int, by: str | None) -> list[dict[str, Any]]:
    """Per step, service (and value of `by`): the buckets of the measurements taken in
    the step, with their bounds, for `percentile_of_buckets`. A cumulative series' step
    took its last point's buckets less the last ones before the step (none for a series
    that began in it), plus, for each reset in the step (a point whose count is below the
    one before: the process restarted), what the point before the reset had counted. A
    delta series' step took the sum of its points. Series whose buckets are not those of
    the metric's latest bounds (its instrument was changed) are left out.

    Worked per series and step, not per point: an hour of 200 series exported every
    10 s is 72,000 points of 15 buckets, and differencing each against the one before
    cost 400 ms. Only counts (scalars) go through the window that finds resets, and
    each series is known by a hash (its service, attributes and temporality), so the
    windows partition by a number, not by text."""
    extra, extra_parameters = ("AND service = ?", [service]) if service else ("", [])
    extra += " AND bucket_counts IS NOT NULL"
    window = f"name = ? AND time_ns BETWEEN ? AND ? {extra}"
    before = f"name = ? AND time_ns >= ? AND time_ns < ? {extra}"
    window_parameters = [name, start, end, *extra_parameters]
    before_parameters = [name, start - _LOOKBEHIND_NS, start, *extra_parameters]
    step_of = _step_of(start, step)
    key = f"hash(service, {_SERIES}, temporality)"
    attribute = "json_extract_string(series, ?)" if by else "NULL"
    return store.rows(
        f"WITH latest AS (SELECT arg_max(bounds, time_ns) AS bounds FROM metric_points "
        f"WHERE {window}), "
        f"points AS (SELECT {key} AS key, temporality, time_ns, count FROM metric_points "
        f"WHERE {window} UNION ALL SELECT {key}, temporality, max(time_ns), "
        f"arg_max(count, time_ns) FROM metric_points WHERE {before} GROUP BY 1, 2), "
        "resets AS (SELECT * FROM (SELECT key, temporality, time_ns, count, "
        "lag(count) OVER w AS previous_count, lag(time_ns) OVER w AS previous_time "
        "FROM points WINDOW w AS (PARTITION BY key ORDER BY time_ns)) "
        "WHERE temporality <> 'delta' AND count < previous_count), "
        # What each reset lost, bucket by bucket: the counts of the point before it.
        f"lost AS (SELECT resets.key, {step_of.replace('time_ns', 'resets.time_ns')} AS t, "
        "unnest(bucket_counts) AS grew, generate_subscripts(bucket_counts, 1) AS bucket "
        "FROM resets JOIN metric_points ON metric_points.time_ns = resets.previous_time "
        f"AND {key.replace('temporality', 'metric_points.temporality')} = resets.key "
        "WHERE metric_points.name = ? AND metric_points.time_ns BETWEEN ? AND ?), "
        # A cumulative series' last counts in each step, and before the window (in a
        # step of its own, before the first)...
        f"last AS (SELECT {key} AS key, {step_of} AS t, any_value(service) AS service, "
        f"any_value({_SERIES}) AS series, arg_max(bucket_counts, time_ns) AS counts "
        f"FROM metric_points WHERE {window} AND temporality <> 'delta' GROUP BY 1, 2 "
        f"UNION ALL SELECT {key}, {start - step}, any_value(service), any_value({_SERIES}), "
        "arg_max(bucket_counts, time_ns) FROM metric_points "
        f"WHERE {before} AND temporality <> 'delta' GROUP BY 1), "
        # ... and the series' next step with a point: the step whose growth starts from
        # these counts. Found from the steps alone (numbers), not the counts (lists).
        f"steps AS (SELECT key, t, lead(t) OVER (PARTITION BY key ORDER BY t) AS next_t "
        f"FROM (SELECT DISTINCT key, CASE WHEN time_ns < {start} THEN {start - step} "
        f"ELSE {step_of} END AS t FROM points WHERE temporality <> 'delta')), "
        "cells AS (SELECT key, t, next_t, unnest(counts) AS count, "
        "generate_subscripts(counts, 1) AS bucket FROM last JOIN steps USING (key, t)), "
        # A step's growth is its last counts less those of the series' step before:
        # each step's counts count for it, and against the series' next step. With them,
        # what resets lost, and delta series' counts as they are.
        f"grown AS (SELECT key, t, bucket, count AS grew FROM cells WHERE t >= {start} "
        "UNION ALL SELECT key, next_t, bucket, -count FROM cells WHERE next_t IS NOT NULL "
        "UNION ALL SELECT key, t, bucket, grew FROM lost "
        f"UNION ALL SELECT {key}, {step_of}, generate_subscripts(bucket_counts, 1), "
        f"unnest(bucket_counts) FROM metric_points WHERE {window} "
        "AND temporality = 'delta'), "
        "names AS (SELECT key, any_value(service) AS service, any_value(series) AS series "
        f"FROM last GROUP BY key UNION ALL SELECT DISTINCT {key}, service, {_SERIES} "
        f"FROM metric_points WHERE {window} AND temporality = 'delta'), "
        f"summed AS (SELECT service, {attribute} AS attribute, t, bucket, sum(grew) AS grew "
        "FROM grown JOIN names USING (key) GROUP BY 1, 2, 3, 4) "
        "SELECT service, attribute, t AS time_ns, any_value(latest.bounds) AS bounds, "
        "list(grew ORDER BY bucket) AS buckets FROM summed, latest GROUP BY 1, 2, 3 "
        "HAVING count(*) = len(any_value(latest.bounds)) + 1 ORDER BY 3, 1, 2",
        [*window_parameters,  # latest
         *window_parameters, *before_parameters,  # points
         name, start - _LOOKBEHIND_NS, end,  # lost
         *window_parameters, *before_parameters,  # last
         *window_parameters,  # delta points
         *window_parameters,  # their names
         *([attribute_path(by)] if by else [])])


def metric_series(store: TelemetryStore, name: str, service: str | None, start_ns: int,
                  end_ns: int, step_ns: int, by: str | None = None) -> MetricSeries:
    """`name` per step and service as its instrument is best read: a counter as its rate
    per second, a gauge or up-down counter as its value, a histogram as p50/p95/p99 in
    its unit (`Instrument` says which is which). With `by` (an attribute key), per value
    of that attribute too, as `attribute` (e.g. revenue per currency). `time_ns` is the
    start of each step; steps are counted from `start_ns`."""
    found = store.rows(
        "SELECT kind, bool_or(coalesce(monotonic, false)) AS monotonic, "
        "any_value(unit) AS unit FROM metric_points WHERE name = ? "
        "GROUP BY kind ORDER BY count(*) DESC LIMIT 1", [name])
    series = MetricSeries(name=name, instrument=None, unit=None, data=[], start_ns=start_ns,
                          end_ns=end_ns, step_ns=step_ns)
    if not found:
        return series
    instrument = instrument_of(MetricKind(found[0]["kind"]), found[0]["monotonic"])
    series.instrument, series.unit = instrument, found[0]["unit"] or None
    # Ints, so safe to write into the statements.
    arguments = (name, service, int(start_ns), int(end_ns), int(step_ns), by)
    match instrument:
        case Instrument.COUNTER:
            rows = _rates(store, "value", *arguments)
        case Instrument.EXPONENTIAL_HISTOGRAM | Instrument.SUMMARY:
            rows = _rates(store, "count", *arguments)
        case Instrument.GAUGE | Instrument.UP_DOWN_COUNTER:
            rows = _averages(store, *arguments)
        case Instrument.HISTOGRAM:
            rows = [{"service": row["service"], "attribute": row["attribute"],
                     "time_ns": row["time_ns"], "statistic": statistic,
                     "value": percentile_of_buckets(share, row["bounds"], row["buckets"])}
                    for row in _percentiles(store, *arguments)
                    for statistic, share in PERCENTILES.items()]
        case _:
            assert_never(instrument)
    series.data = as_models(MetricPoint, rows)
    return series


def percentile_of_buckets(share: float, bounds: Sequence[float],
                          counts: Sequence[int]) -> float | None:
    """The value `share` (0.95 for p95) of the measurements are at or below, from a
    histogram's buckets: bucket i holds the measurements above bounds[i-1] up to
    bounds[i] (the first from 0, or from its bound if that is negative; the last,
    above the highest bound, has no end). Within its bucket the value is interpolated
    as if the measurements were spread evenly, as Prometheus' histogram_quantile does;
    in the last bucket it is the highest bound (nothing says how far above). None with
    no measurements, or with no bounds (one bucket says nothing of the values)."""
    total = sum(counts)
    if total <= 0 or not bounds:
        return None
    rank = share * total
    below = 0
    for index, count in enumerate(counts):
        if count > 0 and below + count >= rank:
            if index >= len(bounds):
                return float(bounds[-1])
            upper = float(bounds[index])
            lower = float(bounds[index - 1]) if index else min(0.0, upper)
            return lower + (upper - lower) * (rank - below) / count
        below += count
    return float(bounds[-1])


def metric_increase(store: TelemetryStore, name: str, start_ns: int, end_ns: int,
                    attributes: dict[str, str] | None = None) -> float:
    """How much a counter grew over the window (its end included), across services,
    optionally only its series with the given attribute values (`counter_increase`
    says how a series' growth is counted)."""
    per_series, parameters = counter_increase(name, start_ns, end_ns, attributes,
                                              end_inclusive=True)
    rows = store.rows(f"SELECT coalesce(sum(increase), 0) AS total FROM ({per_series})",
                      parameters)
    return float(rows[0]["total"])
