"""The instrumentation switch: which approach a service runs (the platform-wide variable,
the service's own over it), the refusals, and that a service on X-Ray starts no
OpenTelemetry SDK (in a process of its own: the approach sets process-wide state)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict

from kansoku.kit.app import start_instrumentation
from kansoku.kit.approaches import Instrumentation
from kansoku.kit.settings import ServiceSettings, invalid_setting_message


class ProbeSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="KANSOKU_PROBE_", extra="ignore")


def test_the_platform_wide_choice_applies_and_a_services_own_wins(
        clean_env: pytest.MonkeyPatch) -> None:
    assert ProbeSettings().effective_instrumentation == Instrumentation.OTEL
    clean_env.setenv("KANSOKU_INSTRUMENTATION", "xray")
    assert ProbeSettings().effective_instrumentation == Instrumentation.XRAY
    clean_env.setenv("KANSOKU_PROBE_INSTRUMENTATION", "none")
    assert ProbeSettings().effective_instrumentation == Instrumentation.NONE


def test_an_empty_services_own_choice_follows_the_platforms(
        clean_env: pytest.MonkeyPatch) -> None:
    # Compose passes every service's variable through, empty when the shell has none.
    clean_env.setenv("KANSOKU_INSTRUMENTATION", "newrelic")
    clean_env.setenv("KANSOKU_PROBE_INSTRUMENTATION", " ")
    assert ProbeSettings().effective_instrumentation == Instrumentation.NEWRELIC


def test_an_unknown_approach_is_refused_naming_the_variable(
        clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("KANSOKU_PROBE_INSTRUMENTATION", "datadog")
    with pytest.raises(ValidationError) as refused:
        ProbeSettings()
    message = invalid_setting_message(refused.value, "KANSOKU_PROBE_")
    assert message.startswith("KANSOKU_PROBE_INSTRUMENTATION is not valid")
    assert "'otel', 'xray', 'newrelic' or 'none'" in message


def test_none_starts_nothing() -> None:
    telemetry = start_instrumentation("probe", Instrumentation.NONE)
    assert not telemetry.enabled and telemetry.approach is None
    assert telemetry.meter_provider is None and telemetry.logger_provider is None


#: Starts the X-Ray approach as a service does and reports what is installed.
XRAY_PROCESS = textwrap.dedent("""
    import json, threading
    from opentelemetry import metrics, trace
    from kansoku.kit.app import start_instrumentation
    from kansoku.kit.approaches import Instrumentation

    telemetry = start_instrumentation("probe", Instrumentation.XRAY)
    span = trace.get_tracer("probe").start_span("would be exported by an SDK")
    print(json.dumps({
        "enabled": telemetry.enabled,
        "approach": telemetry.approach.instrumentation,
        "tracer_provider": type(trace.get_tracer_provider()).__name__,
        "meter_provider": type(metrics.get_meter_provider()).__name__,
        "records_with": metrics.get_meter("probe").create_counter("c")._record.__name__,
        "span_recording": span.is_recording(),
        "threads": sorted(thread.name for thread in threading.enumerate()),
    }))
""")


def test_a_service_on_xray_starts_no_opentelemetry_sdk() -> None:
    done = subprocess.run([sys.executable, "-c", XRAY_PROCESS], capture_output=True,
                          text=True, timeout=60, check=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path),
                               "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["enabled"] is False and found["approach"] == "xray"
    # The API's own placeholder, not the SDK's provider: nothing records or exports.
    assert found["tracer_provider"] == "ProxyTracerProvider"
    assert found["span_recording"] is False
    # Metrics through the API go to EMF, with no SDK reader or exporter thread.
    assert found["meter_provider"] == "RecordingMeterProvider"
    assert found["records_with"] == "write_emf"
    assert found["threads"] == ["MainThread"]


#: Starts the New Relic approach as a service does and reports what is installed.
NEWRELIC_PROCESS = textwrap.dedent("""
    import json
    from opentelemetry import metrics, trace
    from kansoku.kit.app import start_instrumentation
    from kansoku.kit.approaches import Instrumentation

    telemetry = start_instrumentation("probe", Instrumentation.NEWRELIC)
    import newrelic.agent
    span = trace.get_tracer("probe").start_span("would be exported by an SDK")
    settings = newrelic.agent.global_settings()
    print(json.dumps({
        "enabled": telemetry.enabled,
        "approach": telemetry.approach.instrumentation,
        "tracer_provider": type(trace.get_tracer_provider()).__name__,
        "meter_provider": type(metrics.get_meter_provider()).__name__,
        "records_with": metrics.get_meter("probe").create_counter("c")._record.__name__,
        "span_recording": span.is_recording(),
        "app_name": settings.app_name, "host": settings.host, "port": settings.port,
        "sampler": settings.distributed_tracing.sampler._root,
    }))
""")


def test_a_service_on_new_relic_starts_the_agent_and_no_opentelemetry_sdk() -> None:
    done = subprocess.run([sys.executable, "-c", NEWRELIC_PROCESS], capture_output=True,
                          text=True, timeout=60, check=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path),
                               "NEW_RELIC_PORT": "9443"})
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["enabled"] is False and found["approach"] == "newrelic"
    assert found["tracer_provider"] == "ProxyTracerProvider"
    assert found["span_recording"] is False
    # Metrics through the API become custom metrics and events.
    assert found["meter_provider"] == "RecordingMeterProvider"
    assert found["records_with"] == "record_measurement"
    # The agent reports to the explorer's intake, for the service, every request kept.
    assert (found["app_name"], found["host"], found["port"]) == ("probe", "127.0.0.1", 9443)
    assert found["sampler"] == "always_on"
