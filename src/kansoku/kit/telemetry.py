"""OpenTelemetry for a kansoku process: traces, metrics and logs over OTLP/HTTP.

The standard environment variables are honoured: `OTEL_EXPORTER_OTLP_ENDPOINT` (and the
per-signal variants) say where data goes, `OTEL_TRACES_SAMPLER` how much is kept,
`OTEL_BSP_*` / `OTEL_METRIC_EXPORT_INTERVAL` how it is batched,
`OTEL_METRICS_EXEMPLAR_FILTER` whether exemplars are kept (off by default),
`OTEL_RESOURCE_ATTRIBUTES` what is added to the resource, and `OTEL_SDK_DISABLED=true`
turns it all off. Spans and log records go as OTLP/JSON, which costs the services about
half what protobuf does to encode, written when they end so that only text waits in the
export queue (`kit/otlp_json.py`); `OTEL_EXPORTER_OTLP_PROTOCOL=
http/protobuf` (or the per-signal variable) asks for protobuf. Metrics, exported every
ten seconds, always go as protobuf.
`OTEL_TRACES_EXPORTER`, `OTEL_METRICS_EXPORTER` and `OTEL_LOGS_EXPORTER` accept `none` to
keep one signal local. `OTEL_PYTHON_ID_GENERATOR` names the trace id generator: `random`
(the default) or, with `pip install 'kansoku[aws]'`, `xray` (ids that start with the
time, as AWS X-Ray's own).

Propagation is W3C `traceparent` + `baggage` (the API's default; `OTEL_PROPAGATORS`
changes it for HTTP, e.g. `xray,tracecontext,baggage` with `kansoku[aws]`). The user id travels in
baggage and a span processor copies it onto every span as `enduser.id`; so does the mark
of generated traffic, `kansoku.synthetic`.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from dataclasses import dataclass, field
from importlib.metadata import entry_points

from opentelemetry import metrics, trace
from opentelemetry._logs import set_logger_provider
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor
from opentelemetry.processor.baggage import BaggageSpanProcessor
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator

from kansoku import __version__
from kansoku.kit import semconv
from kansoku.kit.approaches import Approach
from kansoku.kit.otlp_json import (
    JsonLogExporter,
    JsonLogHandler,
    JsonLogRecordProcessor,
    JsonSpanExporter,
    JsonSpanProcessor,
)
from kansoku.kit.pii import PersonalDataSpanProcessor
from kansoku.kit.settings import ConfigurationError

logger = logging.getLogger(__name__)

#: Baggage entries copied onto every span as attributes of the same name.
_STAMPED_BAGGAGE = frozenset({semconv.BAGGAGE_USER_ID, semconv.BAGGAGE_SYNTHETIC})


def exporter_enabled(signal: str) -> bool:
    """Whether `signal` ("traces", "metrics", "logs") is exported over OTLP."""
    return os.environ.get(f"OTEL_{signal.upper()}_EXPORTER", "otlp").strip().lower() != "none"


def otlp_json(signal: str) -> bool:
    """Whether `signal` ("traces" or "logs") is exported as OTLP/JSON (kansoku's default,
    see `kit/otlp_json.py`) rather than protobuf: `OTEL_EXPORTER_OTLP_<SIGNAL>_PROTOCOL`,
    else `OTEL_EXPORTER_OTLP_PROTOCOL`, set to `http/protobuf` asks for protobuf.

    Raises `ConfigurationError` for a protocol kansoku cannot send (gRPC)."""
    variable = next((name for name in (f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL",
                                       "OTEL_EXPORTER_OTLP_PROTOCOL")
                     if os.environ.get(name)), None)
    protocol = os.environ[variable].strip().lower() if variable else "http/json"
    if protocol not in ("http/json", "http/protobuf"):
        raise ConfigurationError(
            f"{variable} '{protocol}' is not supported: kansoku exports OTLP over HTTP — "
            "set it to http/json or http/protobuf")
    return protocol == "http/json"


#: The standard variable that names the trace id generator: an entry point in the
#: `opentelemetry_id_generator` group (the SDK's `random`; `xray` from
#: opentelemetry-sdk-extension-aws). The SDK reads it only under auto-instrumentation.
ID_GENERATOR_VARIABLE = "OTEL_PYTHON_ID_GENERATOR"


def id_generator() -> IdGenerator:
    """The trace id generator `OTEL_PYTHON_ID_GENERATOR` names (`random` when unset).

    Raises `ConfigurationError` for a name no installed package provides."""
    name = os.environ.get(ID_GENERATOR_VARIABLE, "").strip() or "random"
    found = entry_points(group="opentelemetry_id_generator", name=name)
    if not found:
        known = sorted(point.name for point in entry_points(group="opentelemetry_id_generator"))
        raise ConfigurationError(
            f"{ID_GENERATOR_VARIABLE} '{name}' is not an id generator kansoku has — use one "
            f"of: {', '.join(known)} (xray comes with pip install 'kansoku[aws]')")
    generator: IdGenerator = next(iter(found)).load()()
    return generator


def sdk_disabled() -> bool:
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


@dataclass
class Telemetry:
    """The providers of one process. Pass them to instrumentations; shut down on exit."""

    service: str
    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None
    logger_provider: LoggerProvider | None = None
    log_handlers: list[logging.Handler] = field(default_factory=list)
    #: A vendor's instrumentation running instead of the providers (kit/approaches).
    approach: Approach | None = None

    @property
    def enabled(self) -> bool:
        return self.tracer_provider is not None

    def shutdown(self) -> None:
        """Flush what is buffered and stop exporting. Safe to call twice.

        The three providers flush at once, so a backend that has gone away costs one
        export timeout at exit, not three.
        """

        def shut_down(provider: TracerProvider | MeterProvider | LoggerProvider) -> None:
            try:
                provider.shutdown()
            except Exception:  # pragma: no cover - a dead backend must not block exit
                logger.warning("telemetry provider did not shut down cleanly", exc_info=True)

        if self.approach is not None:
            self.approach.shutdown()
        providers = [p for p in (self.tracer_provider, self.meter_provider,
                                 self.logger_provider) if p is not None]
        threads = [threading.Thread(target=shut_down, args=(p,)) for p in providers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.tracer_provider = self.meter_provider = self.logger_provider = None


def setup_telemetry(service: str, *, prometheus: bool = True) -> Telemetry:
    """Create this process's providers, register them globally and return them.

    Call once per process, before the app is built: instrumentations and the JSON log
    formatter read the global providers and propagators.
    """
    if sdk_disabled():
        return Telemetry(service)
    resource = Resource.create(
        {
            semconv.SERVICE_NAME: service,
            semconv.SERVICE_NAMESPACE: semconv.NAMESPACE,
            semconv.SERVICE_VERSION: __version__,
            "service.instance.id": uuid.uuid4().hex,
            semconv.PROCESS_PID: os.getpid(),
        }
    )

    tracer_provider = TracerProvider(resource=resource, id_generator=id_generator())
    # Stamp the user id from baggage on every span, in every service, with no code in
    # the handlers: the seeds' "user id as a custom attribute". Generated traffic (load,
    # synthetic monitors) is marked the same way, so it can be told from real users.
    tracer_provider.add_span_processor(BaggageSpanProcessor(_STAMPED_BAGGAGE.__contains__))
    if exporter_enabled("traces"):
        # E-mail addresses masked in what is exported (kit.pii).
        tracer_provider.add_span_processor(PersonalDataSpanProcessor(
            JsonSpanProcessor(JsonSpanExporter()) if otlp_json("traces")
            else BatchSpanProcessor(OTLPSpanExporter())))
    trace.set_tracer_provider(tracer_provider)

    readers: list[MetricReader] = []
    if exporter_enabled("metrics"):
        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
    if prometheus:
        readers.append(PrometheusMetricReader())
    # Exemplars (a trace id kept beside a measurement) cost work on every measurement and
    # nothing here reads them: off unless OTEL_METRICS_EXEMPLAR_FILTER asks for them.
    exemplar_filter = (None if os.environ.get("OTEL_METRICS_EXEMPLAR_FILTER")
                       else AlwaysOffExemplarFilter())
    meter_provider = MeterProvider(resource=resource, metric_readers=readers,
                                   exemplar_filter=exemplar_filter)
    metrics.set_meter_provider(meter_provider)
    # CPU, memory, threads and GC of this process, read when metrics are collected.
    SystemMetricsInstrumentor(config={name: None for name in semconv.RUNTIME_METRICS}
                              ).instrument(meter_provider=meter_provider)

    logger_provider = LoggerProvider(resource=resource)
    handlers: list[logging.Handler] = []
    if exporter_enabled("logs"):
        if otlp_json("logs"):
            # Records go from the standard library straight to OTLP/JSON; the provider
            # still owns the processor (flush and shutdown go through it).
            log_processor = JsonLogRecordProcessor(JsonLogExporter())
            logger_provider.add_log_record_processor(log_processor)
            handlers.append(JsonLogHandler(resource, log_processor))
        else:
            logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
            handlers.append(LoggingHandler(logger_provider=logger_provider))
    set_logger_provider(logger_provider)

    return Telemetry(service, tracer_provider, meter_provider, logger_provider, handlers)
