"""Problem detection's vocabulary, what it records, and what `/api/problems` answers."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from babel.support import LazyProxy
from pydantic import BaseModel, Field, JsonValue

from kansoku.kit.i18n import lazy_gettext


class ProblemKind(enum.StrEnum):
    """What the detection rules find (docs/problems.md describes each)."""

    N_PLUS_ONE_DB = "n-plus-one-db"
    SLOW_DB_QUERY = "slow-db-query"
    CONSECUTIVE_DB = "consecutive-db"
    N_PLUS_ONE_HTTP = "n-plus-one-http"
    ERROR_HOTSPOT = "error-hotspot"
    SLOW_ENDPOINT = "slow-endpoint"
    #: Spans marked by a fault flag (`feature_flag.key`): the flag is on and acting.
    FAULT_FLAG = "fault-flag"
    #: A process whose memory (`process.memory.usage`) keeps climbing.
    MEMORY_GROWTH = "memory-growth"
    #: A process keeping a core busy (`process.cpu.utilization`) for a sustained window.
    CPU_SATURATION = "cpu-saturation"


#: Every kind, with the title the pages show (in the reader's language when shown).
PROBLEM_TITLES: dict[ProblemKind, LazyProxy] = {
    ProblemKind.N_PLUS_ONE_DB: lazy_gettext("N+1 queries"),
    ProblemKind.SLOW_DB_QUERY: lazy_gettext("Slow database query"),
    ProblemKind.CONSECUTIVE_DB: lazy_gettext("Consecutive queries that could run in parallel"),
    ProblemKind.N_PLUS_ONE_HTTP: lazy_gettext("N+1 calls to another service"),
    ProblemKind.ERROR_HOTSPOT: lazy_gettext("Error hotspot"),
    ProblemKind.SLOW_ENDPOINT: lazy_gettext("Slower than usual"),
    ProblemKind.FAULT_FLAG: lazy_gettext("Fault flag at work"),
    ProblemKind.MEMORY_GROWTH: lazy_gettext("Memory growing"),
    ProblemKind.CPU_SATURATION: lazy_gettext("CPU saturation"),
}
#: Kinds whose target is a statement (the others' is a route).
STATEMENT_KINDS = frozenset({ProblemKind.N_PLUS_ONE_DB, ProblemKind.SLOW_DB_QUERY,
                             ProblemKind.CONSECUTIVE_DB})


class ImpactUnit(enum.StrEnum):
    """What a problem's impact counts: milliseconds spent (or to be saved), or failed
    requests above the usual rate."""

    MS = "ms"
    ERRORS = "errors"
    #: Spans a fault flag marked (the fault-flag kind).
    SPANS = "spans"
    #: Memory grown (memory growth).
    MIB = "MiB"
    #: CPU time spent above the process's usual (CPU saturation).
    CPU_SECONDS = "cpu-seconds"


class ProblemState(enum.StrEnum):
    """Whether a problem is still happening: `ongoing` while its rule keeps finding it,
    `cleared` once it has not for the rule's hold time (`Problem.clears_when` says
    what clears each)."""

    ONGOING = "ongoing"
    CLEARED = "cleared"


#: How long after its rule last found it a problem counts as ongoing, when its
#: evidence does not say (problems recorded before the evidence carried it).
DEFAULT_HOLD_SECONDS = 60.0


@dataclass(frozen=True)
class ProblemOccurrence:
    """One occurrence of a detected problem (see `problems/detector.py`): what it is, the
    trace it was seen in and that trace's spans involved, and what it cost."""

    fingerprint: str
    kind: ProblemKind
    service: str
    operation: str
    #: The normalised statement, or the route.
    target: str
    trace_id: str
    time_ns: int
    span_ids: tuple[str, ...]
    impact: float
    impact_unit: ImpactUnit
    details: dict[str, JsonValue]
    #: 0: one occurrence per trace. Otherwise at most one per this many ns (the baseline
    #: rules look at overlapping windows: one occurrence per window).
    once_per_ns: int = 0


@dataclass(frozen=True)
class OperationWindow:
    """One operation's requests (server and consumer spans of one service with one
    name) in the recent window and in its baseline, with examples from the recent one:
    what the baseline rules judge."""

    service: str
    operation: str
    #: Its route (the operation's name when it has none).
    route: str
    recent_requests: int
    recent_errors: int
    recent_p95_ns: float | None
    recent_mean_ns: float | None
    baseline_requests: int
    baseline_errors: int
    baseline_p95_ns: float | None
    baseline_mean_ns: float | None
    slow_trace_id: str | None
    slow_span_id: str | None
    error_trace_id: str | None
    error_span_id: str | None
    #: The same operation's requests in the latest few seconds (`Thresholds.
    #: latest_seconds`): a problem is found only while it still shows there, so it
    #: clears soon after its cause goes away.
    latest_requests: int = 0
    latest_errors: int = 0
    latest_p95_ns: float | None = None


@dataclass(frozen=True)
class FlaggedSpans:
    """Spans of one operation (service and span name) that a fault flag marked
    (`feature_flag.key`, `feature_flag.result.variant`) in the recent window."""

    service: str
    operation: str
    flag: str
    variant: str
    spans: int
    failed: int
    p95_ns: float | None
    #: The operation's other spans in the window (unmarked), for comparison.
    unmarked_spans: int
    unmarked_failed: int
    unmarked_p95_ns: float | None
    #: Examples: the latest failed marked span, else the slowest marked one.
    example_trace_id: str
    example_span_id: str


@dataclass(frozen=True)
class ProcessSeries:
    """One service's process metric over the recent window (and the minutes before):
    what the resource rules judge. Memory in bytes; CPU as a share of all the
    machine's cores (as `process.cpu.utilization` reports it)."""

    service: str
    points: int
    first_value: float
    latest_value: float
    mean: float
    #: Least-squares slope per second over the window, and its fit (r²), for memory.
    slope_per_second: float | None
    fit: float | None
    #: The slope over the latest few seconds only: still climbing?
    latest_slope_per_second: float | None
    #: Share of the window's points at or above the rule's threshold (CPU).
    share_over: float
    #: The mean over the minutes before the window (None: no points there).
    baseline_mean: float | None


@dataclass(frozen=True)
class StoredProblem:
    """A problem as the store keeps it; or one occurrence of it in a trace (then
    `occurrences` is 1, `impact` and `details` the occurrence's, and `span_ids` its
    spans)."""

    fingerprint: str
    kind: ProblemKind
    service: str
    operation: str
    #: The normalised statement, or the route.
    target: str | None
    first_seen_ns: int
    last_seen_ns: int
    occurrences: int
    impact: float
    impact_unit: ImpactUnit
    example_trace_id: str
    details: dict[str, JsonValue]
    span_ids: list[str] | None = None


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
    headline: str = Field(description="What it is, with its names: the flag, the process, "
                                      "the operation")
    state: ProblemState = Field(description="ongoing: its rule still finds it; cleared: "
                                            "not for the rule's hold time")
    clears_when: str = Field(description="What clears it, and how soon")
    example_trace_id: str = Field(description="The latest trace it occurred in (an empty "
                                              "string for the resource kinds, which are "
                                              "a process's: details.latest_trace_id is a "
                                              "recent trace of the service)")
    first_seen_ns: int
    last_seen_ns: int
    occurrences: int = Field(description="Traces it occurred in (the baseline kinds: "
                                         "windows of recent requests)")
    impact: float = Field(description="In all occurrences: milliseconds spent (or to be "
                                      "saved), or for error hotspots, failed requests "
                                      "above the usual rate")
    impact_unit: ImpactUnit
    impact_text: str
    explanation: str = Field(description="What happens, in plain words, with the latest "
                                         "occurrence's numbers")
    fix: str = Field(description="The suggested fix")
    details: dict[str, JsonValue] = Field(description="The latest occurrence's evidence: counts, "
                                                "durations, thresholds")
    span_ids: list[str] | None = Field(None, description="With trace_id: the trace's spans "
                                                         "involved")


class DetectionStats(BaseModel):
    """How far problem detection got (part of `/api/stats`)."""

    traces_checked: int
    traces_pending: int
    occurrences_recorded: int
    last_check_ns: int
    last_baseline_check_ns: int
