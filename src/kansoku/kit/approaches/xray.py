"""The AWS approach: traces with the AWS X-Ray SDK for Python, business metrics in
CloudWatch's embedded metric format (EMF) with AWS's `aws-embedded-metrics` library.

Chosen by `KANSOKU_INSTRUMENTATION=xray` (or `KANSOKU_<SERVICE>_INSTRUMENTATION=xray`);
needs `pip install 'kansoku[approaches]'`. The OpenTelemetry SDK is not started in the
process: only this.

Wired as the SDK's documentation says, with what it has for this stack:

- The recorder sends each finished segment as UDP datagrams to the X-Ray daemon at
  `AWS_XRAY_DAEMON_ADDRESS` (default 127.0.0.1:2000; the explorer listens there, see
  `explorer/ingest/xray.py`). The SDK's own default sampling is the first request each
  second plus 5 % of the rest; the lab keeps every request (a local rule of rate
  `KANSOKU_XRAY_SAMPLING_RATE`, default 1.0), since a learner wants to see each one.
  Local rules: the centralized sampler would ask the daemon's TCP API, which the
  explorer does not serve.
- The SDK has no ASGI middleware (it ships Django's, Flask's and aiohttp's): `XRayMiddleware`
  below opens a segment per request the way its aiohttp middleware does — it continues
  an incoming `X-Amzn-Trace-Id`, records the request and the status (4xx error, 429
  throttle, 5xx fault), an escaping exception with its stack, and answers with the
  trace header.
- Patched libraries: `httpx` (a `remote` subsegment per outgoing call, carrying
  `X-Amzn-Trace-Id`) and `sqlalchemy_core` (a subsegment per statement; see
  docs/approaches.md for what it sees through the async engine). The SDK has no patch for
  asyncpg, redis or NATS: those stay unseen.
- Events over NATS (`kit.events` asks the approach): an event carries `X-Amzn-Trace-Id`
  naming the segment or subsegment that wrote it, written with the SDK's own
  `inject_trace_header`, and a W3C `traceparent` made from the same ids (X-Ray's trace
  id is a W3C one: New Relic and OpenTelemetry consumers continue it). A publish inside
  a request is a `remote` subsegment. Each event a consumer handles is a segment of its
  own — the SDK's way of recording work no request started — continuing the event's
  `X-Amzn-Trace-Id`, with the messaging annotations (`messaging_destination_name`, …),
  the user (`user_id`) when the event's baggage names one, and the SQL the handler
  runs as its subsegments; an event that carried only a `traceparent` starts a new
  trace and its segment says so (`kansoku_trace_break…`).
- The logged-in user is the annotation `user_id` (`kit.auth` calls `user_identified`).
- Business metrics: the services record them through the OpenTelemetry *API* (counters
  and histograms, `metrics.get_meter`), which does nothing until a provider is set. Here
  the provider is a `RecordingMeterProvider` of `write_emf`, which writes each
  measurement as one EMF document with `aws-embedded-metrics` to the CloudWatch agent's
  endpoint `AWS_EMF_AGENT_ENDPOINT` (default udp://127.0.0.1:25888, the explorer's EMF
  intake). The metric keeps its OpenTelemetry name, the measurement's attributes become
  EMF dimensions, and the request's X-Ray trace id travels as the property `traceId`.
  Observable gauges are not sent: EMF is written when something happens, nothing polls a
  callback.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aws_embedded_metrics.config import get_config as emf_config
from aws_embedded_metrics.environment.environment_detector import resolve_environment_sync
from aws_embedded_metrics.logger.metrics_logger_factory import create_metrics_logger
from aws_xray_sdk.core import patch, xray_recorder
from aws_xray_sdk.core.async_context import AsyncContext
from aws_xray_sdk.core.models import http
from aws_xray_sdk.core.models.entity import Entity
from aws_xray_sdk.core.sampling.local.sampler import LocalSampler
from aws_xray_sdk.core.utils import stacktrace
from aws_xray_sdk.ext.util import (
    calculate_sampling_decision,
    construct_xray_header,
    inject_trace_header,
    prepare_response_header,
)
from opentelemetry import metrics
from opentelemetry.util.types import Attributes
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kansoku.kit import semconv
from kansoku.kit.approaches import Approach, ConsumedEvent, Instrumentation, propagation
from kansoku.kit.approaches.measurements import RecordingMeterProvider
from kansoku.topology import DEFAULT_EMF_PORT, DEFAULT_XRAY_PORT

logger = logging.getLogger(__name__)

#: The libraries the SDK patches here (its names). It has none for asyncpg, redis or NATS.
PATCHED = ("httpx", "sqlalchemy_core")
#: Where the SDK sends segments unless AWS_XRAY_DAEMON_ADDRESS says otherwise.
DEFAULT_DAEMON_ADDRESS = f"127.0.0.1:{DEFAULT_XRAY_PORT}"
#: Where EMF goes unless AWS_EMF_AGENT_ENDPOINT says otherwise: the CloudWatch agent's
#: port, over UDP (fire and forget: a missing agent costs the service nothing).
DEFAULT_EMF_ENDPOINT = f"udp://127.0.0.1:{DEFAULT_EMF_PORT}"
#: The EMF namespace (CloudWatch's metric namespace) of every service.
EMF_NAMESPACE = semconv.NAMESPACE
#: The EMF property carrying the request's X-Ray trace id.
EMF_TRACE_ID_PROPERTY = "traceId"
#: A request's behaviour when nothing records it: the SDK's default logs an error for
#: every subsegment outside a segment (SQL of background relays, NATS consumers).
CONTEXT_MISSING = "IGNORE_ERROR"

#: OpenTelemetry (UCUM) units as CloudWatch's; any other is CloudWatch's "None".
_CLOUDWATCH_UNITS = {"s": "Seconds", "ms": "Milliseconds", "us": "Microseconds",
                     "By": "Bytes", "%": "Percent", "1": "Count"}


class XRaySettings(BaseSettings):
    """The approach's own setting (the addresses are AWS's own variables, read by the
    SDK and the EMF library)."""

    model_config = SettingsConfigDict(env_prefix="KANSOKU_XRAY_", extra="ignore")

    #: The share of requests traced beyond the first each second (the SDK's default is
    #: 0.05; the lab's 1.0 keeps every one).
    sampling_rate: float = Field(1.0, ge=0, le=1)


def sampling_rules(rate: float) -> dict[str, Any]:
    """Local sampling rules (the SDK's version 2 format): one request a second, then
    `rate` of the rest."""
    return {"version": 2, "default": {"fixed_target": 1, "rate": rate}, "rules": []}


def cloudwatch_unit(unit: str) -> str:
    """CloudWatch's name for an OpenTelemetry unit: `{order}` and other annotations are
    counts, an unknown unit is "None"."""
    if unit.startswith("{") and unit.endswith("}"):
        return "Count"
    return _CLOUDWATCH_UNITS.get(unit, "None")


def _mark_break(entity: Entity, foreign: propagation.ForeignTrace) -> None:
    """Say on `entity` which trace header it could not continue (annotations: X-Ray's
    names cannot hold dots; the explorer stores them as `kansoku.trace.break…`)."""
    entity.put_annotation(semconv.XRAY_TRACE_BREAK_ANNOTATION, foreign.header)
    entity.put_annotation(semconv.XRAY_TRACE_BREAK_REASON_ANNOTATION, foreign.reason)
    if foreign.caller_trace_id:
        entity.put_annotation(semconv.XRAY_TRACE_BREAK_CALLER_ANNOTATION,
                              foreign.caller_trace_id)


def _current_trace_id() -> str | None:
    entity = xray_recorder.get_trace_entity()
    return getattr(entity, "trace_id", None) if entity is not None else None


def write_emf(name: str, unit: str, value: int | float, attributes: Attributes) -> None:
    """One measurement as one EMF document, sent now. Never raises: a metric that cannot
    be written must not fail the request that recorded it."""
    try:
        document = create_metrics_logger()
        document.set_namespace(EMF_NAMESPACE)
        if attributes:
            document.put_dimensions({key: str(item) for key, item in attributes.items()})
        document.put_metric(name, value, cloudwatch_unit(unit))
        trace_id = _current_trace_id()
        if trace_id:
            document.set_property(EMF_TRACE_ID_PROPERTY, trace_id)
        document.flush_sync()
    except Exception:
        logger.warning("EMF metric %s not written", name, exc_info=True)


class XRayMiddleware:
    """A segment per request (pure ASGI), after the SDK's aiohttp middleware."""

    def __init__(self, app: ASGIApp, *, quiet: Callable[[str], bool]) -> None:
        self.app = app
        self.quiet = quiet

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.quiet(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        incoming = construct_xray_header(
            {http.XRAY_HEADER: headers[http.XRAY_HEADER]} if http.XRAY_HEADER in headers
            else {})
        name = xray_recorder.service
        decision = calculate_sampling_decision(
            trace_header=incoming, recorder=xray_recorder,
            sampling_req={"host": headers.get("host", ""), "method": scope["method"],
                          "path": scope["path"], "service": name})
        segment = xray_recorder.begin_segment(name=name, traceid=incoming.root,
                                              parent_id=incoming.parent, sampling=decision)
        segment.save_origin_trace_header(incoming)
        query = scope.get("query_string", b"").decode("latin-1")
        host = headers.get("host", "")
        segment.put_http_meta(http.URL, f"{scope.get('scheme', 'http')}://{host}"
                                        f"{scope['path']}{'?' + query if query else ''}")
        segment.put_http_meta(http.METHOD, scope["method"])
        if "user-agent" in headers:
            segment.put_http_meta(http.USER_AGENT, headers["user-agent"])
        if scope.get("client"):
            segment.put_http_meta(http.CLIENT_IP, scope["client"][0])
        foreign = propagation.foreign_trace(headers, Instrumentation.XRAY)
        if foreign is not None:
            _mark_break(segment, foreign)
        answer = prepare_response_header(incoming, segment).encode("latin-1")
        status: int | None = None

        async def send_with_trace_header(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []),
                                                  (http.XRAY_HEADER.lower().encode(), answer)]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_trace_header)
        except Exception as exc:
            status = 500
            segment.add_exception(exc, stacktrace.get_stacktrace(
                limit=xray_recorder.max_trace_back))
            raise
        finally:
            if status is not None:
                segment.put_http_meta(http.STATUS, status)
            xray_recorder.end_segment()


def task_factory(loop: asyncio.AbstractEventLoop, coro: Any, **options: Any
                 ) -> asyncio.Task[Any]:
    """The SDK's task factory (`aws_xray_sdk.core.async_context.task_factory`: a new task
    shares its creator's segments, with a list of open entities of its own), taking the
    `context=` argument that uvloop — the services' event loop — passes with every task.
    The SDK's own takes only `loop` and `coro`, so under uvloop every `create_task`
    fails with a TypeError (measured with aws-xray-sdk 2.15.0 and uvloop)."""
    task = asyncio.Task(coro, loop=loop, **options)
    creator = asyncio.current_task(loop=loop)
    shared = getattr(creator, "context", None) if creator is not None else None
    if isinstance(shared, dict):
        if shared.get("entities"):
            shared = {**shared, "entities": list(shared["entities"])}
        task.context = shared  # type: ignore[attr-defined]  # the SDK's task-local storage
    return task


class XRayApproach(Approach):
    """The X-Ray SDK and EMF in one service process."""

    instrumentation = Instrumentation.XRAY

    def __init__(self, service: str, settings: XRaySettings) -> None:
        self.service = service
        self.settings = settings

    def start(self) -> None:
        """Configure the recorder, patch the libraries, point EMF at the agent."""
        xray_recorder.configure(
            service=self.service, sampling=True, plugins=(),
            sampler=LocalSampler(sampling_rules(self.settings.sampling_rate)),
            daemon_address=os.environ.get("AWS_XRAY_DAEMON_ADDRESS", DEFAULT_DAEMON_ADDRESS),
            context_missing=CONTEXT_MISSING, stream_sql=True)
        # After configure, as its documentation asks, and before any client exists.
        patch(PATCHED)
        config = emf_config()
        config.agent_endpoint = os.environ.get("AWS_EMF_AGENT_ENDPOINT", DEFAULT_EMF_ENDPOINT)
        # No probing for Lambda or EC2 (that would ask the EC2 metadata address): an
        # agent at a known endpoint is the "default" environment.
        config.environment = "default"
        config.service_name = self.service
        config.service_type = semconv.NAMESPACE
        config.namespace = EMF_NAMESPACE
        resolve_environment_sync()
        # The library logs every datagram at INFO.
        logging.getLogger("aws_embedded_metrics").setLevel(logging.WARNING)
        metrics.set_meter_provider(RecordingMeterProvider(write_emf))

    def wrap(self, app: ASGIApp, *, quiet: Callable[[str], bool]) -> ASGIApp:
        return XRayMiddleware(app, quiet=quiet)

    async def on_startup(self) -> None:
        # The SDK keeps segments per asyncio task (and copies them to the tasks a request
        # starts): its context must be made on the loop that serves.
        loop = asyncio.get_running_loop()
        xray_recorder.configure(context=AsyncContext(loop=loop, use_task_factory=False),
                                context_missing=CONTEXT_MISSING)
        loop.set_task_factory(task_factory)

    def user_identified(self, user_id: str) -> None:
        segment = xray_recorder.current_segment()
        if segment is not None:
            segment.put_annotation(semconv.XRAY_USER_ID_ANNOTATION, user_id)

    def current_trace_id(self) -> str | None:
        entity = xray_recorder.get_trace_entity()
        return None if entity is None else propagation.xray_root_trace_id(entity.trace_id)

    def event_trace_headers(self) -> dict[str, str]:
        entity = xray_recorder.get_trace_entity()
        if entity is None:  # outside any segment (context_missing = IGNORE_ERROR)
            return {}
        headers: dict[str, str] = {}
        inject_trace_header(headers, entity)
        trace_id = propagation.xray_root_trace_id(entity.trace_id)
        w3c = propagation.traceparent(trace_id, entity.id, bool(entity.sampled)) \
            if trace_id else None
        if w3c is not None:
            headers[propagation.TRACEPARENT] = w3c
        return headers

    @contextmanager
    def publishing(self, subject: str, message_id: str) -> Iterator[None]:
        # Inside a request a subsegment, as the httpx patch makes for a call out; outside
        # one (the outbox relay) nothing: the SDK records no work without a segment.
        if xray_recorder.get_trace_entity() is None:
            yield
            return
        subsegment = xray_recorder.begin_subsegment(f"{subject} publish", namespace="remote")
        try:
            subsegment.put_annotation(semconv.XRAY_MESSAGING_SYSTEM_ANNOTATION,
                                      semconv.MESSAGING_SYSTEM_NATS)
            subsegment.put_annotation(semconv.XRAY_MESSAGING_DESTINATION_ANNOTATION, subject)
            subsegment.put_annotation(semconv.XRAY_MESSAGING_MESSAGE_ID_ANNOTATION, message_id)
            yield
        except Exception as exc:
            subsegment.add_exception(exc, stacktrace.get_stacktrace(
                limit=xray_recorder.max_trace_back))
            raise
        finally:
            xray_recorder.end_subsegment()

    @contextmanager
    def consuming(self, event: ConsumedEvent) -> Iterator[None]:
        # nats-py handles a subscription's messages one after another in one task. That
        # task may share its segment storage with the task that subscribed (the SDK's
        # task factory shares an empty one): the event's segment must be its own.
        task = asyncio.current_task()
        if task is not None:
            task.context = {}  # type: ignore[attr-defined]  # the SDK's task-local storage
        incoming = construct_xray_header(
            {http.XRAY_HEADER: event.headers[propagation.XRAY_HEADER]}
            if propagation.XRAY_HEADER in event.headers else {})
        decision = calculate_sampling_decision(
            trace_header=incoming, recorder=xray_recorder,
            sampling_req={"host": "", "method": "", "path": event.subject,
                          "service": xray_recorder.service})
        segment = xray_recorder.begin_segment(name=xray_recorder.service,
                                              traceid=incoming.root,
                                              parent_id=incoming.parent, sampling=decision)
        segment.save_origin_trace_header(incoming)
        for annotation, value in (
                (semconv.XRAY_MESSAGING_SYSTEM_ANNOTATION, semconv.MESSAGING_SYSTEM_NATS),
                (semconv.XRAY_MESSAGING_DESTINATION_ANNOTATION, event.subject),
                (semconv.XRAY_MESSAGING_MESSAGE_ID_ANNOTATION, event.message_id),
                (semconv.XRAY_MESSAGING_CONSUMER_ANNOTATION, event.consumer)):
            segment.put_annotation(annotation, value)
        if event.user_id:
            segment.put_annotation(semconv.XRAY_USER_ID_ANNOTATION, event.user_id)
        foreign = propagation.foreign_trace(event.headers, Instrumentation.XRAY)
        if foreign is not None:
            _mark_break(segment, foreign)
        try:
            yield
        finally:
            xray_recorder.end_segment()

    def event_failed(self, error: BaseException) -> None:
        segment = xray_recorder.current_segment()
        if segment is not None:
            segment.add_exception(error, stacktrace.get_stacktrace(
                limit=xray_recorder.max_trace_back))


def start(service: str) -> XRayApproach:
    """The X-Ray approach for `service`, started."""
    approach = XRayApproach(service, XRaySettings())
    approach.start()
    return approach
