"""What the metrics feature answers: RED (rate, errors, duration) from the server spans,
the metrics that arrived and their series, the shop's funnel."""

from __future__ import annotations

import enum

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


#: The kinds whose value per step is an increase (of the sum, or of the histogram's
#: count); a gauge's is its average.
CUMULATIVE_KINDS = frozenset({MetricKind.SUM, MetricKind.HISTOGRAM,
                              MetricKind.EXPONENTIAL_HISTOGRAM, MetricKind.SUMMARY})


class Red(BaseModel):
    """Rate, errors and duration of one service's (or route's) server and consumer
    spans over the time range."""

    service: str
    route: str | None = Field(None, description="With by_route: the route (or span name)")
    requests: int
    errors: int = Field(description="Failed: error status or an HTTP status of 500 or more")
    rate_per_second: float
    error_percent: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float


class RedPoint(BaseModel):
    time_ns: int = Field(description="The step's start")
    requests: int
    errors: int
    p95_ms: float


class MetricName(BaseModel):
    name: str
    kind: MetricKind
    unit: str | None
    services: list[str]


class MetricPoint(BaseModel):
    service: str
    attribute: str | None = Field(description="With `by`: the attribute's value")
    time_ns: int = Field(description="The step's start")
    value: float | None


class MetricSeries(BaseModel):
    data: list[MetricPoint]
    start_ns: int
    end_ns: int
    step_ns: int


class FunnelStep(BaseModel):
    step: str
    metric: str
    count: float
