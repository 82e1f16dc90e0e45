"""Any OTLP producer, not only kansoku's services: the OpenTelemetry Python SDK's own
exporters, in this test process, send traces, metrics and logs to a real explorer
process (`kansoku serve explorer`), which stores them and answers queries about them."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from tests.support import free_ports


@pytest.fixture(scope="module")
def explorer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A running explorer: (its API URL, its OTLP URL)."""
    api_port, otlp_port = free_ports(2)
    env = {**os.environ, "KANSOKU_EXPLORER_PORT": str(api_port),
           "KANSOKU_EXPLORER_OTLP_PORT": str(otlp_port),
           "KANSOKU_EXPLORER_DB_PATH": str(tmp_path_factory.mktemp("explorer") / "t.duckdb")}
    log = (tmp_path_factory.mktemp("explorer-log") / "explorer.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "kansoku", "serve", "explorer"],
                               env=env, stdout=log, stderr=subprocess.STDOUT)
    api, otlp = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{otlp_port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{api}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            raise AssertionError("the explorer did not start")
        yield api, otlp
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def test_the_sdks_own_exporters_are_stored_and_queryable(explorer: tuple[str, str]) -> None:
    api, otlp = explorer
    service = f"outsider-{uuid.uuid4().hex[:6]}"
    resource = Resource.create({"service.name": service})

    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{otlp}/v1/traces")))
    with tracer_provider.get_tracer("outsider").start_as_current_span(
            "checkout", attributes={"enduser.id": "u-42"}) as span:
        trace_id = format(span.get_span_context().trace_id, "032x")
        with tracer_provider.get_tracer("outsider").start_as_current_span("charge card"):
            logger_provider = LoggerProvider(resource=resource)
            logger_provider.add_log_record_processor(
                BatchLogRecordProcessor(OTLPLogExporter(endpoint=f"{otlp}/v1/logs")))
            outsider_log = logging.getLogger(f"outsider.{service}")
            outsider_log.propagate = False
            outsider_log.addHandler(LoggingHandler(logger_provider=logger_provider))
            outsider_log.warning("card charged slowly")
    meter_provider = MeterProvider(resource=resource, metric_readers=[
        PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=f"{otlp}/v1/metrics"),
                                      export_interval_millis=60_000)])
    meter_provider.get_meter("outsider").create_counter("outsider.orders").add(3)

    assert tracer_provider.force_flush(10_000)
    assert logger_provider.force_flush(10_000)
    assert meter_provider.force_flush(10_000)
    for provider in (tracer_provider, logger_provider, meter_provider):
        provider.shutdown()

    found = httpx.get(f"{api}/api/traces", params={"service": service}).json()["data"]
    assert [trace["traceID"] for trace in found] == [trace_id]
    assert sorted(span["operationName"] for span in found[0]["spans"]) == [
        "charge card", "checkout"]
    logs = httpx.get(f"{api}/api/logs", params={"service": service}).json()["data"]
    assert [(log["body"], log["trace_id"]) for log in logs] == [
        ("card charged slowly", trace_id)]
    stats = httpx.get(f"{api}/api/stats").json()
    assert stats["received"]["metric_points"] >= 1
    assert service in stats["services"]


def test_bad_payloads_get_statuses_and_the_explorer_keeps_serving(
        explorer: tuple[str, str]) -> None:
    api, otlp = explorer
    answers = [
        httpx.post(f"{otlp}/v1/traces", content=b"\x0a\xff\xff", headers={
            "Content-Type": "application/x-protobuf"}).status_code,
        httpx.post(f"{otlp}/v1/logs", content=b"{not json", headers={
            "Content-Type": "application/json"}).status_code,
        httpx.post(f"{otlp}/v1/metrics", content=b"x", headers={
            "Content-Type": "text/plain"}).status_code,
        httpx.post(f"{otlp}/v1/traces", content=b"\0" * (17 * 1024 * 1024), headers={
            "Content-Type": "application/x-protobuf"}).status_code,
    ]
    assert answers == [400, 400, 415, 413]
    assert httpx.get(f"{api}/health/ready").status_code == 200


def test_the_store_is_a_file_in_the_data_directory(explorer: tuple[str, str],
                                                   tmp_path_factory: pytest.TempPathFactory
                                                   ) -> None:
    files = list(Path(tmp_path_factory.getbasetemp()).glob("explorer*/t.duckdb"))
    assert files and files[0].stat().st_size > 0
