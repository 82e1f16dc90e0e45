"""Alerting's vocabulary, the alerts as the store keeps them, and what the alerts' routes
answer (docs/alerts.md)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

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


# --- what alerting says to people (alerts/texts.py writes it out) --------------------


class Measure(enum.StrEnum):
    """What a value measures, which says how it is written."""

    #: A share: 0.125 is "12.5 %".
    SHARE = "share"
    #: Seconds: "250 ms" below one, "3.00 s" from one.
    SECONDS = "seconds"
    #: CPU cores kept busy: "0.95 cores".
    CORES = "cores"
    #: Mebibytes: "512 MiB".
    MIB = "mib"
    #: Database connections: "18 connections".
    CONNECTIONS = "connections"
    #: How many times faster than allowed an error budget burns: "14.4x" (one decimal).
    BURN_RATE = "burn_rate"
    #: A burn-rate pair's factor, as the rules file writes it: "6x", "14.4x".
    FACTOR = "factor"
    #: A number of things: "80".
    COUNT = "count"
    #: A length of time in seconds, as a rules file writes one: "5m".
    DURATION = "duration"


class _Kept(BaseModel):
    """Kept in the store as JSON, and read back."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Quantity(_Kept):
    """A measured value with what it measures."""

    measure: Measure
    amount: float


class Origin(enum.StrEnum):
    """Whose words a sentence is."""

    #: kansoku's, marked for the catalogs where they are written.
    KANSOKU = "kansoku"
    #: A rules file's summary: translated only when it is the packaged defaults' own.
    RULES_FILE = "rules_file"


class Sentence(_Kept):
    """One sentence for people: its English words, with {placeholders} for `values`."""

    text: str
    #: The English plural, for a text whose form follows the count in `values[count]`.
    plural: str | None = None
    count: str | None = None
    values: dict[str, str | Quantity] = Field(default_factory=dict)
    origin: Origin = Origin.KANSOKU


class AlertTexts(_Kept):
    """An alert's texts for people, as the store keeps them (`alert_states.texts`, and
    each change's in `alert_history.texts`)."""

    summary: list[Sentence]
    #: Why it resolved (in the history: why it resolved or went away).
    reason: list[Sentence] | None = None
    #: What the alert's value measures (how `value` and `threshold` read).
    measure: Measure | None = None
    threshold: float | None = None


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
    #: In English: what programs reading the store saw before `texts`, and what an
    #: alert kept before them shows.
    summary: str
    #: The evidence (JSON in the store): the rule's measurements, plus what the API
    #: shows of the alert — `links`, `kind`, `value_text`, `threshold_text`, and for a
    #: resolved alert its `resolution` (both texts in English, as `summary`).
    details: dict[str, Any]
    notified_state: AlertState | None
    notified_ns: int | None
    #: The summary, resolution, value and threshold as they are said to a reader, in
    #: the reader's language (None: an alert kept before them; its English is shown).
    texts: AlertTexts | None = None


@dataclass(frozen=True)
class StateChange:
    """An alert moving from one state to another, as the evaluator appends it to
    `alert_history` (the API answers it as an `AlertChange`, in the reader's language)."""

    time_ns: int
    fingerprint: str
    rule: str
    labels: dict[str, str]
    from_state: AlertState
    to_state: AlertState
    value: float | None
    #: In English, as `AlertRow.summary`; why it resolved or went away, too.
    summary: str | None
    reason: str | None = None
    texts: AlertTexts | None = None


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
    value_text: str | None = Field(description="The value in words, e.g. '12.5 %', in the "
                                               "reader's language (as every text here)")
    threshold_text: str | None
    since_ns: int = Field(description="When it entered its current state")
    active_since_ns: int = Field(description="When it started breaching (pending)")
    labels: dict[str, str]
    summary: str = Field(description="What it means and where to look, in the reader's "
                                     "language (Accept-Language; a rules file's own "
                                     "summary as its author wrote it)")
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
    condition went away before it fired), as the API answers with it: a `StateChange`,
    its texts in the reader's language."""

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
