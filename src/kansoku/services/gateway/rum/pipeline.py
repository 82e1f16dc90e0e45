"""Forwarding browser telemetry over OTLP, as if the browser were one more service,
`storefront-web`, through the same pipeline the services use:

- traces: each browser span, with the browser's own trace and span ids, so the
  gateway's server span that received its `traceparent` is its child;
- logs: one record per event, `event.name` = `browser.web_vital`, `browser.error`,
  `browser.page_view` or `browser.click` (the explorer's Browser page reads them);
- metrics: a histogram per Web Vital, counters of page views, errors and key actions,
  and the key actions' durations — by route template, never by real path or session
  (`KnownRoutes` finds the gateway's own template for a page's path).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
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
from starlette.applications import Starlette
from starlette.routing import compile_path

from kansoku import __version__
from kansoku.kit import semconv
from kansoku.kit.middleware import whole_route_paths
from kansoku.kit.telemetry import Telemetry, exporter_enabled
from kansoku.services.gateway.rum.schemas import (
    Beacon,
    BrowserError,
    BrowserSpan,
    PageView,
    WebVital,
)

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

    def record(self, beacon: Beacon, *, received_ms: float, route_template: str | None,
               user_agent: str | None) -> None:
        """Turn one batch into spans, log records and metric points; `route_template` is
        the page's (None: not a page of the gateway's)."""
        skew = received_ms - beacon.sent_at
        offset_ms = skew if abs(skew) > _CLOCK_SKEW_MS else 0.0

        def nanoseconds(epoch_ms: float) -> int:
            return int((epoch_ms + offset_ms) * 1_000_000)

        common: dict[str, AttributeValue] = {
            semconv.SESSION_ID: beacon.session_id, semconv.RUM_PAGE_VIEW_ID: beacon.page_view_id}
        if user_agent:
            common[semconv.USER_AGENT] = user_agent[:512]
        page = {**common, semconv.URL_PATH: beacon.path}
        if route_template:
            page[semconv.URL_TEMPLATE] = route_template
        # Metrics by route template only: real paths and sessions are unbounded.
        route = {semconv.URL_TEMPLATE: route_template or OTHER_ROUTE}
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


class KnownRoutes:
    """The gateway's own route templates, to find the one that serves a page's path.

    The intake stamps every page view, vital, error and click with its page's template
    (`url.template`: `/products/{product_id}` for `/products/42`), so pages are grouped
    by route rather than one group per product or order; and it finds it from the path
    itself, so what a page claims cannot file it wrongly or invent a time series. The
    templates are read from the app on first use (once every router is included).
    """

    def __init__(self) -> None:
        self._patterns: list[tuple[str, re.Pattern[str]]] | None = None

    def template_of(self, app: Starlette, path: str) -> str | None:
        """The template of `app`'s route that `path` matches, or None (no such page). A
        fixed path wins over a template, and fewer parameters over more, as OpenAPI
        matches paths (`/admin/products/new` is not a product's page)."""
        if self._patterns is None:
            templates = dict.fromkeys(template for template in whole_route_paths(app).values()
                                      if template.startswith("/"))
            self._patterns = sorted(((template, compile_path(template)[0])
                                     for template in templates),
                                    key=lambda found: found[0].count("{"))
        return next((template for template, pattern in self._patterns
                     if pattern.match(path)), None)
