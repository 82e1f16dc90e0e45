"""Mixed shops: every pair of approaches (OpenTelemetry, X-Ray, New Relic), caller →
callee, over HTTP and over NATS, each service in a process of its own with the real SDK
or agent, all reporting to one explorer. Is the call one trace in the explorer, and
where it is not, does the callee's span say why? (docs/approaches.md, mixed shops.)

Six probe services (a caller and a callee per approach) are built with the kit exactly
as the shop's services are; every process sees every `KANSOKU_<SERVICE>_INSTRUMENTATION`,
as under `kansoku up`, so the OpenTelemetry ones know an X-Ray neighbour is about."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from itertools import product
from pathlib import Path
from typing import Any

import httpx
import pytest

from kansoku.kit import semconv
from tests.support import eventually, explorer_with_intakes, free_ports

APPROACHES = ("otel", "xray", "newrelic")

#: A probe service: `/pong/{pair}` answers; `/call/{pair}?to=URL` calls that callee's
#: pong with the kit's client; `/publish/{pair}` publishes an event on NATS as the shop's
#: services do (with the request's `event_headers`); the service consumes
#: `order.probe.<its name>.*` with the kit's `subscribe`, which answers to `/pong`.
PROBE_PROCESS = textwrap.dedent("""
    import asyncio, sys, uuid
    import nats, uvicorn
    from pydantic_settings import SettingsConfigDict
    from kansoku.kit import events
    from kansoku.kit.app import build_service_app, start_process_telemetry
    from kansoku.kit.flags import FaultFlags
    from kansoku.kit.http import BreakerPolicy, CircuitBreakers, ServiceClient
    from kansoku.kit.settings import ServiceSettings

    name, port, nats_url = sys.argv[1], int(sys.argv[2]), sys.argv[3]

    class Settings(ServiceSettings):
        model_config = SettingsConfigDict(
            env_prefix=f"KANSOKU_{name.upper().replace('-', '_')}_", extra="ignore")

    settings = Settings()
    telemetry = start_process_telemetry(name, settings)
    state = {}

    async def connect():
        state["nc"] = await nats.connect(nats_url)
        state["js"] = state["nc"].jetstream()
        await events.ensure_streams(state["js"])

        async def handle(payload, message_id):
            pass

        await events.subscribe(state["js"], f"order.probe.{name}.*", f"probe-{name}",
                               handle, tracer_provider=telemetry.tracer_provider)

    async def disconnect():
        await state["nc"].drain()

    app = build_service_app(service=name, settings=settings, telemetry=telemetry,
                            fault_flags=FaultFlags(None, name, {}), description="probe",
                            on_startup=[connect], on_shutdown=[disconnect])

    @app.get("/pong/{pair}")
    async def pong(pair: str) -> dict[str, str]:
        return {"pong": pair}

    @app.get("/call/{pair}")
    async def call(pair: str, to: str) -> dict[str, int]:
        client = ServiceClient("callee", to, CircuitBreakers(BreakerPolicy()),
                               telemetry=telemetry)
        try:
            answer = await client.get(f"/pong/{pair}")
        finally:
            await client.aclose()
        return {"status": answer.status_code}

    @app.get("/publish/{pair}")
    async def publish(pair: str, to: str) -> dict[str, str]:
        message_id = uuid.uuid4().hex
        await events.publish(state["js"], f"order.probe.{to}.{pair}", {"pair": pair},
                             message_id=message_id, trace_headers=events.event_headers(),
                             tracer_provider=telemetry.tracer_provider)
        return {"published": message_id}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
""")


def _service(role: str, approach: str) -> str:
    return f"{role}-{approach}"


@pytest.fixture(scope="module")
def explorer() -> Iterator[tuple[str, Any]]:
    with explorer_with_intakes() as running:
        yield running


def _environment(explorer_url: str, explorer_app: Any) -> dict[str, str]:
    settings = explorer_app.state.settings
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("KANSOKU_", "OTEL_", "NEW_RELIC_", "AWS_"))}
    environment.update({
        "PYTHONPATH": os.pathsep.join(sys.path),
        "OTEL_EXPORTER_OTLP_ENDPOINT": explorer_url,
        "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none",
        "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{settings.xray_port}",
        "AWS_EMF_AGENT_ENDPOINT": f"udp://127.0.0.1:{settings.emf_port}",
        "NEW_RELIC_HOST": "127.0.0.1", "NEW_RELIC_PORT": str(settings.newrelic_port),
    })
    for role, approach in product(("caller", "callee"), APPROACHES):
        variable = f"KANSOKU_{role.upper()}_{approach.upper()}_INSTRUMENTATION"
        environment[variable] = approach
    return environment


def _start_probe(name: str, port: int, nats_url: str, environment: dict[str, str],
                 logs: Path) -> subprocess.Popen[bytes]:
    with (logs / f"{name}.log").open("wb") as output:
        return subprocess.Popen([sys.executable, "-c", PROBE_PROCESS, name, str(port), nats_url],
                                env=environment, stdout=output, stderr=subprocess.STDOUT)


def _tags(span: dict[str, Any]) -> dict[str, Any]:
    return {tag["key"]: tag["value"] for tag in span["tags"]}


async def _server_spans(http: httpx.AsyncClient, service: str) -> list[dict[str, Any]]:
    """Every request span of `service` in the explorer, with its trace id."""
    answer = (await http.get("/api/traces", params={
        "service": service, "limit": 200, "minSpans": 1})).json()["data"]
    found = []
    for trace in answer:
        processes = trace["processes"]
        for span in trace["spans"]:
            tags = _tags(span)
            if processes[span["processID"]]["serviceName"] == service and \
                    tags.get("span.kind") in ("server", "consumer"):
                found.append({**span, "tags": tags})
    return found


#: What each pair does, measured (docs/approaches.md keeps this table): `joined` (the
#: callee's request span is in the caller's trace), `break` (a new trace, and the
#: callee's span names the header it could not continue), `not recorded` (the callee's
#: approach records nothing for an event). Over HTTP, OpenTelemetry services speak
#: `X-Amzn-Trace-Id` too (an X-Ray neighbour is configured); X-Ray and New Relic share no
#: header. Over NATS, events carry W3C headers written through OpenTelemetry's API.
EXPECTED = {
    ("http", "otel", "otel"): "joined",
    ("http", "otel", "xray"): "joined",
    # OpenTelemetry's traceparent carries flags 03 (W3C level 2's random trace id),
    # which agent 14.1 refuses (it reads the flags as binary digits): a new trace.
    ("http", "otel", "newrelic"): "break traceparent",
    ("http", "xray", "otel"): "joined",
    ("http", "xray", "xray"): "joined",
    ("http", "xray", "newrelic"): "break X-Amzn-Trace-Id",
    ("http", "newrelic", "otel"): "joined",
    ("http", "newrelic", "xray"): "break traceparent",
    ("http", "newrelic", "newrelic"): "joined",
    ("nats", "otel", "otel"): "joined",
    ("nats", "otel", "xray"): "not recorded",
    ("nats", "otel", "newrelic"): "not recorded",
    ("nats", "xray", "otel"): "new trace",
    ("nats", "xray", "xray"): "not recorded",
    ("nats", "xray", "newrelic"): "not recorded",
    ("nats", "newrelic", "otel"): "new trace",
    ("nats", "newrelic", "xray"): "not recorded",
    ("nats", "newrelic", "newrelic"): "not recorded",
}


def _outcome(caller: dict[str, Any] | None, callee: dict[str, Any] | None) -> str:
    if caller is None:
        return "caller not recorded"
    if callee is None:
        return "not recorded"
    if callee["traceID"] == caller["traceID"]:
        return "joined"
    if semconv.TRACE_BREAK in callee["tags"]:
        assert callee["tags"][semconv.TRACE_BREAK_CALLER_TRACE_ID] == caller["traceID"]
        assert callee["tags"][semconv.TRACE_BREAK_REASON]
        return f"break {callee['tags'][semconv.TRACE_BREAK]}"
    return "new trace"


#: With OpenTelemetry's X-Ray trace id generator (`OTEL_PYTHON_ID_GENERATOR=xray`), ids
#: start with the time and are not flagged random: traceparent's flags are 01, which the
#: New Relic agent continues.
EXPECTED_WITH_XRAY_IDS = {**EXPECTED, ("http", "otel", "newrelic"): "joined"}


@pytest.mark.parametrize(("id_generator", "expected"), [
    ("random", EXPECTED), ("xray", EXPECTED_WITH_XRAY_IDS)])
async def test_every_pair_of_approaches_over_http_and_nats(
        explorer: tuple[str, Any], nats_url: str, tmp_path: Path, id_generator: str,
        expected: dict[tuple[str, str, str], str]) -> None:
    explorer_url, explorer_app = explorer
    environment = _environment(explorer_url, explorer_app)
    environment["OTEL_PYTHON_ID_GENERATOR"] = id_generator
    names = [_service(role, approach)
             for role, approach in product(("caller", "callee"), APPROACHES)]
    ports = free_ports(len(names))
    urls = {name: f"http://127.0.0.1:{port}" for name, port in zip(names, ports, strict=True)}
    running: dict[str, subprocess.Popen[bytes]] = {}
    for name, port in zip(names, ports, strict=True):
        running[name] = _start_probe(name, port, nats_url, environment, tmp_path)
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            for name, url in urls.items():
                async def ready(url: str = url, name: str = name) -> bool:
                    assert running[name].poll() is None, \
                        (tmp_path / f"{name}.log").read_text()[-3000:]
                    try:
                        return (await http.get(f"{url}/health/ready")).status_code == 200
                    except httpx.TransportError:
                        return False

                await eventually(ready, 90, f"{name} ready")
            for caller, callee in product(APPROACHES, APPROACHES):
                pair = f"{id_generator}-{caller}-{callee}"
                called = await http.get(f"{urls[_service('caller', caller)]}/call/{pair}",
                                        params={"to": urls[_service("callee", callee)]})
                assert called.json() == {"status": 200}, called.text
                published = await http.get(
                    f"{urls[_service('caller', caller)]}/publish/{pair}",
                    params={"to": _service("callee", callee)})
                assert published.status_code == 200, published.text
            # Consumers of OpenTelemetry callees have their span once the event is handled.
            spans = await _wait_for_spans(
                explorer_url, [*(_service("caller", approach) for approach in APPROACHES),
                               *(_service("callee", approach) for approach in APPROACHES)],
                EXPECTED_MINIMUM, id_generator)
    finally:
        for process in running.values():
            process.terminate()
        for process in running.values():
            process.wait(30)

    def request_span(service: str, path: str) -> dict[str, Any] | None:
        return next((span for span in spans[service]
                     if span["tags"].get(semconv.URL_PATH) == path), None)

    def consumer_span(service: str, subject: str) -> dict[str, Any] | None:
        return next((span for span in spans[service]
                     if span["tags"].get(semconv.MESSAGING_DESTINATION) == subject), None)

    measured, seen = {}, {}
    for caller, callee in product(APPROACHES, APPROACHES):
        pair = f"{id_generator}-{caller}-{callee}"
        seen[("http", caller, callee)] = (
            request_span(_service("caller", caller), f"/call/{pair}"),
            request_span(_service("callee", callee), f"/pong/{pair}"))
        seen[("nats", caller, callee)] = (
            request_span(_service("caller", caller), f"/publish/{pair}"),
            consumer_span(_service("callee", callee),
                          f"order.probe.{_service('callee', callee)}.{pair}"))
        for transport in ("http", "nats"):
            measured[(transport, caller, callee)] = _outcome(*seen[(transport, caller, callee)])
    differing = {key: seen[key] for key in expected if measured[key] != expected[key]}
    assert measured == expected, json.dumps({str(key): value for key, value in differing.items()},
                                            indent=1)


#: Request spans each probe has at least: a caller's six (three calls, three
#: publishes), a callee's three pongs.
EXPECTED_MINIMUM = 3


async def _wait_for_spans(explorer_url: str, services: list[str], count: int, run: str
                          ) -> dict[str, list[dict[str, Any]]]:
    """The request and consumer spans of each of `services` once each has `count` of
    this `run` (whose paths and subjects name it)."""
    found: dict[str, list[dict[str, Any]]] = {}

    def of_run(span: dict[str, Any]) -> bool:
        return f"/{run}-" in str(span["tags"].get(semconv.URL_PATH)) or \
            f".{run}-" in str(span["tags"].get(semconv.MESSAGING_DESTINATION))

    async with httpx.AsyncClient(base_url=explorer_url, timeout=30) as http:
        async def arrived() -> bool:
            for service in services:
                found[service] = [span for span in await _server_spans(http, service)
                                  if of_run(span)]
            return all(len(found[service]) >= count for service in services)

        await eventually(arrived, 30, f"{count} request spans of each of {services}")
    return found
