"""What the traces feature takes and answers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field
from typing_extensions import TypedDict  # pydantic reads typing's only from 3.12

from kansoku.explorer.common.spans import Attributes, SpanKind, SpanStatus
from kansoku.kit.i18n import gettext as _


@dataclass(frozen=True)
class TraceQuery:
    service: str | None = None
    operation: str | None = None
    #: Attribute key -> value every matching trace has on a span. Three keys are read as
    #: Jaeger reads them: "error" ("true": a span with error status), "otel.status_code"
    #: (ERROR, OK or UNSET) and "span.kind" (server, client …).
    tags: tuple[tuple[str, str], ...] = ()
    min_duration_ns: int | None = None
    max_duration_ns: int | None = None
    start_ns: int = 0
    end_ns: int = 2**62
    limit: int = 20
    #: Patterns (* for anything) of root span names whose traces are left out, e.g.
    #: "GET */thumbnail": the storefront's images, a trace each.
    exclude_roots: tuple[str, ...] = ()
    #: Traces of fewer spans (in the time range) are left out: 2 hides one-span traces,
    #: such as a service fetching identity's signing keys.
    min_spans: int = 1


@dataclass(frozen=True)
class TraceSpans:
    """Spans of some traces, oldest first, as many as an answer's bound let in; and how
    many spans each of those traces has in the store."""

    spans: list[dict[str, Any]]
    span_counts: dict[str, int]

    def cut_warning(self, trace_id: str, kept: int, bound: str) -> str | None:
        """What to tell about a trace of which `kept` spans are in the answer, if that
        is not all of them (`bound` says which bound cut it), in the reader's language."""
        total = self.span_counts.get(trace_id, kept)
        if total <= kept:
            return None
        return (_("This answer holds the first {kept} of the trace's {total} spans: {bound}.")
                if bound else _("This answer holds the first {kept} of the trace's {total} "
                                "spans.")).format(kept=f"{kept:,}", total=f"{total:,}",
                                                  bound=bound)


# --- the answers ----------------------------------------------------------------------

# Jaeger's shapes are TypedDicts, not models: a trace of thousands of spans has tens of
# thousands of tags, and checking them as dicts costs a quarter of building models.


class JaegerTag(TypedDict):
    key: str
    type: Literal["bool", "int64", "float64", "string"]
    value: bool | int | float | str


class JaegerProcess(TypedDict):
    serviceName: str
    tags: list[JaegerTag]


class JaegerReference(TypedDict):
    refType: Literal["CHILD_OF", "FOLLOWS_FROM"]
    traceID: str
    spanID: str


class JaegerLog(TypedDict):
    """A span event, as Jaeger calls it (`timestamp` in microseconds)."""

    timestamp: int
    fields: list[JaegerTag]


class JaegerSpan(TypedDict):
    """A span in Jaeger's shape: `startTime` in microseconds since the epoch,
    `duration` in microseconds."""

    traceID: str
    spanID: str
    flags: int
    operationName: str
    references: list[JaegerReference]
    startTime: int
    duration: int
    tags: list[JaegerTag]
    logs: list[JaegerLog]
    processID: str
    warnings: list[str] | None


class JaegerTrace(TypedDict):
    traceID: str
    spans: list[JaegerSpan]
    processes: dict[str, JaegerProcess]
    warnings: list[str] | None


class Operation(BaseModel):
    name: str
    spanKind: SpanKind


class SpanEvent(BaseModel):
    time_ns: int
    name: str
    attributes: Attributes


class SpanLink(BaseModel):
    trace_id: str
    span_id: str
    attributes: Attributes


class StoredSpan(BaseModel):
    """A span with every column the store keeps."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    service: str
    name: str
    kind: SpanKind
    start_ns: int
    duration_ns: int
    status: SpanStatus
    status_message: str | None
    route: str | None
    http_status: int | None
    user_id: str | None
    db_system: str | None
    db_statement: str | None
    attributes: Attributes
    resource: Attributes
    events: list[SpanEvent]
    links: list[SpanLink]
    warnings: list[str] | None = Field(description="Why the span came without its details")


class TraceLog(BaseModel):
    """A log record written during a trace."""

    time_ns: int
    service: str
    severity: str | None
    body: str | None
    span_id: str | None
    attributes: Attributes


class TraceWithLogs(BaseModel):
    trace_id: str
    spans: list[StoredSpan]
    logs: list[TraceLog]
    span_count: int = Field(description="The trace's spans in the store (more than `spans` "
                                        "when the answer was cut)")
    warnings: list[str]
