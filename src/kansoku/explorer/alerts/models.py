"""Alerting's vocabulary, the alerts as the store keeps them, and what the alerts' routes
answer (docs/alerts.md)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field, JsonValue

from kansoku.explorer.metrics.models import Temporality


class AlertState(enum.StrEnum):
    """Where an alert is (the module docstring of `alerts/evaluator.py` tells how it
    moves)."""

    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"
    #: A pending alert whose condition went away before it fired (history only).
    INACTIVE = "inactive"


#: The states an alert can be listed in (an inactive one is only in the history).
ListedState = Literal[AlertState.PENDING, AlertState.FIRING, AlertState.RESOLVED]
#: The order the API lists alerts in.
STATE_ORDER = {AlertState.FIRING: 0, AlertState.PENDING: 1, AlertState.RESOLVED: 2}


class RuleKind(enum.StrEnum):
    """What an alert rule measures (`alerts/rules.py` has one class of rule each)."""

    ERROR_RATE = "error_rate"
    LATENCY = "latency"
    SATURATION = "saturation"
    SYNTHETIC_FAILURE = "synthetic_failure"
    DEAD_LETTERS = "dead_letters"
    QUEUE_LAG = "queue_lag"
    SLO_BURN_RATE = "slo_burn_rate"


class SaturationResource(enum.StrEnum):
    """What a saturation rule watches."""

    CPU = "cpu"
    MEMORY = "memory"
    DB_POOL = "db_pool"


# --- what the rules read -----------------------------------------------------------


@dataclass(frozen=True)
class RequestWindow:
    """One service's (or route's) server spans over a rule's window."""

    service: str
    #: None unless grouped by route.
    route: str | None
    requests: int
    #: Failed: error status or 5xx.
    errors: int
    #: The duration at the rule's quantile.
    quantile_ns: float
    slowest_trace_id: str
    failed_trace_id: str | None
    #: The fault flag most failed requests carry, as "key=variant" (None: none does).
    failed_flag: str | None = None


@dataclass(frozen=True)
class GaugeSeries:
    """One series of a gauge (a service and a set of attribute values) over a window."""

    service: str
    attributes: dict[str, Any]
    mean: float
    latest: float


@dataclass(frozen=True)
class CounterSeries:
    """How much one series of a counter grew over a window."""

    service: str
    attributes: dict[str, Any]
    increase: float


@dataclass(frozen=True)
class HistogramPoint:
    """A histogram series' buckets at one point: for a cumulative series its latest
    point inside the window and its latest before; for a delta one every point inside."""

    service: str
    attributes: dict[str, Any]
    temporality: Temporality
    bounds: list[float]
    bucket_counts: list[int]
    #: Inside the window (else: the latest before it).
    inside: bool


# --- the alerts as kept --------------------------------------------------------------


@dataclass(frozen=True)
class AlertRow:
    """One alert (a rule and one set of label values) as `alert_states` keeps it; the
    evaluator (`alerts/evaluator.py`) owns the meaning of each field."""

    fingerprint: str
    rule: str
    labels: dict[str, str]
    state: AlertState
    since_ns: int
    active_since_ns: int
    value: float | None
    summary: str
    #: The evidence (JSON in the store): the rule's measurements, plus what the API
    #: shows of the alert — `links`, `kind`, `value_text`, `threshold_text`, and for a
    #: resolved alert its `resolution`.
    details: dict[str, Any]
    notified_state: AlertState | None
    notified_ns: int | None


# --- the answers ----------------------------------------------------------------------


class Alert(BaseModel):
    """One alert: a rule breached by one set of label values (a service, a route, a
    consumer, an SLO and window pair)."""

    name: str = Field(description="The rule's name, e.g. HighErrorRate")
    rule: str = Field(description="The same as name (Prometheus calls it alertname)")
    kind: RuleKind | None = Field(description="The rule's kind")
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
    details: dict[str, JsonValue] = Field(description="The evidence: requests, errors, example "
                                                "trace, burn rates of both windows …")


class AlertChange(BaseModel):
    """An alert moving from one state to another (`inactive`: a pending alert whose
    condition went away before it fired): what the evaluator appends to `alert_history`
    and the API answers with."""

    time_ns: int
    fingerprint: str
    rule: str
    labels: dict[str, str]
    from_state: AlertState
    to_state: AlertState
    value: float | None
    summary: str | None
    reason: str | None = Field(description="Why it resolved (or went away): the value back "
                                           "within the threshold, or too little traffic "
                                           "(or none) to judge, which is not a fix")


#: A rule's state: the worst of its alerts' (firing, then pending), else inactive.
RuleState = Literal[AlertState.INACTIVE, AlertState.PENDING, AlertState.FIRING]


class RuleOverview(BaseModel):
    """One rule as the Alerts page lists it: its state now and its condition in words."""

    name: str
    kind: RuleKind
    state: RuleState = Field(description="firing when one of its alerts fires, pending "
                                         "when one is pending, else inactive")
    firing: int = Field(description="Its alerts firing now")
    pending: int = Field(description="Its alerts pending now")
    severity: str
    condition: str = Field(description="What it measures and when it fires, in words")
    for_seconds: float = Field(description="How long the condition must hold before it "
                                           "fires")
    source: str = Field(description="The rules file it comes from, or (packaged defaults)")
    error: str | None = Field(description="Why its last evaluation failed, if it did")


class ReceiverInUse(BaseModel):
    name: str
    kind: Literal["webhook", "email"]


class NotificationsInUse(BaseModel):
    group_by: list[str]
    group_interval: float = Field(description="Seconds")
    repeat_interval: float = Field(description="Seconds")
    receivers: list[ReceiverInUse]


class AlertingStats(BaseModel):
    evaluations: int
    last_evaluation_ns: int
    rules_source: str
    load_error: str | None
    rule_errors: dict[str, str]
    alerts: dict[AlertState, int] = Field(description="Alerts in each state")
