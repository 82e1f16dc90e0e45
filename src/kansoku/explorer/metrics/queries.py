"""The metrics' SQL: RED from the server spans, the metrics that arrived and their
series per step, a counter's increase."""

from __future__ import annotations

from kansoku.explorer.common.spans import FAILED_REQUEST, HANDLED_REQUEST
from kansoku.explorer.common.sql import (
    Where,
    as_models,
    attribute_path,
    counter_increase,
)
from kansoku.explorer.metrics.models import (
    CUMULATIVE_KINDS,
    MetricKind,
    MetricName,
    MetricPoint,
    Red,
    RedPoint,
)
from kansoku.explorer.store import TelemetryStore


def red(store: TelemetryStore, start_ns: int, end_ns: int, service: str | None = None,
        by_route: bool = False) -> list[Red]:
    """Rate, errors and duration of server spans per service (and route)."""
    group = "service, coalesce(route, name)" if by_route else "service"
    where = Where(f"{HANDLED_REQUEST} AND start_ns BETWEEN ? AND ?", start_ns, end_ns)
    where.add_if(service, "service = ?")
    seconds = max((end_ns - start_ns) / 1e9, 1e-9)
    columns = "service, coalesce(route, name) AS route" if by_route else "service"
    rows = store.rows(
        f"SELECT {columns}, count(*) AS requests, "
        f"count(*) FILTER (WHERE {FAILED_REQUEST}) AS errors, "
        "quantile_cont(duration_ns, [0.5, 0.9, 0.95, 0.99]) AS quantiles "
        f"FROM spans WHERE {where} GROUP BY {group} ORDER BY {group}", where.parameters)
    for row in rows:
        p50, p90, p95, p99 = (value / 1e6 for value in row.pop("quantiles"))
        row.update(rate_per_second=row["requests"] / seconds,
                   error_percent=100.0 * row["errors"] / row["requests"],
                   p50_ms=p50, p90_ms=p90, p95_ms=p95, p99_ms=p99)
    return as_models(Red, rows)


def red_series(store: TelemetryStore, start_ns: int, end_ns: int, step_ns: int,
               service: str, route: str | None = None) -> list[RedPoint]:
    """Requests, errors and p95 of one service (or route) per time step, for charts."""
    where = Where(f"{HANDLED_REQUEST} AND service = ? AND start_ns BETWEEN ? AND ?",
                  service, start_ns, end_ns)
    where.add_if(route, "coalesce(route, name) = ?")
    step = int(step_ns)  # an int, so safe to write into the statement
    return as_models(RedPoint, store.rows(
        f"SELECT (start_ns // {step}) * {step} AS time_ns, count(*) AS requests, "
        f"count(*) FILTER (WHERE {FAILED_REQUEST}) AS errors, "
        "quantile_cont(duration_ns, 0.95) / 1e6 AS p95_ms "
        f"FROM spans WHERE {where} GROUP BY 1 ORDER BY 1", where.parameters))


def metric_names(store: TelemetryStore, start_ns: int, end_ns: int) -> list[MetricName]:
    """Every metric that arrived in [start, end]: its kind, unit and senders."""
    return as_models(MetricName, store.rows(
        "SELECT name, kind, any_value(unit) AS unit, list(DISTINCT service) AS services "
        "FROM metric_points WHERE time_ns BETWEEN ? AND ? GROUP BY name, kind ORDER BY name",
        [start_ns, end_ns]))


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
                  end_ns: int, step_ns: int, by: str | None = None) -> list[MetricPoint]:
    """`name` per step and service (see `CUMULATIVE_KINDS`), and with `by` (an
    attribute key) per value of that attribute too, as `attribute` (e.g. revenue per
    currency). `time_ns` is the start of each step; steps are counted from `start_ns`."""
    kinds = store.rows("SELECT DISTINCT kind FROM metric_points WHERE name = ?", [name])
    kind = MetricKind(kinds[0]["kind"]) if kinds else MetricKind.GAUGE
    extra, extra_parameters = "", []
    if service:
        extra, extra_parameters = "AND service = ?", [service]
    # An int, so safe to write into the statement; the attribute's path is a parameter.
    start, step = int(start_ns), int(step_ns)
    attribute = "json_extract_string(attributes, ?)" if by else "NULL"
    by_parameters = [attribute_path(by)] if by else []
    if kind in CUMULATIVE_KINDS:
        value = "value" if kind == MetricKind.SUM else "count"
        return as_models(MetricPoint, store.rows(
            _increase_sql(value, start, step, extra)
            + f"SELECT service, {attribute} AS attribute, t AS time_ns, "
            "sum(increase) AS value FROM steps GROUP BY service, attribute, t "
            "ORDER BY t, service, attribute",
            [name, start_ns, end_ns, *extra_parameters, name, start_ns, *extra_parameters,
             *by_parameters]))
    return as_models(MetricPoint, store.rows(
        f"SELECT service, {attribute} AS attribute, {_step_of(start, step)} AS time_ns, "
        f"avg(value) AS value FROM metric_points WHERE name = ? AND time_ns BETWEEN ? AND ? "
        f"{extra} GROUP BY 1, 2, 3 ORDER BY 3, 1, 2",
        [*by_parameters, name, start_ns, end_ns, *extra_parameters]))


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
