"""What the metrics feature answers: RED (rate, errors, duration) from the server spans,
the metrics that arrived and their series, the shop's funnel."""

from __future__ import annotations

import enum
from typing import assert_never

from pydantic import BaseModel, Field


class MetricKind(enum.StrEnum):
    """OTLP's kinds of metric data, as the store keeps them."""

    SUM = "sum"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"
    EXPONENTIAL_HISTOGRAM = "exponential_histogram"
    SUMMARY = "summary"


class Temporality(enum.StrEnum):
    """How a sum's or histogram's points add up (OTLP's aggregation temporality, in the
    order of its numbers)."""

    UNSPECIFIED = "unspecified"
    #: Each point counts what happened since the one before.
    DELTA = "delta"
    #: Each point counts everything since the series began.
    CUMULATIVE = "cumulative"


class Instrument(enum.StrEnum):
    """The instrument a metric was recorded with, as its OTLP kind (and a sum's
    monotonicity) tells: it decides how the metric is charted."""

    #: A monotonic sum (orders, requests, bytes sent): charted as its rate per second.
    COUNTER = "counter"
    #: A sum that can go down (connections in use, queue length): charted as its value.
    UP_DOWN_COUNTER = "up_down_counter"
    #: A measurement at an instant (memory, CPU): charted as its value.
    GAUGE = "gauge"
    #: Measurements counted into buckets (request durations): charted as p50/p95/p99.
    HISTOGRAM = "histogram"
    #: Histograms whose buckets the store does not keep (exponential ones, summaries):
    #: charted as the rate of their measurements.
    EXPONENTIAL_HISTOGRAM = "exponential_histogram"
    SUMMARY = "summary"


def instrument_of(kind: MetricKind, monotonic: bool) -> Instrument:
    """The instrument behind a metric of OTLP kind `kind`."""
    match kind:
        case MetricKind.SUM:
            return Instrument.COUNTER if monotonic else Instrument.UP_DOWN_COUNTER
        case MetricKind.GAUGE:
            return Instrument.GAUGE
        case MetricKind.HISTOGRAM:
            return Instrument.HISTOGRAM
        case MetricKind.EXPONENTIAL_HISTOGRAM:
            return Instrument.EXPONENTIAL_HISTOGRAM
        case MetricKind.SUMMARY:
            return Instrument.SUMMARY
        case _:
            assert_never(kind)


class Statistic(enum.StrEnum):
    """What a point of a metric's series is."""

    #: How much a counter grew (or how many measurements a histogram took) per second,
    #: over the step.
    RATE = "rate"
    #: A gauge's or up-down counter's average over the step.
    VALUE = "value"
    #: A histogram's percentiles over the step's measurements, in the metric's unit.
    P50 = "p50"
    P95 = "p95"
    P99 = "p99"


#: The percentiles a histogram is charted with, and the share of measurements each
#: is above.
PERCENTILES: dict[Statistic, float] = {Statistic.P50: 0.5, Statistic.P95: 0.95,
                                       Statistic.P99: 0.99}


class Red(BaseModel):
    """Rate, errors and duration of one service's (or route's) server and consumer
    spans over the time range."""

    service: str
    route: str | None = Field(None, description="With by_route: the route (or span name)")
    requests: int
    errors: int = Field(description="Failed: error status or an HTTP status of 500 or more")
    rate_per_second: float = Field(description="requests ÷ `seconds`")
    seconds: float = Field(description="What the rate is over: the time range's seconds, "
                                       "or, when the explorer's earliest span is younger "
                                       "than the range, the seconds since that span")
    error_percent: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float


class RedPoint(BaseModel):
    """One step of one service's (or route's) requests: how many, how many failed, how
    long they took."""

    service: str
    time_ns: int = Field(description="The step's start")
    requests: int
    errors: int
    rate_per_second: float = Field(description="requests ÷ the step's seconds")
    error_percent: float
    p50_ms: float
    p95_ms: float
    p99_ms: float


class MetricName(BaseModel):
    name: str
    kind: MetricKind
    instrument: Instrument
    unit: str | None
    services: list[str]


class MetricPoint(BaseModel):
    service: str
    attribute: str | None = Field(description="With `by`: the attribute's value")
    time_ns: int = Field(description="The step's start")
    statistic: Statistic = Field(description="What `value` is: a rate per second, a "
                                             "value, or a percentile")
    value: float | None


class MetricSeries(BaseModel):
    name: str
    instrument: Instrument | None = Field(description="None: no such metric arrived")
    unit: str | None = Field(description="The metric's unit (UCUM); a rate is this per "
                                         "second, a percentile is in it")
    data: list[MetricPoint]
    start_ns: int
    end_ns: int
    step_ns: int


class FunnelStep(BaseModel):
    step: str
    metric: str
    count: float
