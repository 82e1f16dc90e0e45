"""A payments app traced into memory, as the fault and cancellation tests use it."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from kansoku.faults import flagfile
from kansoku.kit.telemetry import Telemetry
from kansoku.services.payments.app import create_app
from kansoku.services.payments.settings import Settings
from tests.services.payments.test_api import TOKENS
from tests.support import migrate


async def traced_payments(postgres_url: str, nats_url: str, flags_file: Path
                          ) -> tuple[FastAPI, InMemorySpanExporter]:
    """Payments migrated, its flags all off, its spans kept in the returned exporter."""
    await migrate(postgres_url, "payments")
    flagfile.reset(flags_file)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = create_app(Settings(database_url=postgres_url, nats_url=nats_url,
                              flags_file=flags_file),
                     Telemetry("payments", provider, MeterProvider()))
    app.state.tokens = TOKENS.verifier
    return app, exporter
