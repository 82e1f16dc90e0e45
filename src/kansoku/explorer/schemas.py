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
