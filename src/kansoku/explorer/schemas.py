"""Shapes of the explorer's own JSON answers that the OpenAPI document spells out."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

ProblemKind = Literal["n-plus-one-db", "slow-db-query", "consecutive-db", "n-plus-one-http",
                      "error-hotspot", "slow-endpoint"]


class Problem(BaseModel):
    """A problem the detection rules found: occurrences of one kind in one operation of a
    service, for one normalised statement or route (docs/problems.md)."""

    fingerprint: str = Field(description="Kind, service, operation and statement or route, "
                                         "hashed: what groups occurrences")
    kind: ProblemKind
    title: str = Field(description="The kind in words")
    service: str
    operation: str = Field(description="The operation it happens in: the server (or "
                                       "consumer) span's name, e.g. 'GET /products'")
    statement: str | None = Field(description="The normalised SQL statement (database "
                                              "kinds)")
    route: str | None = Field(description="The route: the one called (N+1 calls), else "
                                          "the operation's own")
    example_trace_id: str = Field(description="The latest trace it occurred in")
    first_seen_ns: int
    last_seen_ns: int
    occurrences: int = Field(description="Traces it occurred in (the baseline kinds: "
                                         "windows of recent requests)")
    impact: float = Field(description="In all occurrences: milliseconds spent (or to be "
                                      "saved), or for error hotspots, failed requests "
                                      "above the usual rate")
    impact_unit: Literal["ms", "errors"]
    impact_text: str
    explanation: str = Field(description="What happens, in plain words, with the latest "
                                         "occurrence's numbers")
    fix: str = Field(description="The suggested fix")
    details: dict[str, Any] = Field(description="The latest occurrence's evidence: counts, "
                                                "durations, thresholds")
    span_ids: list[str] | None = Field(None, description="With trace_id: the trace's spans "
                                                         "involved")


class Problems(BaseModel):
    data: list[Problem]


# --- alerts and SLOs (docs/alerts.md) ---------------------------------------------------

AlertState = Literal["pending", "firing", "resolved"]


class Alert(BaseModel):
    """One alert: a rule breached by one set of label values (a service, a route, a
    consumer, an SLO and window pair)."""

    name: str = Field(description="The rule's name, e.g. HighErrorRate")
    rule: str = Field(description="The same as name (Prometheus calls it alertname)")
    kind: str | None = Field(description="The rule's kind: error_rate, latency, "
                                         "saturation, synthetic_failure, dead_letters, "
                                         "queue_lag or slo_burn_rate")
    state: AlertState = Field(description="pending: breached, not yet for the rule's "
                                          "`for`; firing; resolved: no longer breached")
    service: str | None
    severity: str
    value: float | None = Field(description="The measured value at the last evaluation "
                                            "(a share, seconds, cores, MiB, a count, or a "
                                            "burn rate)")
    value_text: str | None = Field(description="The value in words, e.g. '12.5 %'")
    threshold_text: str | None
    since_ns: int = Field(description="When it entered its current state")
    active_since_ns: int = Field(description="When it started breaching (pending)")
    labels: dict[str, str]
    summary: str = Field(description="What it means and where to look")
    links: dict[str, str] = Field(description="Explorer paths: service, traces, logs, "
                                              "example_trace, slos")
    fingerprint: str
    resolution: str | None = Field(description="A resolved alert: why — its value back "
                                               "within the threshold, or too little "
                                               "traffic (or none) to judge")
    details: dict[str, Any] = Field(description="The evidence: requests, errors, example "
                                                "trace, burn rates of both windows …")


class Alerts(BaseModel):
    data: list[Alert]


class AlertChange(BaseModel):
    """An alert moving from one state to another (`inactive`: a pending alert whose
    condition went away before it fired)."""

    time_ns: int
    fingerprint: str
    rule: str
    labels: dict[str, str]
    from_state: str
    to_state: str
    value: float | None
    summary: str | None
    reason: str | None = Field(description="Why it resolved (or went away): the value back "
                                           "within the threshold, or too little traffic "
                                           "(or none) to judge, which is not a fix")


class AlertHistory(BaseModel):
    data: list[AlertChange]


class BurnRate(BaseModel):
    window: str
    burn_rate: float | None = Field(description="Bad share over the window ÷ the budget; "
                                                "null without requests")


class SloPoint(BaseModel):
    time_ns: int
    requests: int
    bad: int
    burn_rate: float | None
    budget_remaining: float | None = Field(description="Over the SLO window ending at "
                                                       "this step")


class Slo(BaseModel):
    """A service level objective with its error budget and burn rates."""

    name: str
    description: str
    service: str
    operations: list[str]
    kind: Literal["availability", "latency"]
    threshold_ms: float | None
    objective_percent: float
    window: str
    requests: int = Field(description="Requests over the SLO window (what is kept)")
    bad: int
    sli_percent: float | None = Field(description="Good requests, in percent")
    budget_remaining: float | None = Field(description="1: untouched, 0: spent, below 0: "
                                                       "overspent")
    burn_rates: list[BurnRate]
    series: list[SloPoint]


class Slos(BaseModel):
    data: list[Slo]
