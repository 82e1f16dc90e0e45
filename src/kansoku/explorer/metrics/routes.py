"""Metrics: RED per service and route (from the spans), every metric's series, and the
shop's funnel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from kansoku.explorer.common import time as timerange
from kansoku.explorer.common.responses import Data, read
from kansoku.explorer.metrics import queries
from kansoku.explorer.metrics.models import FunnelStep, MetricName, MetricSeries, Red, RedPoint
from kansoku.kit import semconv
from kansoku.kit.i18n import gettext

router = APIRouter()


@router.get("/api/red", tags=["kansoku"])
async def red(request: Request,
              service: Annotated[str | None, Query(max_length=200)] = None,
              by_route: bool = False,
              lookback: timerange.Lookback = "1h",
              ) -> Data[list[Red]]:
    """Rate (requests per second over the range, or over the part of it the explorer
    holds spans for: `seconds` says), error % and p50/p90/p95/p99 latency of server
    spans, per service (and per route with `by_route`)."""
    start_ns, end_ns = timerange.window(lookback)
    return Data(data=await read(request, queries.red, start_ns, end_ns, service, by_route))


@router.get("/api/red/series", tags=["kansoku"])
async def red_series(request: Request,
                     service: Annotated[str | None, Query(
                         max_length=200, description="Without it: every service")] = None,
                     route: Annotated[str | None, Query(max_length=500)] = None,
                     lookback: timerange.Lookback = "1h",
                     step: timerange.Step = "1m",
                     ) -> Data[list[RedPoint]]:
    """Requests per second, error % and p50/p95/p99 latency per time step, per service
    (or for one service, or one of its routes). A step that would cut the range into
    more than 2000 is widened to a 2000th of it."""
    start_ns, end_ns = timerange.window(lookback)
    step_ns = _checked_step(start_ns, end_ns, step)
    return Data(data=await read(request, queries.red_series, start_ns, end_ns, step_ns,
                                service, route))


@router.get("/api/metrics", tags=["kansoku"])
async def metric_names(request: Request, lookback: timerange.Lookback = "1h"
                       ) -> Data[list[MetricName]]:
    """Every metric that arrived in the time range: name, kind, unit, and who sends it."""
    start_ns, end_ns = timerange.window(lookback)
    return Data(data=await read(request, queries.metric_names, start_ns, end_ns))


@router.get("/api/metrics/series", tags=["kansoku"])
async def metric_series(request: Request, name: Annotated[str, Query(max_length=200)],
                        service: Annotated[str | None, Query(max_length=200)] = None,
                        lookback: timerange.Lookback = "1h",
                        step: timerange.Step = "1m",
                        by: Annotated[str | None, Query(
                            max_length=200, description="An attribute to split the series "
                                                        "by, e.g. currency")] = None,
                        ) -> MetricSeries:
    """One metric per time step and service (and value of `by`), as its instrument is
    read: a counter as its rate per second, a gauge or up-down counter as its average,
    a histogram as p50/p95/p99 in the metric's unit (each point's `statistic` says
    which). Each point's `time_ns` is its step's start; steps are counted from the
    range's start, which the answer gives (`start_ns`, `end_ns`, `step_ns`), so the last
    one ends with the range. A step that would cut the range into more than 2000 is
    widened to a 2000th of it (`step_ns` says the one used)."""
    start_ns, end_ns = timerange.window(lookback)
    step_ns = _checked_step(start_ns, end_ns, step)
    return await read(request, queries.metric_series, name, service, start_ns, end_ns,
                      step_ns, by)


#: The most steps a chart's range is cut into: more points than a chart has pixels only
#: cost time.
MAX_STEPS = 2000


def _checked_step(start_ns: int, end_ns: int, step: str) -> int:
    """`step` in ns, widened to a `MAX_STEPS`th of the range when it is shorter (a step
    of 1s over a day): the answer is the same chart, at the resolution it can show. The
    metric series' answer says the step it used (`step_ns`)."""
    return max(timerange.step_ns(step), -(-(end_ns - start_ns) // MAX_STEPS))


@router.get("/api/funnel", tags=["kansoku"])
async def funnel(request: Request, lookback: timerange.Lookback = "1h") -> Data[list[FunnelStep]]:
    """The shop's funnel in the time range: product views, units added to carts, orders
    placed, orders paid."""
    start_ns, end_ns = timerange.window(lookback)
    # The steps' names are for people: in the reader's language.
    steps = ((gettext("Product views"), semconv.METRIC_PRODUCT_VIEWS, None),
             (gettext("Units added to carts"), semconv.METRIC_CART_ADDS, None),
             (gettext("Orders placed"), semconv.METRIC_ORDERS, "placed"),
             (gettext("Orders paid"), semconv.METRIC_ORDERS, "paid"))
    data = []
    for label, name, status in steps:
        total = await read(request, queries.metric_increase, name, start_ns, end_ns,
                           {"status": status} if status else None)
        data.append(FunnelStep(step=label, metric=name, count=total))
    return Data(data=data)
