"""What the Approaches page shows: the instrumentation approaches measured side by side
(`benchmarks/approaches.py --write` writes `measured.json` beside this), which approach
made the spans this explorer holds, and the latest checkout each one traced.

The models are shared with the benchmark, which writes the file through `Measured`: the
page and the benchmark cannot disagree on its shape."""

from __future__ import annotations

import enum
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, Field

from kansoku.explorer.common.spans import SpanKind
from kansoku.kit.approaches import Instrumentation

#: Where the benchmark's latest figures are kept, in the package (docs/approaches.md).
MEASURED_FILE = Path(__file__).parent / "measured.json"

#: The gateway's request spans that are a checkout, under every approach: the API's
#: order (OpenTelemetry names the span after its route, X-Ray and New Relic after the
#: path, which here are the same) and the storefront's checkout form (order and payment).
CHECKOUT_OPERATIONS = ("POST /api/v1/orders", "POST /checkout")
#: The service a checkout enters by.
CHECKOUT_SERVICE = "gateway"


class SpanRole(enum.StrEnum):
    """What a span stands for, whichever approach made it and however it named it: the
    unit the approaches' spans are compared in."""

    #: A request a service handled (a server span).
    REQUEST = "request"
    #: A call to another service over HTTP.
    CALL = "call"
    #: A statement sent to PostgreSQL (or another SQL database).
    SQL = "sql"
    #: A command sent to Valkey (the Redis protocol).
    CACHE = "cache"
    #: An event published to NATS.
    PUBLISH = "publish"
    #: An event a consumer handled.
    CONSUME = "consume"
    #: Work inside a service: a function, a middleware, a step.
    INTERNAL = "internal"


#: `db.system` values that are a cache rather than a database.
_CACHES = frozenset({"redis", "valkey"})


def span_role(kind: str, db_system: str | None) -> SpanRole:
    """The role of a span of `kind` (the store's span kinds), with `db_system` when it
    names one."""
    if db_system:
        return SpanRole.CACHE if db_system.lower() in _CACHES else SpanRole.SQL
    match kind:
        case SpanKind.SERVER:
            return SpanRole.REQUEST
        case SpanKind.CLIENT:
            return SpanRole.CALL
        case SpanKind.PRODUCER:
            return SpanRole.PUBLISH
        case SpanKind.CONSUMER:
            return SpanRole.CONSUME
        case _:
            return SpanRole.INTERNAL


class RoleCount(BaseModel):
    """How many spans of one role one service has in a checkout, per approach."""

    service: str
    role: SpanRole
    counts: dict[str, int] = Field(description="Approach → spans")


class MatrixShare(BaseModel):
    """The share of the signal matrix's cells (tests/stack/signal_matrix.py) filled."""

    traces: float
    metrics: float
    logs: float
    all: float


class MeasuredApproach(BaseModel):
    """One approach's figures in one run of benchmarks/approaches.py."""

    approach: Instrumentation
    checkouts_per_second: float = Field(description="Paid checkouts per second, the "
                                                    "rounds' mean")
    rounds: list[float] = Field(description="Each round's paid checkouts per second")
    of_none: float = Field(description="checkouts_per_second ÷ the uninstrumented one's")
    cpu_ms_per_checkout: float = Field(description="CPU of all its services per checkout")
    cpu_ms_by_service: dict[str, float]
    memory_mib_per_service: float = Field(description="Mean PSS of its services after "
                                                      "the load")
    memory_mib_by_service: dict[str, float]
    p50_ms: float
    p99_ms: float
    added_p50_ms: float = Field(description="p50 minus the uninstrumented one's")
    added_p99_ms: float
    spans_per_checkout: int | None = Field(description="Spans of one checkout's traces "
                                                       "(None: it sends none)")
    spans_received_per_checkout: float | None = Field(
        description="Every span its explorer took during the rounds ÷ checkouts")
    matrix_share: MatrixShare | None
    early_untraced: int | None = Field(description="Of the first requests after start, "
                                                   "those with no trace")
    early_requests: int
    wiring_lines: int = Field(description="Code lines of the modules that wire it")
    wiring_modules: dict[str, int]
    not_paid: int = Field(description="Checkouts that failed")
    sees_alone: list[str] = Field(description="`service role` pairs of the checkout only "
                                              "it has spans of")
    misses: list[str] = Field(description="`service role` pairs others have and it lacks")


class Machine(BaseModel):
    """Where a run was measured."""

    cpu: str
    cores: int
    memory_gib: float
    system: str
    python: str


class Measured(BaseModel):
    """One run of benchmarks/approaches.py, as it wrote it."""

    measured_at: datetime
    machine: Machine
    load_average_before: list[float]
    load_average_after: list[float]
    rounds: int
    seconds_per_round: float
    concurrency: int
    approaches: list[MeasuredApproach]
    checkout: list[RoleCount] = Field(description="One checkout's spans by service and "
                                                  "role, per approach")


class SourceCount(BaseModel):
    """What one approach sent this explorer in the time range."""

    source: str = Field(description="telemetry.source: otel, xray or newrelic")
    spans: int
    traces: int
    services: list[str]


class CheckoutTrace(BaseModel):
    """The latest checkout one approach traced: its trace and its spans by role."""

    source: str
    trace_id: str
    operation: str
    start_ns: int
    duration_ns: int
    spans: int
    services: list[str]
    roles: list[RoleCount] = Field(description="Its spans by service and role (the "
                                               "counts under its source)")


class Approaches(BaseModel):
    """The Approaches page's data."""

    measured: Measured | None = Field(description="The latest run of the benchmark in "
                                                  "the package (None: never measured)")
    sources: list[SourceCount]
    checkouts: list[CheckoutTrace]
