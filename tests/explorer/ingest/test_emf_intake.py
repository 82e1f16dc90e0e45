"""The explorer's EMF intake, fed by AWS's own aws-embedded-metrics library over TCP (in a
process of its own: the library's configuration is process-wide): metrics arrive in the
metric store with their dimensions and UCUM units, the document as a log record linked
to its trace; bad lines are counted and the listener goes on."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import textwrap
from typing import Any

import httpx

from tests.support import eventually, explorer_with_intakes

XRAY_TRACE_ID = "1-5759e988-bd862e3fe1be46a994272793"

WRITING_PROCESS = textwrap.dedent(f"""
    import asyncio
    from aws_embedded_metrics import metric_scope

    @metric_scope
    async def place_order(metrics):
        metrics.set_namespace("kansoku")
        metrics.put_dimensions({{"route": "/orders"}})
        metrics.put_metric("orders.placed", 2, "Count")
        metrics.put_metric("checkout.latency", 120, "Milliseconds")
        metrics.put_metric("checkout.latency", 80, "Milliseconds")
        metrics.set_property("traceId", "{XRAY_TRACE_ID}")

    asyncio.run(place_order())
""")


async def test_emf_from_the_library_arrives_as_metrics_and_a_log_record() -> None:
    with explorer_with_intakes() as (url, app):
        port = app.state.settings.emf_port
        await asyncio.to_thread(
            subprocess.run, [sys.executable, "-c", WRITING_PROCESS], check=True, timeout=60,
            env={**os.environ, "AWS_EMF_ENVIRONMENT": "default",
                 "AWS_EMF_SERVICE_NAME": "orders",
                 "AWS_EMF_AGENT_ENDPOINT": f"tcp://127.0.0.1:{port}"})
        metrics: list[dict[str, Any]] = []
        async with httpx.AsyncClient(base_url=url) as http:
            async def arrived() -> bool:
                nonlocal metrics
                metrics = (await http.get("/api/metrics")).json()["data"]
                return len(metrics) >= 2

            await eventually(arrived, 20, "two EMF metrics")
        store = app.state.store
        points = await asyncio.to_thread(
            store.rows, "SELECT name, kind, unit, value, count, sum, CAST(attributes AS "
                        "VARCHAR) AS attributes, service FROM metric_points ORDER BY name")
        logs = await asyncio.to_thread(
            store.rows, "SELECT trace_id, service, CAST(attributes AS VARCHAR) AS attributes "
                        "FROM logs")
    latency, orders = points
    assert (latency["name"], latency["kind"], latency["unit"]) == \
        ("checkout.latency", "summary", "ms")
    assert (latency["count"], latency["sum"]) == (2, 200.0)
    assert (orders["name"], orders["kind"], orders["unit"], orders["value"]) == \
        ("orders.placed", "sum", "{count}", 2.0)
    assert orders["service"] == "orders"
    assert json.loads(orders["attributes"])["route"] == "/orders"
    assert json.loads(orders["attributes"])["cloudwatch.namespace"] == "kansoku"
    (log,) = logs
    assert log["trace_id"] == "5759e988bd862e3fe1be46a994272793"
    assert json.loads(log["attributes"])["telemetry.source"] == "emf"


async def test_bad_emf_lines_are_counted_and_the_listener_goes_on() -> None:
    with explorer_with_intakes() as (_, app):
        port = app.state.settings.emf_port
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(b"not json\n{\"no\": \"_aws\"}\n", ("127.0.0.1", port))
            sender.sendto(json.dumps({
                "_aws": {"Timestamp": 1_700_000_000_000, "CloudWatchMetrics": [
                    {"Namespace": "n", "Dimensions": [], "Metrics": [{"Name": "good"}]}]},
                "good": 1}).encode(), ("127.0.0.1", port))
        intake = app.state.intakes.emf

        async def counted() -> bool:
            return bool(intake.stored >= 2)

        await eventually(counted, 10, "the good line stored")
    assert dict(intake.bad) == {"the line is not JSON": 1, "no _aws.CloudWatchMetrics": 1}
