"""The wire format of real-user monitoring: what the pages' script posts to `POST /rum`.

`static/rum.js`, on every page, measures Web Vitals, catches JavaScript errors, counts
page views and key actions (add to cart, checkout, place order …) and times the key
actions' requests as browser spans. It posts them in batches (`Beacon`), as JSON (a
`sendBeacon` sends it as text/plain). These models check a batch strictly — JSON types
exactly, no unknown fields, bounded sizes, known kinds, sane times — so what passes is
what the script sends, and anything else is a 422 that names the field. Nothing a user
typed is ever sent: names, timings and the page's path. docs/rum.md describes it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

#: Times are milliseconds since the epoch, as the browser's clock has them
#: (`performance.timeOrigin + performance.now()`), below the year 2262 where nanoseconds
#: overflow OTLP's 64 bits.
EpochMs = Annotated[float, Field(gt=0, lt=9.2e12)]


def _not_all_zeros(value: str) -> str:
    if not value.strip("0"):
        raise ValueError("an id of only zeros is W3C's 'no id'")
    return value


TraceId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$"),
                    AfterValidator(_not_all_zeros)]
SpanId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$"),
                   AfterValidator(_not_all_zeros)]
RandomId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16,32}$")]
#: A path without query or fragment (the script never sends those: a search box's text
#: is in the query).
UrlPath = Annotated[str, StringConstraints(max_length=2048, pattern=r"^/[^\s?#]*$")]
#: A `data-rum-action` name: "add-to-cart", "place-order" …
ActionName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,47}$")]
NavigationType = Literal["navigate", "reload", "back_forward", "prerender",
                         "back_forward_cache", "replace"]

_MAX_EVENTS = 100
_DAY_MS = 86_400_000.0


class _Strict(BaseModel):
    # JSON types exactly (no "12" for 12), no unknown fields: what passes is what the
    # script sends, and anything else is a 422 that names the field.
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class WebVital(_Strict):
    """One Web Vital of the page: LCP, FCP and TTFB once, CLS and INP when the page is
    hidden or left."""

    kind: Literal["web_vital"]
    time: EpochMs
    name: Literal["LCP", "INP", "CLS", "FCP", "TTFB"]
    #: Milliseconds (CLS: a unitless score).
    value: Annotated[float, Field(ge=0, le=3_600_000)]
    #: The browser's rating; the intake rates the value again and records its own.
    rating: Literal["good", "needs-improvement", "poor"]


class BrowserError(_Strict):
    """An uncaught JavaScript error or an unhandled promise rejection."""

    kind: Literal["error"]
    time: EpochMs
    type: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    message: Annotated[str, StringConstraints(max_length=1000)]
    stack: Annotated[str, StringConstraints(max_length=4000)] | None = None
    #: The script's URL (no query), where the error was thrown, when the browser says.
    source: Annotated[str, StringConstraints(max_length=2048)] | None = None
    line: Annotated[int, Field(ge=0, le=10_000_000)] | None = None
    column: Annotated[int, Field(ge=0, le=10_000_000)] | None = None
    unhandled_rejection: bool = False
    #: The browser span in progress when it happened, if any.
    trace_id: TraceId | None = None
    span_id: SpanId | None = None


class PageView(_Strict):
    """The page was shown: loaded, reloaded, restored from the back/forward cache, or
    replaced by a key action's answer."""

    kind: Literal["page_view"]
    time: EpochMs
    navigation_type: NavigationType


class Click(_Strict):
    """A key action (an element or form with `data-rum-action`) was used."""

    kind: Literal["click"]
    time: EpochMs
    action: ActionName


class BrowserSpan(_Strict):
    """A request the page made, timed in the browser; its ids went out in `traceparent`."""

    kind: Literal["span"]
    trace_id: TraceId
    span_id: SpanId
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._/-]{0,99}$")]
    start: EpochMs
    end: EpochMs
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    #: The request's path (same origin only).
    url: UrlPath
    #: The response's status; 0 when none came (network error, aborted).
    status_code: Annotated[int, Field(ge=0, le=599)]
    #: The key action (`data-rum-action`) that sent it, if it was one.
    action: ActionName | None = None

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> BrowserSpan:
        if not 0 <= self.end - self.start <= 600_000:
            raise ValueError("a span ends after it starts, within 10 minutes")
        return self


Event = Annotated[WebVital | BrowserError | PageView | Click | BrowserSpan,
                  Field(discriminator="kind")]


class Beacon(_Strict):
    """One batch from one page view: what happened since the last batch."""

    #: Random, per browser tab (sessionStorage); not tied to the shop's login session.
    session_id: RandomId
    #: Random, per page view.
    page_view_id: RandomId
    #: The page's real path (the intake finds its route template).
    path: UrlPath
    #: The browser's clock when it sent the batch: the intake corrects a wrong clock.
    sent_at: EpochMs
    events: Annotated[list[Event], Field(min_length=1, max_length=_MAX_EVENTS)]

    @model_validator(mode="after")
    def _times_near_sending(self) -> Beacon:
        for event in self.events:
            times = (event.start, event.end) if isinstance(event, BrowserSpan) else (
                event.time,)
            if any(not self.sent_at - _DAY_MS <= t <= self.sent_at + 60_000 for t in times):
                raise ValueError("events happen within a day before the batch is sent")
        return self
