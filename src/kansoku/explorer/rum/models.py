"""What real-user monitoring answers: the browsers' Web Vitals per page, rated, and
their JavaScript errors."""

from __future__ import annotations

import enum

from pydantic import BaseModel


class Rating(enum.StrEnum):
    """web-vitals' verdict on a measurement."""

    GOOD = "good"
    NEEDS_IMPROVEMENT = "needs-improvement"
    POOR = "poor"


class PageVital(BaseModel):
    """One Web Vital of one page at the 75th percentile (how web-vitals judges a page)."""

    page: str | None
    name: str | None
    p75: float | None
    samples: int
    rating: Rating


class BrowserError(BaseModel):
    message: str | None
    page: str | None
    count: int
    last_seen_ns: int
    trace_id: str | None


class Threshold(BaseModel):
    good: float
    poor: float


class Vitals(BaseModel):
    vitals: list[PageVital]
    errors: list[BrowserError]
    thresholds: dict[str, Threshold]
