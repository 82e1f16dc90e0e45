"""The explorer: `create_app` builds it, `kansoku serve explorer` runs it on two ports."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from kansoku.drills.scoring import ATTEMPT_FILE
from kansoku.explorer import SERVICE, auth, pages, stats
from kansoku.explorer.alerts import routes as alerts
from kansoku.explorer.alerts.evaluator import AlertEvaluator
from kansoku.explorer.alerts.notify import Notifier
from kansoku.explorer.approaches import routes as approaches
from kansoku.explorer.drills import routes as drills
from kansoku.explorer.ingest import listeners as intakes
from kansoku.explorer.ingest import routes as ingest
from kansoku.explorer.logs import routes as logs
from kansoku.explorer.map import routes as service_map
from kansoku.explorer.metrics import routes as metrics
from kansoku.explorer.problems import routes as problems
from kansoku.explorer.problems.detector import ProblemDetector, Thresholds
from kansoku.explorer.rum import routes as rum
from kansoku.explorer.settings import Settings
from kansoku.explorer.slos import routes as slos
from kansoku.explorer.slos.budget import burn
from kansoku.explorer.store import TelemetryStore
from kansoku.explorer.traces import routes as traces
from kansoku.faults.catalogue import FLAG_KINDS
from kansoku.kit.app import build_service_app
from kansoku.kit.flags import FaultFlags
from kansoku.kit.logging import setup_logging
from kansoku.kit.telemetry import Telemetry

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    credentials = auth.credentials_for(
        settings.auth, settings.password.get_secret_value() if settings.password else None,
        settings.token.get_secret_value() if settings.token else None)
    # The explorer does not trace itself: its spans would be sent to itself, and every
    # export would produce more to export.
    setup_logging(SERVICE, settings.effective_log_level)
    store = TelemetryStore(settings.db_path, max_pending_rows=settings.max_pending_rows,
                           memory_limit=settings.memory_limit, threads=settings.threads)

    async def enforce_retention() -> None:
        while True:
            await asyncio.sleep(settings.retention_check_seconds)
            try:
                deleted = await asyncio.to_thread(
                    store.enforce_retention, max_age_seconds=settings.retention_hours * 3600,
                    max_bytes=settings.retention_bytes)
                if deleted:
                    logger.info("retention: deleted %d old rows", deleted)
            except Exception:
                logger.exception("retention failed; trying again later")

    async def close_store() -> None:
        await asyncio.to_thread(store.close)

    # The X-Ray daemon's, the CloudWatch agent's and the New Relic collector's ports
    # (docs/approaches.md).
    async def open_intakes() -> None:
        app.state.intakes = await intakes.start(store, settings.host, settings.xray_port,
                                                settings.emf_port, settings.newrelic_port)

    async def close_intakes() -> None:
        if app.state.intakes is not None:
            app.state.intakes.close()

    detector = ProblemDetector(
        store, thresholds(settings), check_seconds=settings.problems_check_seconds,
        grace_seconds=settings.problems_grace_seconds,
        orphan_seconds=settings.problems_orphan_seconds,
        baseline_check_seconds=settings.problems_baseline_check_seconds,
    ) if settings.problems_enabled else None

    evaluator = AlertEvaluator(
        store, settings.alerts_file, burn=burn, check_seconds=settings.alerts_check_seconds,
        resolved_keep_seconds=settings.alerts_resolved_keep_seconds,
        notifier=Notifier(public_url=settings.public_url
                          or f"http://{settings.host}:{settings.port}",
                          smtp_host=settings.alerts_smtp_host,
                          smtp_port=settings.alerts_smtp_port, language=settings.language),
    ) if settings.alerts_enabled else None
    background = [enforce_retention, *([detector.run_forever] if detector else []),
                  *([evaluator.run_forever] if evaluator else [])]

    app = build_service_app(
        service=SERVICE,
        settings=settings,
        telemetry=Telemetry(SERVICE),
        fault_flags=FaultFlags(settings.flags_file, SERVICE, FLAG_KINDS),
        description="Receives OTLP (traces, metrics, logs) into an embedded DuckDB store "
                    "and answers questions about it: the Jaeger query API, RED, the "
                    "service map, logs, the problems it detects in the traces, and the "
                    "alerts and SLOs it evaluates.",
        # Exports arrive every few seconds from every service: not worth a log line each.
        quiet_paths=("/v1/",),
        # Its pages show the API's problems to people (explorer.js), in their language.
        problems_in_readers_language=True,
        background=background,
        on_startup=[open_intakes],
        on_shutdown=[close_intakes, close_store],
    )
    app.state.intakes = None
    app.state.store = store
    app.state.problems = detector
    app.state.alerts = evaluator
    app.state.slos = evaluator  # the rules file's SLOs, which the evaluator reads
    app.state.drill_file = settings.drill_file or (
        settings.flags_file.parent / ATTEMPT_FILE if settings.flags_file else None)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.include_router(pages.router)
    # The features' routes, each feature a package of its own (docs/architecture.md).
    for feature in (ingest, traces, service_map, metrics, logs, rum, problems, alerts,
                    slos, drills, approaches, stats):
        app.include_router(feature.router)
    auth.install(app, credentials)
    return app


def thresholds(settings: Settings) -> Thresholds:
    """The detection rules' thresholds, from the explorer's settings."""
    return Thresholds(
        n_plus_one_db_min_spans=settings.n_plus_one_db_min_spans,
        n_plus_one_db_min_total_ms=settings.n_plus_one_db_min_total_ms,
        n_plus_one_db_many_spans=settings.n_plus_one_db_many_spans,
        slow_db_query_ms=settings.slow_db_query_ms,
        consecutive_db_min_saved_ms=settings.consecutive_db_min_saved_ms,
        consecutive_db_min_ratio=settings.consecutive_db_min_ratio,
        consecutive_db_min_span_ms=settings.consecutive_db_min_span_ms,
        n_plus_one_http_min_calls=settings.n_plus_one_http_min_calls,
        recent_seconds=settings.problems_recent_seconds,
        baseline_seconds=settings.problems_baseline_seconds,
        error_hotspot_min_requests=settings.error_hotspot_min_requests,
        error_hotspot_min_errors=settings.error_hotspot_min_errors,
        error_hotspot_min_rate=settings.error_hotspot_min_rate,
        error_hotspot_factor=settings.error_hotspot_factor,
        slow_endpoint_min_requests=settings.slow_endpoint_min_requests,
        slow_endpoint_baseline_min_requests=settings.slow_endpoint_baseline_min_requests,
        slow_endpoint_factor=settings.slow_endpoint_factor,
        slow_endpoint_min_extra_ms=settings.slow_endpoint_min_extra_ms,
        latest_seconds=settings.problems_latest_seconds,
        flag_min_spans=settings.fault_flag_min_spans,
        flag_window_seconds=settings.fault_flag_window_seconds,
        memory_min_mib_per_minute=settings.memory_growth_min_mib_per_minute,
        memory_min_growth_mib=settings.memory_growth_min_mib,
        memory_window_seconds=settings.memory_growth_window_seconds,
        cpu_min_cores=settings.cpu_saturation_min_cores,
        cpu_factor=settings.cpu_saturation_factor,
        cpu_window_seconds=settings.cpu_saturation_window_seconds,
    )
