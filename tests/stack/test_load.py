"""Generated traffic on a running stack: a short `kansoku load` measures every journey
step without a failure, and its requests reach the explorer marked as load (through
NATS into the worker, too); `kansoku synth` runs each journey into one trace with the
services' spans under the journey's root; the scheduled runner keeps running them and
serves its latest results."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest

from kansoku.kit import semconv
from kansoku.kit.telemetry import Telemetry
from kansoku.loadgen.outcomes import JOURNEY_NAMES, SKIPPED, SUCCESS
from kansoku.loadgen.settings import Settings
from kansoku.loadgen.steps import STEP_NAMES, split_step
from kansoku.loadgen.synthetics import create_app
from tests.browser import missing_chromium
from tests.stack.test_up import RunningStack
from tests.support import eventually, run_cli, serve_in_thread

pytestmark = pytest.mark.stack


def tags(span: dict[str, Any]) -> dict[str, Any]:
    return {tag["key"]: tag["value"] for tag in span["tags"]}


def parsed(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    document: dict[str, Any] = json.loads(result.stdout)
    return document


async def test_a_short_load_run_measures_every_step_and_is_marked_as_load(
        web_shop: RunningStack) -> None:
    summary = parsed(run_cli("load", "--users", "5", "--spawn-rate", "5", "--duration",
                             "15s", "--json", env=web_shop.env, timeout=120))
    steps = {(row["journey"], row["step"]): row for row in summary["steps"]}
    assert list(steps) == [split_step(name) for name in STEP_NAMES]
    for (journey, step), row in steps.items():
        assert row["requests"] > 0, (journey, step)
        assert row["failures"] == 0, (journey, step, summary["errors"])
        assert row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"], (journey, step)
    assert summary["total"]["requests"] == sum(row["requests"] for row in steps.values())
    assert summary["total"]["failures"] == 0 and summary["errors"] == []

    # The gateway's spans of that traffic carry the mark, and so do the services' below.
    explorer = web_shop.url("explorer")
    found: list[dict[str, Any]] = []

    async def load_traces_arrived() -> bool:
        async with httpx.AsyncClient(timeout=10) as http:
            answer = await http.get(f"{explorer}/api/traces", params={
                "service": "gateway", "lookback": "10m", "limit": 50,
                "tags": json.dumps({semconv.BAGGAGE_SYNTHETIC: "load"})})
        found[:] = answer.json()["data"]
        return len(found) >= 20

    await eventually(load_traces_arrived, 30, "traces of the load run in the explorer")
    services = set()
    for trace in found:
        for span in trace["spans"]:
            assert tags(span).get(semconv.BAGGAGE_SYNTHETIC) == "load", span["operationName"]
            services.add(trace["processes"][span["processID"]]["serviceName"])
    assert {"gateway", "catalog"} <= services

    # The mark crosses NATS with the trace context: the worker's e-mail for a paid load
    # order is load too, down to the spans of its own work.
    worker_spans: list[dict[str, Any]] = []

    async def worker_marked() -> bool:
        async with httpx.AsyncClient(timeout=10) as http:
            answer = await http.get(f"{explorer}/api/traces", params={
                "service": "worker", "lookback": "10m", "limit": 20,
                "tags": json.dumps({semconv.BAGGAGE_SYNTHETIC: "load"})})
        worker_spans[:] = [span for trace in answer.json()["data"] for span in trace["spans"]
                           if trace["processes"][span["processID"]]["serviceName"]
                           == "worker"]
        return any(span["operationName"] == "order.paid process" for span in worker_spans)

    await eventually(worker_marked, 30, "the worker's spans of load orders, marked as load")
    for span in worker_spans:
        assert tags(span).get(semconv.BAGGAGE_SYNTHETIC) == "load", span["operationName"]


async def test_synth_runs_each_journey_into_one_trace_through_the_services(
        web_shop: RunningStack) -> None:
    results = parsed(run_cli("synth", "--json", env=web_shop.env, timeout=120))["data"]
    assert [result["journey"] for result in results] == list(JOURNEY_NAMES)
    for result in results:
        expected = SKIPPED if result["journey"] == "storefront" and missing_chromium() \
            else SUCCESS
        assert result["outcome"] == expected, result
    explorer = web_shop.url("explorer")
    for result in results:
        if result["outcome"] == SKIPPED:
            continue
        trace: dict[str, Any] = {}

        async def arrived(trace_id: str = result["trace_id"],
                          trace: dict[str, Any] = trace) -> bool:
            async with httpx.AsyncClient(timeout=10) as http:
                answer = await http.get(f"{explorer}/api/traces/{trace_id}")
            if answer.status_code != 200:
                return False
            trace.update(answer.json()["data"][0])
            names = {trace["processes"][span["processID"]]["serviceName"]
                     for span in trace["spans"]}
            return {"synthetics", "gateway", "catalog"} <= names

        await eventually(arrived, 30, f"the trace of synthetic {result['journey']}")
        spans = {span["spanID"]: span for span in trace["spans"]}
        service = {span_id: trace["processes"][span["processID"]]["serviceName"]
                   for span_id, span in spans.items()}
        (root,) = [span for span in spans.values() if not span["references"]]
        assert root["operationName"] == f"synthetic {result['journey']}"
        assert service[root["spanID"]] == "synthetics"
        assert tags(root)[semconv.SYNTHETIC_OUTCOME] == SUCCESS

        def ancestors(span: dict[str, Any], spans: dict[str, Any] = spans) -> list[str]:
            chain = []
            while span["references"]:
                span = spans[span["references"][0]["spanID"]]
                chain.append(span["spanID"])
            return chain

        gateway_spans = [span for span_id, span in spans.items()
                         if service[span_id] == "gateway"]
        assert gateway_spans
        for span in gateway_spans:
            assert root["spanID"] in ancestors(span)
            assert tags(span)[semconv.BAGGAGE_SYNTHETIC] == "synthetic"
        steps = {span["operationName"] for span in spans.values()
                 if span["operationName"].startswith("step ")}
        assert steps == {f"step {step}" for step in result["steps"]}


async def test_the_scheduled_runner_keeps_running_and_serves_its_latest_runs(
        web_shop: RunningStack) -> None:
    settings = Settings(gateway_url=web_shop.url("gateway"), interval_seconds=0.5,
                        journeys="browse", port=0)
    app = create_app(settings, Telemetry("synthetics"))
    with serve_in_thread(app, lifespan="on") as url:
        runs: list[dict[str, Any]] = []

        async def ran_twice() -> bool:
            async with httpx.AsyncClient(timeout=10) as http:
                runs[:] = (await http.get(f"{url}/runs")).json()["data"]
            return len(runs) >= 2

        await eventually(ran_twice, 30, "two scheduled runs")
        async with httpx.AsyncClient(timeout=10) as http:
            assert (await http.get(f"{url}/health/ready")).status_code == 200
    assert all(run["journey"] == "browse" and run["outcome"] == SUCCESS for run in runs)
    assert runs[0]["started_at"] > runs[1]["started_at"]  # newest first


def test_web_ui_on_loopback_and_ctrl_c_still_prints_the_summary(
        web_shop: RunningStack) -> None:
    env = {**web_shop.env, "COLUMNS": "160"}
    run = subprocess.Popen([sys.executable, "-m", "kansoku", "load", "--web", "-u", "2",
                            "-t", "5m"], env=env, text=True, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
    try:
        assert run.stdout is not None
        lines: list[str] = []
        while not any("web UI: " in line for line in lines):
            line = run.stdout.readline()
            assert line, f"no web UI line in {lines}"
            lines.append(line)
        web = lines[-1].split("web UI: ")[1].strip()
        assert web.startswith("http://127.0.0.1:")
        deadline = time.monotonic() + 20
        state = None
        while state != "running" and time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                state = httpx.get(f"{web}/stats/requests", timeout=5).json()["state"]
            time.sleep(0.5)
        assert state == "running", "Locust's web UI did not answer"
        time.sleep(3)
        run.send_signal(signal.SIGINT)  # what a terminal's Ctrl-C sends
        out, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 0, err
    assert "Stopping" in out and "Stopped early" in out
    assert "kansoku load: summary" in out and "browse" in out and "none failed" in out
    assert "Traceback" not in err
