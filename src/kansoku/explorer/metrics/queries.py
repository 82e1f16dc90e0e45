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


#: SQL: the points of one metric in the window, and each series' last point before it (a
#: cumulative series' first step in the window grows from that one). Each series is its
#: service, its attributes as text and its temporality. `{columns}` are the point's values
#: wanted, `{latest}` the same taken from the last point before the window. Parameters:
#: name, start, end, the service filter's; name, start, the service filter's again.
_POINTS_AND_THE_ONE_BEFORE = (
    "SELECT service, CAST(attributes AS VARCHAR) AS series, temporality, time_ns, {columns} "
    "FROM metric_points WHERE name = ? AND time_ns BETWEEN ? AND ? {extra} "
    "UNION ALL "
    "SELECT service, CAST(attributes AS VARCHAR), temporality, max(time_ns), {latest} "
    "FROM metric_points WHERE name = ? AND time_ns < ? {extra} "
    "GROUP BY service, CAST(attributes AS VARCHAR), temporality")


def _rates(store: TelemetryStore, value: str, name: str, service: str | None, start: int,
           end: int, step: int, by: str | None) -> list[dict[str, Any]]:
    """Per step, service (and value of `by`): how much `value` (a counter's value or a
    histogram's count) grew per second. A cumulative point grew by its value less the
    series' point before it; one that is smaller than that one follows a reset (the
    process restarted, counting from 0), so it grew by its whole value; a series' first
    point, with none before it, began in the window and counts in full. A delta point
    is the growth itself."""
    extra, extra_parameters = ("AND service = ?", [service]) if service else ("", [])
    points = _POINTS_AND_THE_ONE_BEFORE.format(
        columns=f"{value} AS v", latest=f"arg_max({value}, time_ns)", extra=extra)
    attribute = "json_extract_string(series, ?)" if by else "NULL"
    return store.rows(
        f"WITH points AS ({points}), "
        "growth AS (SELECT service, series, time_ns, CASE "
        "WHEN temporality = 'delta' THEN v WHEN previous IS NULL OR v < previous THEN v "
        "ELSE v - previous END AS grew FROM (SELECT *, lag(v) OVER (PARTITION BY service, "
        "series, temporality ORDER BY time_ns) AS previous FROM points)) "
        f"SELECT service, {attribute} AS attribute, {_step_of(start, step)} AS time_ns, "
        f"'{Statistic.RATE}' AS statistic, sum(grew) / {step / 1e9!r} AS value FROM growth "
        f"WHERE time_ns >= {start} GROUP BY 1, 2, 3 ORDER BY 3, 1, 2",
        [name, start, end, *extra_parameters, name, start, *extra_parameters,
         *([attribute_path(by)] if by else [])])


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
    """Per step, service (and value of `by`): p50, p95 and p99 of the measurements
    the step's points counted into their buckets. Each point's growth is bucket by
    bucket, as a counter's (`_rates` says how: a point whose count is smaller than the
    one before follows a reset), summed over the step and the series; the percentile
    is interpolated within its bucket (`percentile_of_buckets`)."""
    extra, extra_parameters = ("AND service = ?", [service]) if service else ("", [])
    points = _POINTS_AND_THE_ONE_BEFORE.format(
        columns="count, bucket_counts AS buckets, bounds",
        latest="arg_max(count, time_ns), arg_max(bucket_counts, time_ns), "
               "arg_max(bounds, time_ns)",
        extra=extra + " AND bucket_counts IS NOT NULL")
    attribute = "json_extract_string(series, ?)" if by else "NULL"
    rows = store.rows(
        f"WITH points AS ({points}), "
        "lagged AS (SELECT *, lag(count) OVER w AS previous_count, "
        "lag(buckets) OVER w AS previous_buckets, lag(bounds) OVER w AS previous_bounds "
        "FROM points WINDOW w AS (PARTITION BY service, series, temporality "
        "ORDER BY time_ns)), "
        "growth AS (SELECT service, series, time_ns, bounds, CASE "
        "WHEN temporality = 'delta' OR previous_buckets IS NULL OR count < previous_count "
        "OR bounds IS DISTINCT FROM previous_bounds THEN buckets "
        "ELSE list_transform(generate_series(1, len(buckets)), "
        "lambda i: buckets[i] - previous_buckets[i]) END AS grew "
        f"FROM lagged WHERE time_ns >= {start}), "
        "by_bucket AS (SELECT service, series, time_ns, bounds, unnest(grew) AS grew, "
        "generate_subscripts(grew, 1) AS bucket FROM growth), "
        f"summed AS (SELECT service, {attribute} AS attribute, "
        f"{_step_of(start, step)} AS time_ns, bounds, bucket, sum(grew) AS grew "
        "FROM by_bucket GROUP BY 1, 2, 3, 4, 5) "
        "SELECT service, attribute, time_ns, bounds, list(grew ORDER BY bucket) AS buckets "
        "FROM summed GROUP BY 1, 2, 3, 4 ORDER BY 3, 1, 2",
        [name, start, end, *extra_parameters, name, start, *extra_parameters,
         *([attribute_path(by)] if by else [])])
    return rows


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
