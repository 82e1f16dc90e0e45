"""Assemble a service's FastAPI app the same way for every service.

`build_service_app` wires what each service shares — problem+json errors, the request
middleware, health endpoints, `/metrics`, tracing of every route, the fault flags it is
given — and runs the service's own start-up and shutdown hooks inside one lifespan. On
shutdown it flushes telemetry last, so the spans of the final requests are not lost.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, assert_never

from fastapi import FastAPI, Response
from fastapi_offline import FastAPIOffline
from opentelemetry import metrics, trace
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.types import ASGIApp, Receive, Scope, Send

from kansoku import __version__
from kansoku.kit import approaches, semconv
from kansoku.kit.approaches import Approach, Instrumentation, propagation
from kansoku.kit.auth import TokenVerifier
from kansoku.kit.connections import Connections
from kansoku.kit.errors import install_problem_handlers
from kansoku.kit.flags import FaultFlags
from kansoku.kit.health import Check, health_router
from kansoku.kit.i18n import LanguageMiddleware
from kansoku.kit.logging import setup_logging
from kansoku.kit.middleware import DURATION_BUCKETS, ServiceRequestMiddleware, _is_quiet
from kansoku.kit.openapi import complete_openapi
from kansoku.kit.settings import ConfigurationError, ServiceSettings
from kansoku.kit.telemetry import Telemetry, setup_telemetry

logger = logging.getLogger(__name__)

#: How long one shutdown step (stopping the background tasks, or one hook) may take.
SHUTDOWN_STEP_SECONDS = 20.0

Hook = Callable[[], Awaitable[None]]

#: Recent FastAPI releases trace, time and log every request themselves once a global
#: tracer provider is set: a second server span (plus spans for dependencies and
#: serialisation), a second duration metric and more log records per request, for what
#: the kit's middleware already records. Switched off where FastAPI has the option.
_FASTAPI_OPTIONS: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters else {}
)

#: Probes, scrapes and static files: not traced, not timed and not access-logged, or they
#: would drown real traffic. (The API documentation's own files are added per app.)
UNOBSERVED_PATHS = ("/health", "/metrics", "/static/")

#: Where an app serves Swagger UI's and ReDoc's files, below its `docs_url`.
DOCS_ASSETS = "/assets"


def start_process_telemetry(service: str, settings: ServiceSettings) -> Telemetry:
    """Telemetry and JSON logging for this process, as `settings.effective_instrumentation`
    says (docs/approaches.md); call once, from `create_app`."""
    telemetry = start_instrumentation(service, settings.effective_instrumentation)
    setup_logging(service, settings.effective_log_level, extra_handlers=telemetry.log_handlers)
    return telemetry


def start_instrumentation(service: str, instrumentation: Instrumentation) -> Telemetry:
    """Start one approach in this process (never two agents at once): OpenTelemetry's
    providers, or a vendor's agent with no OpenTelemetry SDK, or nothing."""
    match instrumentation:
        case Instrumentation.OTEL:
            # With an X-Ray neighbour, X-Amzn-Trace-Id too (kit/approaches/propagation.py).
            propagation.install_propagators()
            return setup_telemetry(service)
        case Instrumentation.NONE:
            return Telemetry(service)
        case Instrumentation.XRAY:
            try:
                from kansoku.kit.approaches import xray  # the vendor's SDK: only when chosen
            except ImportError as exc:
                raise ConfigurationError(
                    "KANSOKU_INSTRUMENTATION=xray needs the AWS X-Ray SDK and "
                    "aws-embedded-metrics: pip install 'kansoku[approaches]'") from exc
            approach: Approach = xray.start(service)
            approaches.install(approach)
            return Telemetry(service, approach=approach)
        case Instrumentation.NEWRELIC:
            try:
                from kansoku.kit.approaches import newrelic  # the vendor's agent: only when chosen
            except ImportError as exc:
                raise ConfigurationError(
                    "KANSOKU_INSTRUMENTATION=newrelic needs the New Relic agent: "
                    "pip install 'kansoku[approaches]'") from exc
            approach = newrelic.start(service)
            approaches.install(approach)
            return Telemetry(service, approach=approach)
        case _:
            assert_never(instrumentation)


def _report_if_failed(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("background task %s stopped", task.get_name(),
                     exc_info=task.exception())


class ApproachMiddleware:
    """The running approach's own per-request middleware (`Approach.wrap`), as a class
    Starlette's `add_middleware` can build."""

    def __init__(self, app: ASGIApp, *, approach: Approach, quiet: Callable[[str], bool]
                 ) -> None:
        self.app = approach.wrap(app, quiet=quiet)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


async def _metrics() -> Response:
    """Prometheus text exposition of this process's metrics."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


def build_service_app(
    *,
    service: str,
    settings: ServiceSettings,
    telemetry: Telemetry,
    fault_flags: FaultFlags,
    description: str,
    checks: Mapping[str, Check] | None = None,
    connections: Connections | None = None,
    background: Sequence[Callable[[], Coroutine[Any, Any, None]]] = (),
    on_startup: Sequence[Hook] = (),
    on_shutdown: Sequence[Hook] = (),
    docs_url: str = "/docs",
    redoc_url: str = "/redoc",
    openapi_url: str = "/openapi.json",
    quiet_paths: tuple[str, ...] = (),
    body_limits: Mapping[Callable[..., Any], int] | None = None,
    problems_in_readers_language: bool = False,
) -> FastAPI:
    """The service's app with everything services share.

    `fault_flags` (every service reads them; the ones it acts on are its own business)
    are started first and closed last, and are `app.state.flags`, which the `Faults`
    dependency gives a route.
    `connections` are opened at start-up, checked by `/health/ready` and closed at
    shutdown; their database (if any) is `app.state.db`, which `kit.db.DbSession` uses.
    `background` coroutines (relays, sweeps) run from start-up, after the hooks, and are
    cancelled first at shutdown, before anything they use is closed.
    `quiet_paths` (prefixes) join `UNOBSERVED_PATHS`: served with no span, no duration and
    no access-log line.
    The API is documented at `docs_url` (Swagger UI) and `redoc_url` (ReDoc), both
    drawn from files the `fastapi-offline` package ships and the app serves itself at
    `docs_url` + `DOCS_ASSETS`: the pages work with no network, where FastAPI's own
    would load them from a CDN.
    A request body may be `settings.max_body_bytes` long (413 past it); `body_limits`
    gives the endpoints that take more (image uploads) their own limit.
    Problems stay English (programs read the shop's APIs) unless
    `problems_in_readers_language`: for an app whose pages show them (kit/errors.py).
    """
    checks = {**(checks or {}), **(connections.checks if connections else {})}
    if connections is not None:
        on_startup = [connections.open, *on_startup]
        on_shutdown = [*on_shutdown, connections.close]

    async def start_flags() -> None:
        fault_flags.start()

    async def stop_flags() -> None:
        fault_flags.close()

    on_startup = [start_flags, *on_startup]
    if telemetry.approach is not None:
        on_startup = [telemetry.approach.on_startup, *on_startup]
    on_shutdown = [*on_shutdown, stop_flags]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for hook in on_startup:
            await hook()
        tasks = [asyncio.create_task(run(), name=f"{service} background")
                 for run in background]
        for task in tasks:
            task.add_done_callback(_report_if_failed)
        logger.info("%s started on %s:%s", service, settings.host, settings.port)
        try:
            yield
        finally:
            logger.info("%s stopping", service)
            for task in tasks:
                task.cancel()
            # Each step is bounded: a step that never finishes is named in the log and
            # left behind, rather than keeping the process (or a test) from ending.
            if tasks:
                _, stuck = await asyncio.wait(tasks, timeout=SHUTDOWN_STEP_SECONDS)
                for task in stuck:
                    logger.error("background task %s did not stop within %g s",
                                 task.get_name(), SHUTDOWN_STEP_SECONDS)
            for hook in on_shutdown:
                try:
                    await asyncio.wait_for(hook(), SHUTDOWN_STEP_SECONDS)
                except TimeoutError:
                    logger.error("shutdown step %s did not finish within %g s",
                                 getattr(hook, "__qualname__", hook), SHUTDOWN_STEP_SECONDS)
                except Exception:
                    logger.exception("shutdown step failed")
            telemetry.shutdown()

    docs_assets = f"{docs_url}{DOCS_ASSETS}"
    app = FastAPIOffline(
        title=f"kansoku {service}",
        description=description,
        version=__version__,
        lifespan=lifespan,
        docs_url=docs_url,
        redoc_url=redoc_url,
        static_url=docs_assets,
        openapi_url=openapi_url,
        **_FASTAPI_OPTIONS,
    )
    app.state.settings = settings
    app.state.telemetry = telemetry
    app.state.flags = fault_flags
    # Every service checks access tokens itself, with identity's published keys.
    app.state.tokens = TokenVerifier(f"{settings.identity_url}/.well-known/jwks.json")
    app.state.db = connections.db if connections else None
    install_problem_handlers(app, in_readers_language=problems_in_readers_language)
    complete_openapi(app)
    tracer = duration = None
    if telemetry.enabled:
        tracer = trace.get_tracer("kansoku.kit.http", __version__,
                                  tracer_provider=telemetry.tracer_provider)
        duration = metrics.get_meter(
            "kansoku.kit.http", __version__, meter_provider=telemetry.meter_provider
        ).create_histogram(semconv.METRIC_HTTP_SERVER_DURATION, unit="s",
                           description="Duration of HTTP server requests.",
                           explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS))
    unobserved = (*UNOBSERVED_PATHS, f"{docs_assets}/", *quiet_paths)
    if telemetry.approach is not None:
        # Inside the kit's middleware: it sees an escaping exception before the kit
        # turns it into a 500 problem.
        app.add_middleware(ApproachMiddleware, approach=telemetry.approach,
                           quiet=lambda path: _is_quiet(path, unobserved))
    app.add_middleware(ServiceRequestMiddleware, tracer=tracer, duration=duration,
                       quiet_paths=unobserved,
                       max_body_bytes=settings.max_body_bytes, body_limits=body_limits)
    # Outermost: every page, problem and e-mail rendered for the request speaks the
    # reader's language (cookie, else Accept-Language); `/language/{ja|en}` switches it.
    app.add_middleware(LanguageMiddleware)
    app.include_router(
        health_router(service, __version__, checks, settings.readiness_timeout_seconds)
    )
    app.add_api_route("/metrics", _metrics, methods=["GET"], include_in_schema=False)
    return app
