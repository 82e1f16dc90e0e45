"""Problem detection's vocabulary, what it records, and what `/api/problems` answers."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from pydantic import BaseModel, Field, JsonValue


class ProblemKind(enum.StrEnum):
    """What the detection rules find (docs/problems.md describes each)."""

    N_PLUS_ONE_DB = "n-plus-one-db"
    SLOW_DB_QUERY = "slow-db-query"
    CONSECUTIVE_DB = "consecutive-db"
    N_PLUS_ONE_HTTP = "n-plus-one-http"
    ERROR_HOTSPOT = "error-hotspot"
    SLOW_ENDPOINT = "slow-endpoint"


#: Every kind, with the title the pages show.
PROBLEM_TITLES: dict[ProblemKind, str] = {
    ProblemKind.N_PLUS_ONE_DB: "N+1 queries",
    ProblemKind.SLOW_DB_QUERY: "Slow database query",
    ProblemKind.CONSECUTIVE_DB: "Consecutive queries that could run in parallel",
    ProblemKind.N_PLUS_ONE_HTTP: "N+1 calls to another service",
    ProblemKind.ERROR_HOTSPOT: "Error hotspot",
    ProblemKind.SLOW_ENDPOINT: "Slower than usual",
}
#: Kinds whose target is a statement (the others' is a route).
STATEMENT_KINDS = frozenset({ProblemKind.N_PLUS_ONE_DB, ProblemKind.SLOW_DB_QUERY,
                             ProblemKind.CONSECUTIVE_DB})


class ImpactUnit(enum.StrEnum):
    """What a problem's impact counts: milliseconds spent (or to be saved), or failed
    requests above the usual rate."""

    MS = "ms"
    ERRORS = "errors"


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
    example_trace_id: str = Field(description="The latest trace it occurred in")
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
