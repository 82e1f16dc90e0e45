"""Real-user monitoring: the intake for what the pages' script measures in the browser.

`static/rum.js`, on every page, measures Web Vitals, catches JavaScript errors, counts
page views and key actions (add to cart, checkout, place order …) and times the key
actions' requests as browser spans. It posts them here in batches (`POST /rum`, JSON; a
`sendBeacon` sends it as text/plain). The intake checks the batch strictly — bounded
sizes, known kinds, sane times — limits it by size and by rate, and forwards it over
OTLP, the same pipeline the services use, as if the browser were one more service,
`storefront-web`:

- traces: each browser span, with the browser's own trace and span ids, so the
  gateway's server span that received its `traceparent` is its child;
- logs: one record per event, `event.name` = `browser.web_vital`, `browser.error`,
  `browser.page_view` or `browser.click` (the explorer's Browser page reads them);
- metrics: a histogram per Web Vital, counters of page views, errors and key actions,
  and the key actions' durations — by route template, never by real path or session.

Nothing a user typed is ever sent: the script sends names, timings and the page's path.
docs/rum.md describes the wire format and where to look at the data.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, Final, Literal

import fastapi.routing
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.status import Status, StatusCode
from opentelemetry.util.types import AttributeValue
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from starlette.routing import compile_path

from kansoku import __version__
from kansoku.kit import semconv
from kansoku.kit.errors import Problem
from kansoku.kit.ratelimit import RateLimiter
from kansoku.kit.telemetry import Telemetry, exporter_enabled

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

#: Bucket bounds that contain the thresholds, so "share rated good" can be read off the
#: histograms.
_MILLISECOND_BUCKETS = (50.0, 100.0, 200.0, 300.0, 500.0, 800.0, 1000.0, 1500.0, 1800.0,
                        2000.0, 2500.0, 3000.0, 4000.0, 6000.0, 10000.0, 20000.0)
_CLS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0)

#: What metrics say for a route the gateway does not have (anyone can post to the intake,
#: and a made-up route per request would be a new time series each).
OTHER_ROUTE: Final = "other"


def rating(name: str, value: float) -> str:
    """web-vitals' rating of one measurement."""
    good, poor = semconv.VITAL_THRESHOLDS[name]
    return "good" if value <= good else "poor" if value > poor else "needs-improvement"


# --- The wire format ----------------------------------------------------------------------

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
RouteTemplate = Annotated[str, StringConstraints(max_length=256, pattern=r"^/[^\s?#]*$")]
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
    #: The page's real path, and its route template (`<meta name="kansoku-route">`).
    path: UrlPath
    route: RouteTemplate | None = None
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


# --- Forwarding over OTLP -------------------------------------------------------------------

#: A wrong clock in the browser is corrected when it is off by more than this; a
#: smaller difference is mostly the time the batch took to arrive, which a correction
#: would add to every time instead.
_CLOCK_SKEW_MS = 5000.0


class BrowserTelemetry:
    """Providers of service `storefront-web`, and the translation of a batch into spans,
    log records and metrics."""

    def __init__(self, *, spans: bool = True, logs: bool = True, metrics: bool = True
                 ) -> None:
        resource = Resource.create({
            semconv.SERVICE_NAME: semconv.RUM_SERVICE,
            semconv.SERVICE_NAMESPACE: semconv.NAMESPACE,
            semconv.SERVICE_VERSION: __version__,
            # What made the data is the pages' script, not this Python process.
            "telemetry.sdk.name": "kansoku-rum",
            "telemetry.sdk.language": "webjs",
            "telemetry.sdk.version": __version__,
        })
        self.resource = resource
        self.scope = InstrumentationScope("kansoku.rum", __version__)
        # The spans come finished from the browser: they go straight to the exporting
        # processor (the provider is there so shutting down flushes it).
        self._span_processor = BatchSpanProcessor(OTLPSpanExporter()) if spans else None
        tracer_provider = TracerProvider(resource=resource)
        if self._span_processor is not None:
            tracer_provider.add_span_processor(self._span_processor)
        logger_provider = LoggerProvider(resource=resource)
        if logs:
            logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
        readers: list[MetricReader] = (
            [PeriodicExportingMetricReader(OTLPMetricExporter())] if metrics else [])
        meter_provider = MeterProvider(resource=resource, metric_readers=readers)
        self.providers = Telemetry(semconv.RUM_SERVICE, tracer_provider, meter_provider,
                                   logger_provider)
        self._log = logger_provider.get_logger(self.scope.name, __version__)
        meter = meter_provider.get_meter(self.scope.name, __version__)
        self._vitals = {
            name: meter.create_histogram(
                metric, unit="1" if name == "CLS" else "ms",
                description=f"{name} of real page views (web-vitals' measure)",
                explicit_bucket_boundaries_advisory=(
                    _CLS_BUCKETS if name == "CLS" else _MILLISECOND_BUCKETS))
            for name, metric in semconv.METRIC_WEB_VITALS.items()}
        self._page_views = meter.create_counter(
            semconv.METRIC_PAGE_VIEWS, unit="{page_view}", description="Pages shown in browsers")
        self._errors = meter.create_counter(
            semconv.METRIC_ERRORS, unit="{error}",
            description="Uncaught JavaScript errors and unhandled rejections in the pages")
        self._key_actions = meter.create_counter(
            semconv.METRIC_KEY_ACTIONS, unit="{action}",
            description="Key actions used (add to cart, checkout, place order …)")
        self._action_duration = meter.create_histogram(
            semconv.METRIC_ACTION_DURATION, unit="ms",
            description="From a key action's submit to its answer, in the browser",
            explicit_bucket_boundaries_advisory=_MILLISECOND_BUCKETS)

    @classmethod
    def for_environment(cls) -> BrowserTelemetry:
        """Export the signals the environment exports (`OTEL_*_EXPORTER=none` keeps one
        local), to where the environment says (`OTEL_EXPORTER_OTLP_*`)."""
        return cls(spans=exporter_enabled("traces"), logs=exporter_enabled("logs"),
                   metrics=exporter_enabled("metrics"))

    def shutdown(self) -> None:
        """Flush what is buffered and stop (blocks for up to an export timeout)."""
        self.providers.shutdown()

    def record(self, beacon: Beacon, *, received_ms: float, known_route: str | None,
               user_agent: str | None) -> None:
        """Turn one batch into spans, log records and metric points."""
        skew = received_ms - beacon.sent_at
        offset_ms = skew if abs(skew) > _CLOCK_SKEW_MS else 0.0

        def nanoseconds(epoch_ms: float) -> int:
            return int((epoch_ms + offset_ms) * 1_000_000)

        common: dict[str, AttributeValue] = {
            semconv.SESSION_ID: beacon.session_id, semconv.RUM_PAGE_VIEW_ID: beacon.page_view_id}
        if user_agent:
            common[semconv.USER_AGENT] = user_agent[:512]
        page = {**common, semconv.URL_PATH: beacon.path}
        if known_route:
            page[semconv.URL_TEMPLATE] = known_route
        # Metrics by route template only: real paths and sessions are unbounded.
        route = {semconv.URL_TEMPLATE: known_route or OTHER_ROUTE}
        observed = int(received_ms * 1_000_000)

        for event in beacon.events:
            if isinstance(event, BrowserSpan):
                self._record_span(event, common, nanoseconds)
                continue
            attributes = dict(page)
            context = None
            if isinstance(event, WebVital):
                verdict = rating(event.name, event.value)
                attributes.update({semconv.EVENT_NAME: semconv.EVENT_WEB_VITAL,
                                   semconv.WEB_VITAL_NAME: event.name,
                                   semconv.WEB_VITAL_VALUE: event.value,
                                   semconv.WEB_VITAL_RATING: verdict})
                shown = f"{event.value:.3f}" if event.name == "CLS" else f"{event.value:.0f} ms"
                body = f"{event.name} {shown} on {beacon.path} ({verdict})"
                severity = SeverityNumber.INFO
                self._vitals[event.name].record(event.value,
                                                {**route, semconv.WEB_VITAL_RATING: verdict})
            elif isinstance(event, BrowserError):
                attributes.update({semconv.EVENT_NAME: semconv.EVENT_ERROR,
                                   semconv.EXCEPTION_TYPE: event.type,
                                   semconv.EXCEPTION_MESSAGE: event.message,
                                   semconv.RUM_UNHANDLED_REJECTION: event.unhandled_rejection})
                optional = {semconv.EXCEPTION_STACKTRACE: event.stack,
                            semconv.CODE_FILE_PATH: event.source,
                            semconv.CODE_LINE_NUMBER: event.line,
                            semconv.CODE_COLUMN_NUMBER: event.column}
                attributes.update({k: v for k, v in optional.items() if v is not None})
                body = f"{event.type}: {event.message}"
                severity = SeverityNumber.ERROR
                if event.trace_id and event.span_id:
                    context = trace.set_span_in_context(NonRecordingSpan(SpanContext(
                        int(event.trace_id, 16), int(event.span_id, 16), is_remote=True,
                        trace_flags=TraceFlags(TraceFlags.SAMPLED))))
                self._errors.add(1, route)
            elif isinstance(event, PageView):
                attributes.update({semconv.EVENT_NAME: semconv.EVENT_PAGE_VIEW,
                                   semconv.RUM_NAVIGATION_TYPE: event.navigation_type})
                body = f"page view {beacon.path} ({event.navigation_type})"
                severity = SeverityNumber.INFO
                self._page_views.add(1, route)
            else:
                attributes.update({semconv.EVENT_NAME: semconv.EVENT_CLICK,
                                   semconv.RUM_ACTION: event.action})
                body = f"{event.action} on {beacon.path}"
                severity = SeverityNumber.INFO
                self._key_actions.add(1, {**route, semconv.RUM_ACTION: event.action})
            self._log.emit(timestamp=nanoseconds(event.time), observed_timestamp=observed,
                           context=context, severity_number=severity,
                           severity_text=severity.name, body=body, attributes=attributes,
                           event_name=str(attributes[semconv.EVENT_NAME]))

    def _record_span(self, event: BrowserSpan, common: dict[str, AttributeValue],
                     nanoseconds: Callable[[float], int]) -> None:
        attributes: dict[str, AttributeValue] = {
            **common, semconv.HTTP_REQUEST_METHOD: event.method, semconv.URL_PATH: event.url}
        if event.status_code:
            attributes[semconv.HTTP_RESPONSE_STATUS_CODE] = event.status_code
        if event.action:
            attributes[semconv.RUM_ACTION] = event.action
        # OpenTelemetry's HTTP conventions: on a client span, 4xx and 5xx are errors.
        status = Status(StatusCode.UNSET)
        if event.status_code == 0 or event.status_code >= 400:
            reason = str(event.status_code) if event.status_code else "network"
            attributes[semconv.ERROR_TYPE] = reason
            status = Status(StatusCode.ERROR, "no response" if reason == "network" else None)
        span = ReadableSpan(
            name=event.name,
            context=SpanContext(int(event.trace_id, 16), int(event.span_id, 16),
                                is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED)),
            parent=None,
            resource=self.resource,
            attributes=attributes,
            kind=SpanKind.CLIENT,
            status=status,
            start_time=nanoseconds(event.start),
            end_time=nanoseconds(event.end),
            instrumentation_scope=self.scope,
        )
        if self._span_processor is not None:
            self._span_processor.on_end(span)
        if event.action:
            self._action_duration.record(
                event.end - event.start,
                {semconv.RUM_ACTION: event.action,
                 semconv.HTTP_RESPONSE_STATUS_CODE: event.status_code})


# --- The intake -----------------------------------------------------------------------

_ACCEPTED_TYPES = ("application/json", "text/plain")


async def _read_body(request: Request, limit: int) -> bytes:
    """The request's body, refused with 413 as soon as it is larger than `limit`."""
    too_large = Problem(413, "payload-too-large",
                        f"A batch of browser telemetry is at most {limit} bytes.", limit=limit)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


def _route_templates(app: FastAPI) -> set[str]:
    """Every route template of the app, with its routers' prefixes (`/admin/products/{…}`).

    FastAPI since 0.16x keeps included routers nested and lists their routes through
    `iter_route_contexts`; before, `app.routes` had them all.
    """
    contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    routes = contexts(app.routes) if contexts is not None else app.routes
    templates = {getattr(route, "path", None) for route in routes}
    return {t for t in templates if isinstance(t, str) and t.startswith("/")}


def _known_route(request: Request, claimed: str | None, path: str) -> str | None:
    """`claimed` if it is one of the gateway's own route templates and matches `path`.

    Anyone can post to the intake: a template made up per request would be a new time
    series each, and a template that does not fit its path would file the page wrongly.
    """
    if claimed is None:
        return None
    routes: dict[str, re.Pattern[str]] | None = getattr(request.app.state, "rum_routes", None)
    if routes is None:
        routes = {template: compile_path(template)[0]
                  for template in _route_templates(request.app)}
        request.app.state.rum_routes = routes
    pattern = routes.get(claimed)
    return claimed if pattern is not None and pattern.match(path) else None


@router.post("/rum", status_code=204, response_class=Response)
async def receive_browser_telemetry(request: Request) -> Response:
    """Take one batch from a page's script, check it, and forward it over OTLP."""
    settings = request.app.state.settings
    # A browser says where a request comes from; another site's pages may not post here.
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise Problem(403, "cross-site", "Browser telemetry is accepted from this site's "
                      "own pages only.")
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in _ACCEPTED_TYPES:
        raise Problem(415, "unsupported-media-type",
                      "Send browser telemetry as JSON (application/json, or text/plain "
                      "from navigator.sendBeacon).")
    limits = RateLimiter(request.app.state.limits.client, prefix="ratelimit:rum")
    address = request.client.host if request.client else "unknown"
    # The intake's own Valkey calls are bookkeeping, not something to trace.
    with suppress_instrumentation():
        await limits.check("address", address, settings.rum_rate_per_address)
    body = await _read_body(request, settings.rum_max_body_bytes)
    try:
        beacon = Beacon.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False)
        if any(error["type"] == "json_invalid" for error in errors):
            raise Problem(400, "bad-json", "The body is not JSON: "
                          f"{errors[0]['msg'].removeprefix('Invalid JSON: ')}.") from None
        # The kit's handler answers 422 naming each field, as for every other route.
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in errors]) from None
    with suppress_instrumentation():
        await limits.check("session", beacon.session_id, settings.rum_rate_per_session)
    forward: BrowserTelemetry | None = request.app.state.rum
    if forward is not None:
        forward.record(beacon, received_ms=time.time() * 1000,
                       known_route=_known_route(request, beacon.route, beacon.path),
                       user_agent=request.headers.get("user-agent"))
    return Response(status_code=204)


def install(app: FastAPI) -> None:
    """Prepare the intake on `app.state` (called once from `create_app`).

    With the gateway's telemetry on, the browser's data gets providers of its own (service
    `storefront-web`), which the app's lifespan flushes and stops when the app stops.
    With it off (tests, `OTEL_SDK_DISABLED`), the intake still checks what it is sent, and
    drops it.
    """
    telemetry: Telemetry = app.state.telemetry
    if not telemetry.enabled:
        app.state.rum = None
        return
    browser = BrowserTelemetry.for_environment()
    app.state.rum = browser
    run_app = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        try:
            async with run_app(app) as state:
                yield state
        finally:
            # After the gateway's own shutdown: the last batches are flushed too.
            await asyncio.to_thread(browser.shutdown)

    app.router.lifespan_context = lifespan
