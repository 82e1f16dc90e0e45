"""The live rules — a fault flag marking spans, memory growing, CPU saturated — and how
soon their problems are found and clear, with time under the test's control: telemetry
goes into a real explorer (spans posted as OTLP, metric points written through its
store) at chosen times, and the detector runs at chosen times after them."""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio

from kansoku.explorer.app import create_app
from kansoku.explorer.problems import queries
from kansoku.explorer.problems.detector import ProblemDetector, Thresholds, presented
from kansoku.explorer.problems.models import Problem, ProblemKind, ProblemState
from kansoku.explorer.settings import Settings
from kansoku.explorer.store import SPANS, Rows, TelemetryStore
from kansoku.kit import semconv
from tests.explorer.alerts.alerting import write_points, write_requests

S = 1_000_000_000
MIB = 1024 * 1024
#: How often the detector runs its window rules, as shipped.
CHECK_SECONDS = 15


def _now_on_the_second() -> int:
    return (time.time_ns() // S) * S


# --- fault flags: real spans through the explorer's OTLP endpoint ----------------------


def _attribute(key: str, value: str | int) -> dict[str, Any]:
    typed = {"intValue": str(value)} if isinstance(value, int) else {"stringValue": value}
    return {"key": key, "value": typed}


def _span(start_ns: int, name: str, *, status: int, flag: tuple[str, str] | None,
          route: str, ms: float = 25) -> dict[str, Any]:
    attributes = [_attribute(semconv.HTTP_ROUTE, route),
                  _attribute("http.response.status_code", status)]
    if flag is not None:
        attributes += [_attribute(semconv.FEATURE_FLAG_KEY, flag[0]),
                       _attribute(semconv.FEATURE_FLAG_VARIANT, flag[1])]
    return {"traceId": os.urandom(16).hex(), "spanId": os.urandom(8).hex(), "name": name,
            "kind": 2, "startTimeUnixNano": str(start_ns),
            "endTimeUnixNano": str(start_ns + int(ms * 1e6)),
            "status": {"code": 2 if status >= 500 else 0}, "attributes": attributes}


async def _post(client: httpx.AsyncClient, service: str, spans: list[dict[str, Any]],
                pid: int) -> None:
    body = {"resourceSpans": [{"resource": {"attributes": [
        _attribute(semconv.SERVICE_NAME, service), _attribute(semconv.PROCESS_PID, pid)]},
        "scopeSpans": [{"spans": spans}]}]}
    answer = await client.post("/v1/traces", content=json.dumps(body).encode(),
                               headers={"Content-Type": "application/json"})
    assert answer.status_code == 200, answer.text


@dataclass
class Explorer:
    client: httpx.AsyncClient
    store: TelemetryStore
    detector: ProblemDetector


@pytest_asyncio.fixture
async def explorer() -> AsyncIterator[Explorer]:
    """An explorer app with its store in memory and no background work: the test runs
    the detector (the app's own, with the shipped thresholds) itself."""
    app = create_app(Settings(db_path=":memory:"))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://explorer") as client:
            yield Explorer(client, app.state.store, app.state.problems)
    finally:
        app.state.store.close()


def _problems(store: TelemetryStore, now_ns: int, kind: ProblemKind) -> list[Problem]:
    return [presented(problem, now_ns) for problem in queries.problems(store, since_ns=0)
            if problem.kind == kind]


async def test_a_flag_failing_a_quarter_of_payments_is_named_within_a_minute(
        explorer: Explorer) -> None:
    # The README's example under the default load: paymentFailure at 25 % and about 27
    # charges a minute. The flag marks the charges it fails (every fourth here), as
    # `ActiveFault.fail` does; orders' payment step fails with them, unmarked.
    start = _now_on_the_second() - 150 * S
    every = 60 * S // 27
    charges, payments = [], []
    for number in range(150 * S // every):
        at = start + number * every
        flag_on = at < start + 90 * S  # turned off after a minute and a half
        fails = flag_on and number % 4 == 3
        charges.append(_span(at + 5_000_000, "POST /charges", route="/charges",
                             status=500 if fails else 201,
                             flag=("paymentFailure", "25%") if fails else None))
        payments.append(_span(at, "POST /orders/{order_id}/payment",
                              route="/orders/{order_id}/payment",
                              status=503 if fails else 201, flag=None, ms=40))
    await _post(explorer.client, "payments", charges, pid=4242)
    await _post(explorer.client, "orders", payments, pid=4343)

    named_at = None
    for seconds in range(CHECK_SECONDS, 61, CHECK_SECONDS):
        explorer.detector.check_live(now_ns=start + seconds * S)
        if _problems(explorer.store, start + seconds * S, ProblemKind.FAULT_FLAG):
            named_at = seconds
            break
    assert named_at is not None and named_at <= 60, "the flag was not named within 60 s"

    answer = await explorer.client.get("/api/problems", params={"kind": "fault-flag"})
    (problem,) = answer.json()["data"]
    assert problem["service"] == "payments" and problem["operation"] == "POST /charges"
    assert problem["details"]["flag"] == "paymentFailure"
    assert problem["details"]["variant"] == "25%"
    assert problem["headline"].startswith("fault flag paymentFailure=25% in payments "
                                          "POST /charges: ")
    assert problem["headline"].endswith("marked spans failed, 0 of the "
                                        f"{problem['details']['unmarked_spans']} others")
    assert "feature_flag.key=paymentFailure" in problem["explanation"]
    assert "kansoku flags set paymentFailure off" in problem["fix"]
    assert problem["details"]["failed"] == problem["details"]["spans"] >= 2
    # Only the flag's spans: orders' failures carry no flag, so no problem of orders.
    assert all(p["service"] == "payments" for p in answer.json()["data"])

    # Ongoing while the flag acts; cleared within a minute of turning it off (at 90 s).
    for seconds in range(named_at + CHECK_SECONDS, 91, CHECK_SECONDS):
        explorer.detector.check_live(now_ns=start + seconds * S)
        (ongoing,) = _problems(explorer.store, start + seconds * S, ProblemKind.FAULT_FLAG)
        assert ongoing.state == ProblemState.ONGOING, seconds
    cleared_at = None
    for seconds in range(90 + CHECK_SECONDS, 151, CHECK_SECONDS):
        explorer.detector.check_live(now_ns=start + seconds * S)
        (after,) = _problems(explorer.store, start + seconds * S, ProblemKind.FAULT_FLAG)
        if after.state == ProblemState.CLEARED:
            cleared_at = seconds
            break
    assert cleared_at is not None and cleared_at - 90 <= 60, cleared_at
    assert "Clears when no span has carried the flag for 30 s" in after.clears_when


async def test_a_flag_that_slows_spans_is_named_with_its_effect(explorer: Explorer) -> None:
    start = _now_on_the_second() - 30 * S
    spans = [_span(start + number * S, "POST /charges", route="/charges", status=201,
                   flag=("paymentLatency", "1s") if number % 2 else None,
                   ms=1020 if number % 2 else 20) for number in range(30)]
    await _post(explorer.client, "payments", spans, pid=4242)
    explorer.detector.check_live(now_ns=start + 30 * S)
    (problem,) = _problems(explorer.store, start + 30 * S, ProblemKind.FAULT_FLAG)
    assert problem.details["variant"] == "1s" and problem.details["failed"] == 0
    assert "p95 1.02 s" in problem.headline
    assert "against 20 ms for the spans it did not mark" in problem.explanation


# --- memory and CPU: process metrics written through the store ------------------------


@pytest.fixture
def store() -> Iterator[TelemetryStore]:
    opened = TelemetryStore(":memory:")
    yield opened
    opened.close()


def _process_spans(store: TelemetryStore, service: str, pid: int, at_ns: int) -> None:
    """One request span of `service` whose resource names its process id."""
    rows = Rows(SPANS)
    values: dict[str, Any] = {column: None for column in SPANS.names}
    values.update(trace_id=os.urandom(16).hex(), span_id=os.urandom(8).hex(), service=service,
                  name="order.paid process", kind="consumer", start_ns=at_ns,
                  duration_ns=10_000_000, status="unset",
                  resource=json.dumps({semconv.SERVICE_NAME: service,
                                       semconv.PROCESS_PID: pid}))
    rows.add(values[column] for column in SPANS.names)
    store.submit(rows).result(timeout=10)


def _detector(store: TelemetryStore) -> ProblemDetector:
    return ProblemDetector(store, Thresholds(cpu_count=2),
                           baseline_check_seconds=CHECK_SECONDS)


def test_memory_that_keeps_growing_names_the_process_and_clears_when_freed(
        store: TelemetryStore) -> None:
    start = _now_on_the_second() - 600 * S
    leak_from, leak_to = start + 300 * S, start + 420 * S

    def worker_memory(at: int) -> float:
        # 150 MiB; a leak of 20 MiB a minute from 300 s to 420 s; freed when it stops.
        if leak_from <= at < leak_to:
            return 150 * MIB + (at - leak_from) / S / 60 * 20 * MIB
        return 150 * MIB

    times = list(range(start, start + 600 * S, 10 * S))
    write_points(store, semconv.METRIC_PROCESS_MEMORY,
                 [(at, worker_memory(at)) for at in times], service="worker")
    # A healthy service's memory wobbles up and down without a trend.
    write_points(store, semconv.METRIC_PROCESS_MEMORY,
                 [(at, 200 * MIB + (3 * MIB if index % 2 else 0))
                  for index, at in enumerate(times)], service="catalog")
    # A process that just started grows as it warms up (20 MiB in its first minute, then
    # steady): not judged until it has readings from before its window.
    write_points(store, semconv.METRIC_PROCESS_MEMORY,
                 [(at, 80 * MIB + min(at - leak_from, 60 * S) / S / 60 * 20 * MIB)
                  for at in times if at >= leak_from], service="fresh")
    _process_spans(store, "worker", 777, leak_from)
    detector = _detector(store)

    def found(at: int) -> list[Problem]:
        detector.check_live(now_ns=at)
        return _problems(store, at, ProblemKind.MEMORY_GROWTH)

    assert found(leak_from) == []
    found_at = next(seconds for seconds in range(CHECK_SECONDS, 121, CHECK_SECONDS)
                    if found(leak_from + seconds * S))
    assert found_at <= 60, found_at
    (problem,) = _problems(store, leak_from + found_at * S, ProblemKind.MEMORY_GROWTH)
    assert problem.service == "worker" and problem.state == ProblemState.ONGOING
    assert problem.headline.startswith("memory growing in worker (pid 777): +")
    # The process's problem, not a trace's: no example trace, a recent one to start from.
    assert problem.example_trace_id == "" and problem.details["latest_trace_id"]
    assert problem.details["mib_per_minute"] == pytest.approx(20, rel=0.35)
    assert problem.impact_unit == "MiB"
    # Freed at 420 s: cleared within a minute.
    cleared_at = next(seconds for seconds in range(CHECK_SECONDS, 121, CHECK_SECONDS)
                      if found(leak_to + seconds * S)[0].state == ProblemState.CLEARED)
    assert cleared_at <= 60, cleared_at
    assert "Clears when the memory has stopped climbing" in problem.clears_when
    assert all(p.service == "worker" for p in _problems(store, leak_to + 120 * S,
                                                        ProblemKind.MEMORY_GROWTH))


def test_a_process_keeping_its_core_busy_is_cpu_saturation(store: TelemetryStore) -> None:
    start = _now_on_the_second() - 900 * S
    hog_from, hog_to = start + 700 * S, start + 820 * S

    def gateway_cpu(at: int) -> float:
        # Shares of the machine's two cores: 0.1 cores as usual, 0.6 with the hog.
        return 0.3 if hog_from <= at < hog_to else 0.05

    times = list(range(start, start + 900 * S, 10 * S))
    write_points(store, semconv.METRIC_PROCESS_CPU, [(at, gateway_cpu(at)) for at in times],
                 service="gateway")
    # Busy, but always as busy: its usual, not a problem.
    write_points(store, semconv.METRIC_PROCESS_CPU, [(at, 0.3) for at in times],
                 service="catalog")
    _process_spans(store, "gateway", 555, hog_from)
    detector = _detector(store)

    def found(at: int) -> list[Problem]:
        detector.check_live(now_ns=at)
        return _problems(store, at, ProblemKind.CPU_SATURATION)

    assert found(hog_from) == []
    found_at = next(seconds for seconds in range(CHECK_SECONDS, 121, CHECK_SECONDS)
                    if found(hog_from + seconds * S))
    assert found_at <= 60, found_at
    (problem,) = _problems(store, hog_from + found_at * S, ProblemKind.CPU_SATURATION)
    assert problem.service == "gateway"
    # Found before the whole minute was busy: its mean is a little under 0.6.
    cores = problem.details["cores"]
    assert isinstance(cores, float) and 0.4 <= cores <= 0.6
    assert problem.headline == f"CPU saturation in gateway (pid 555): {cores:.2f} cores busy"
    assert problem.details["usual_cores"] == pytest.approx(0.1)
    assert "against 0.10 in the 10 minutes before" in problem.explanation
    cleared_at = next(seconds for seconds in range(CHECK_SECONDS, 121, CHECK_SECONDS)
                      if found(hog_to + seconds * S)[0].state == ProblemState.CLEARED)
    assert cleared_at <= 60, cleared_at


def test_an_error_hotspot_clears_within_a_minute_of_the_failures_stopping(
        store: TelemetryStore) -> None:
    stop = _now_on_the_second() - 120 * S
    # The hour before: fine. Then two minutes failing two requests in five, then fine.
    write_requests(store, service="payments", route="/charges", method="POST",
                   start_ns=stop - 1800 * S, count=200, every_ns=5 * S, status=201)
    for offset in range(0, 120, 5):
        write_requests(store, service="payments", route="/charges", method="POST",
                       start_ns=stop - 120 * S + offset * S, count=5, every_ns=S,
                       status=201, failed=2)
    write_requests(store, service="payments", route="/charges", method="POST",
                   start_ns=stop, count=120, every_ns=S, status=201)
    detector = _detector(store)

    def hotspot(at: int) -> Problem | None:
        detector.check_baselines(now_ns=at)
        found = _problems(store, at, ProblemKind.ERROR_HOTSPOT)
        return found[0] if found else None

    during = hotspot(stop)
    assert during is not None and during.state == ProblemState.ONGOING
    assert during.headline.startswith("POST /charges of payments failing: 39.7 % ")
    cleared_at = next(seconds for seconds in range(CHECK_SECONDS, 121, CHECK_SECONDS)
                      if (after := hotspot(stop + seconds * S)) is not None
                      and after.state == ProblemState.CLEARED)
    # Its five-minute window still holds the failures: the latest 30 s clear it.
    assert cleared_at <= 60, cleared_at
