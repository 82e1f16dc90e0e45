"""Mixed shops: every pair of approaches (OpenTelemetry, X-Ray, New Relic), caller →
callee, over HTTP and over NATS, each service in a process of its own with the real SDK
or agent, all reporting to one explorer. Is the call, or the event, one trace in the
explorer, and where it is not, does the callee's first span say why?
(docs/approaches.md, mixed shops.)

Six probe services (a caller and a callee per approach) are built with the kit exactly
as the shop's services are; every process sees every `KANSOKU_<SERVICE>_INSTRUMENTATION`,
as under `kansoku up`, so the OpenTelemetry ones know an X-Ray neighbour is about."""

from __future__ import annotations

import contextlib
import json
import textwrap
from itertools import product
from typing import Any

import httpx
import nats
import pytest

from kansoku.kit import events, semconv
from tests.support import ServiceProcesses, eventually, free_ports, intake_environment

APPROACHES = ("otel", "xray", "newrelic")

#: A probe service: `/pong/{pair}` answers; `/call/{pair}?to=URL` calls that callee's
#: pong with the kit's client; `/publish/{pair}?to=NAME` publishes an event on NATS as the
#: shop's services do (with the request's `event_headers`), as the user `user-<pair>` (in
#: baggage, as `kit.auth` puts a user there); with `fail=1` its handler will fail. Each
#: probe consumes `order.probe.<its name>.*` with the kit's `subscribe` (a failed event
#: goes to the dead letters at once); handling an event calls the probe's own
#: `/handled/{pair}` with the kit's client: work done for the event, which must be in
#: the event's trace.
PROBE_PROCESS = textwrap.dedent("""
    import sys, uuid
    import nats, uvicorn
    from opentelemetry import baggage, context
    from pydantic_settings import SettingsConfigDict
    from kansoku.kit import events, semconv
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

    def client(url):
        return ServiceClient("probe", url, CircuitBreakers(BreakerPolicy()), telemetry=telemetry)

    async def connect():
        state["nc"] = await nats.connect(nats_url)
        state["js"] = state["nc"].jetstream()
        state["self"] = client(f"http://127.0.0.1:{port}")
        await events.ensure_streams(state["js"])

        async def handle(payload, message_id):
            if payload["fail"]:
                raise RuntimeError("the probe's handler fails on purpose")
            answer = await state["self"].get(f"/handled/{payload['pair']}")
            answer.raise_for_status()

        await events.subscribe(state["js"], f"order.probe.{name}.*", f"probe-{name}",
                               handle, max_deliveries=1,
                               tracer_provider=telemetry.tracer_provider)

    async def disconnect():
        await state["nc"].drain()
        await state["self"].aclose()

    app = build_service_app(service=name, settings=settings, telemetry=telemetry,
                            fault_flags=FaultFlags(None, name, {}), description="probe",
                            on_startup=[connect], on_shutdown=[disconnect])

    @app.get("/pong/{pair}")
    async def pong(pair: str) -> dict[str, str]:
        return {"pong": pair}

    @app.get("/handled/{pair}")
    async def handled(pair: str) -> dict[str, str]:
        return {"handled": pair}

    @app.get("/call/{pair}")
    async def call(pair: str, to: str) -> dict[str, int]:
        callee = client(to)
        try:
            answer = await callee.get(f"/pong/{pair}")
        finally:
            await callee.aclose()
        return {"status": answer.status_code}

    @app.get("/publish/{pair}")
    async def publish(pair: str, to: str, fail: bool = False) -> dict[str, str]:
        message_id = uuid.uuid4().hex
        token = context.attach(baggage.set_baggage(semconv.BAGGAGE_USER_ID, f"user-{pair}"))
        try:
            await events.publish(state["js"], f"order.probe.{to}.{pair}",
                                 {"pair": pair, "fail": fail},
                                 message_id=message_id, trace_headers=events.event_headers(),
                                 tracer_provider=telemetry.tracer_provider)
        finally:
            context.detach(token)
        return {"published": message_id}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
""")


def _service(role: str, approach: str) -> str:
    return f"{role}-{approach}"


def _tags(span: dict[str, Any]) -> dict[str, Any]:
    return {tag["key"]: tag["value"] for tag in span["tags"]}


async def _entry_spans(http: httpx.AsyncClient, service: str) -> list[dict[str, Any]]:
    """Every request and event-handling span of `service` in the explorer, with its
    trace id."""
    answer = (await http.get("/api/traces", params={
        "service": service, "limit": 500, "minSpans": 1})).json()["data"]
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
#: callee's request or event span is in the caller's trace), `break <header>` (a new
#: trace, and the callee's first span names the header it could not continue and why),
#: `new trace` (a new trace with nothing said), `not recorded` (no span of the callee).
#: Over HTTP, OpenTelemetry services speak `X-Amzn-Trace-Id` too (an X-Ray neighbour is
#: configured); X-Ray and New Relic share no header. Over NATS, kansoku's own code
#: writes and reads the headers on both sides (`kit.events`): an event carries what its
#: publisher can write — OpenTelemetry `traceparent` (and `X-Amzn-Trace-Id`, with an
#: X-Ray neighbour), X-Ray `X-Amzn-Trace-Id` and a `traceparent` made of the same ids,
#: New Relic its agent's `traceparent` and `tracestate`.
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
    ("nats", "otel", "xray"): "joined",
    # The same refusal as over HTTP: the agent's accept_distributed_trace_headers.
    ("nats", "otel", "newrelic"): "break traceparent",
    ("nats", "xray", "otel"): "joined",
    ("nats", "xray", "xray"): "joined",
    # The traceparent an X-Ray publisher writes has flags 01: the agent continues it.
    ("nats", "xray", "newrelic"): "joined",
    ("nats", "newrelic", "otel"): "joined",
    # The agent writes no X-Amzn-Trace-Id, the only header an X-Ray consumer reads.
    ("nats", "newrelic", "xray"): "break traceparent",
    ("nats", "newrelic", "newrelic"): "joined",
}

#: With OpenTelemetry's X-Ray trace id generator (`OTEL_PYTHON_ID_GENERATOR=xray`), ids
#: start with the time and are not flagged random: traceparent's flags are 01, which the
#: New Relic agent continues.
EXPECTED_WITH_XRAY_IDS = {**EXPECTED, ("http", "otel", "newrelic"): "joined",
                          ("nats", "otel", "newrelic"): "joined"}


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


@pytest.mark.parametrize(("id_generator", "expected"), [
    ("random", EXPECTED), ("xray", EXPECTED_WITH_XRAY_IDS)])
async def test_every_pair_of_approaches_over_http_and_nats(
        intakes_explorer: tuple[str, Any], nats_url: str,
        service_processes: ServiceProcesses, id_generator: str,
        expected: dict[tuple[str, str, str], str]) -> None:
    explorer_url, explorer_app = intakes_explorer
    environment = intake_environment(explorer_url, explorer_app)
    environment["OTEL_PYTHON_ID_GENERATOR"] = id_generator
    for role, approach in product(("caller", "callee"), APPROACHES):
        environment[f"KANSOKU_{role.upper()}_{approach.upper()}_INSTRUMENTATION"] = approach
    names = [_service(role, approach)
             for role, approach in product(("caller", "callee"), APPROACHES)]
    urls = {}
    for name, port in zip(names, free_ports(len(names)), strict=True):
        service_processes.start(name, PROBE_PROCESS, name, str(port), nats_url,
                                environment=environment)
        urls[name] = f"http://127.0.0.1:{port}"
    for name, url in urls.items():
        await service_processes.wait_until_answering(name, f"{url}/health/ready", 90)
    async with httpx.AsyncClient(timeout=30) as http:
        for caller, callee in product(APPROACHES, APPROACHES):
            pair = f"{id_generator}-{caller}-{callee}"
            called = await http.get(f"{urls[_service('caller', caller)]}/call/{pair}",
                                    params={"to": urls[_service("callee", callee)]})
            assert called.json() == {"status": 200}, called.text
            published = await http.get(f"{urls[_service('caller', caller)]}/publish/{pair}",
                                       params={"to": _service("callee", callee)})
            assert published.status_code == 200, published.text
        for callee in APPROACHES:
            failing = await http.get(
                f"{urls[_service('caller', 'otel')]}/publish/{id_generator}-fail-{callee}",
                params={"to": _service("callee", callee), "fail": "true"})
            assert failing.status_code == 200, failing.text
    await _every_event_handled(nats_url, [_service("callee", callee) for callee in APPROACHES])
    # Stopped before the spans are read: each SDK and agent sends what it holds as its
    # service stops (the New Relic agent's first harvest would otherwise come a minute
    # after it started).
    service_processes.stop_all()
    spans = await _spans_of_run(explorer_url, names, id_generator)

    def request_span(service: str, path: str) -> dict[str, Any] | None:
        return next((span for span in spans[service]
                     if span["tags"].get(semconv.URL_PATH) == path), None)

    def consumer_span(service: str, subject: str) -> dict[str, Any] | None:
        return next((span for span in spans[service]
                     if span["tags"].get(semconv.MESSAGING_DESTINATION) == subject), None)

    measured, seen, handled_apart, users = {}, {}, {}, {}
    for caller, callee in product(APPROACHES, APPROACHES):
        pair = f"{id_generator}-{caller}-{callee}"
        callee_name = _service("callee", callee)
        seen[("http", caller, callee)] = (
            request_span(_service("caller", caller), f"/call/{pair}"),
            request_span(callee_name, f"/pong/{pair}"))
        consumed = consumer_span(callee_name, f"order.probe.{callee_name}.{pair}")
        seen[("nats", caller, callee)] = (
            request_span(_service("caller", caller), f"/publish/{pair}"), consumed)
        for transport in ("http", "nats"):
            measured[(transport, caller, callee)] = _outcome(*seen[(transport, caller, callee)])
        if consumed is not None:
            # The handler's call is in the event's trace, whatever became of the caller's.
            handled = request_span(callee_name, f"/handled/{pair}")
            if handled is None or handled["traceID"] != consumed["traceID"]:
                handled_apart[pair] = handled
            users[pair] = consumed["tags"].get(semconv.ENDUSER_ID)
    # A handler that failed: its consumer span is an error, with the exception.
    failed = {}
    for callee in APPROACHES:
        callee_name = _service("callee", callee)
        span = consumer_span(callee_name,
                             f"order.probe.{callee_name}.{id_generator}-fail-{callee}")
        failed[callee] = None if span is None else span["tags"].get("error")
    differing = {str(key): [measured[key], seen[key]] for key in expected
                 if measured[key] != expected[key]}
    logs = "\n".join(f"--- {name}\n{service_processes.log(name)}" for name in names)
    assert measured == expected, json.dumps(differing, indent=1) + "\n" + logs
    assert handled_apart == {}, json.dumps(handled_apart, indent=1)
    # The user the publishing request acted for, named on every consumer's first span.
    assert users == {pair: f"user-{pair}" for pair in users}
    assert len(users) == len(APPROACHES) ** 2
    assert failed == dict.fromkeys(APPROACHES, True)


async def _every_event_handled(nats_url: str, services: list[str]) -> None:
    """Wait until each of `services`' probe consumers has every event it was sent
    handled and acknowledged (a failed one is acknowledged once dead-lettered)."""
    connection = await nats.connect(nats_url)
    try:
        stream = connection.jetstream()

        async def handled() -> bool:
            for service in services:
                info = await stream.consumer_info(events.STREAM, f"probe-{service}")
                if info.num_pending or info.num_ack_pending:
                    return False
            return True

        await eventually(handled, 60, f"the events to {services} handled")
    finally:
        await connection.close()


async def _spans_of_run(explorer_url: str, services: list[str], run: str
                        ) -> dict[str, list[dict[str, Any]]]:
    """The request and event-handling spans of each of `services` whose paths or
    subjects name this `run`, once every pair's have arrived, or after 30 s with what
    has: a pair whose callee never records is measured as `not recorded`, not waited
    for forever."""
    pairs = len(APPROACHES)
    # Callers: a call and a publish per pair (and the failing publishes, by OpenTelemetry's);
    # callees: a pong, an event and a handled call per pair, and a failed event.
    wanted = {service: 2 * pairs if service.startswith("caller") else 3 * pairs + 1
              for service in services}
    wanted["caller-otel"] += pairs
    found: dict[str, list[dict[str, Any]]] = {}

    def of_run(span: dict[str, Any]) -> bool:
        return f"/{run}-" in str(span["tags"].get(semconv.URL_PATH)) or \
            f".{run}-" in str(span["tags"].get(semconv.MESSAGING_DESTINATION))

    async with httpx.AsyncClient(base_url=explorer_url, timeout=30) as http:
        async def arrived() -> bool:
            for service in services:
                found[service] = [span for span in await _entry_spans(http, service)
                                  if of_run(span)]
            return all(len(found[service]) >= wanted[service] for service in services)

        with contextlib.suppress(AssertionError):  # measured below as what arrived
            await eventually(arrived, 30, "every pair's spans")
    return found
