"""Service level objectives: how one is declared (in the alert rules file, `slos:`), the
requests it counts over a window, and what `/api/slos` answers."""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kansoku.explorer.common.time import Duration
from kansoku.explorer.store import TelemetryStore


class SloKind(enum.StrEnum):
    #: A request is good unless it failed (error status or 5xx).
    AVAILABILITY = "availability"
    #: A request is good when it took at most the SLO's threshold.
    LATENCY = "latency"
    #: A user's journey, counted where it ends: each request to `operations` is one
    #: journey, good only when it succeeded (2xx) — for a checkout, the order was paid;
    #: a decline (402), a cancelled order (409) or a failure is bad, though the shop
    #: answered. A failure (error status or 5xx) in one of its earlier `steps` is a
    #: journey that broke before its end: counted, and bad.
    JOURNEY = "journey"


class SLO(BaseModel):
    """An objective for one journey: the share of its requests that must be good."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", description="e.g. checkout-availability")
    description: str = ""
    service: str
    #: The operations (server span names, "METHOD route") that make the journey (for a
    #: journey SLO: where it ends).
    operations: list[str] = Field(min_length=1)
    kind: SloKind
    #: A journey SLO's earlier operations (same service): only their failures count, as
    #: journeys that broke before their end.
    steps: list[str] = Field(default_factory=list)
    threshold: Duration | None = None
    #: In percent: 99 means 99 % of requests good; the error budget is the other 1 %.
    objective: float = Field(gt=0, lt=100)
    #: The period the budget is counted over.
    window: Duration = 30 * 86400.0

    @model_validator(mode="after")
    def _latency_needs_threshold(self) -> SLO:
        if self.kind == SloKind.LATENCY and not self.threshold:
            raise ValueError("a latency SLO needs a threshold, e.g. threshold: 500ms")
        if self.steps and self.kind != SloKind.JOURNEY:
            raise ValueError("steps: belong to a journey SLO (kind: journey)")
        for operation in [*self.operations, *self.steps]:
            if " " not in operation.strip():
                raise ValueError(f"operation '{operation}' should be 'METHOD route', "
                                 "e.g. 'POST /api/v1/orders'")
        return self

    @property
    def budget(self) -> float:
        """The share of requests that may be bad."""
        return 1 - self.objective / 100


@dataclass(frozen=True)
class Burn:
    """A journey's requests over one window, and the burn rate they mean."""

    seconds: float
    total: int
    bad: int
    budget: float

    @property
    def bad_share(self) -> float | None:
        return self.bad / self.total if self.total else None

    @property
    def rate(self) -> float | None:
        """How many times faster than allowed the budget burns (None: no requests)."""
        share = self.bad_share
        return None if share is None else share / self.budget


@dataclass(frozen=True)
class SloStep:
    """A journey's requests in one time step."""

    time_ns: int
    total: int
    bad: int


#: Measures an SLO's burn over the last `seconds` before `now_ns`: what the burn-rate
#: alert rules need (`slos.budget.burn`; the app hands it to the alert evaluator).
BurnMeter = Callable[[TelemetryStore, SLO, float, int], Burn]


class SloSource(Protocol):
    """Whoever holds the SLOs in use (the alert evaluator, which reads the rules file)."""

    @property
    def slos(self) -> Sequence[SLO]: ...

    def describe(self, slo: SLO) -> str:
        """`slo`'s description for the reader: in their language when it is kansoku's
        own (the packaged defaults), else as its rules file wrote it."""


# --- the answers ----------------------------------------------------------------------


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
    steps: list[str] = Field(description="A journey's earlier operations, counted only "
                                         "when they fail")
    kind: SloKind
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
