"""The New Relic approach: the New Relic Python agent, as its documentation wires it.

Chosen by `KANSOKU_INSTRUMENTATION=newrelic` (or `KANSOKU_<SERVICE>_INSTRUMENTATION`);
needs `pip install 'kansoku[approaches]'`. The OpenTelemetry SDK is not started in the
process: only the agent.

- **Initialised in the service's own process**, before its app is built:
  `newrelic.agent.initialize(config_file)` with a configuration file written for the
  service (`agent_config`). Under `kansoku up` services are forked from a template that
  imported FastAPI, Starlette, httpx, asyncpg and redis already (`stack/prefork.py`);
  the agent's import hooks fire at once for modules already imported, and patch their
  classes in place, so a forked child is instrumented as a fresh process is. The agent
  must not start in the template: its harvest thread would not survive the fork.
- **What it hooks by itself** (agent 14.1): FastAPI, Starlette and uvicorn (a web
  transaction per request, named after the route's function), httpx (an external
  segment per call, sending `traceparent` and `tracestate: …@nr=…`: agent 14.1 no
  longer sends its older `newrelic` header by default), asyncpg
  (a datastore segment per statement) and redis.asyncio. Not nats-py: for kansoku's
  events the kit uses the agent's documented API (`kit.events` asks the approach). An
  event written in a request carries the headers `insert_distributed_trace_headers`
  gives (`traceparent`, `tracestate`); a publish inside a request is a
  `MessageTrace` (a producer span); each event a consumer handles is a
  `MessageTransaction` (`OtherTransaction/Message/NATS/Topic/Named/<subject>`) that
  accepts the event's headers, so the handler's SQL and calls are in the publisher's
  trace. A `traceparent` the agent refuses, or an `X-Amzn-Trace-Id` alone, is marked on
  the transaction's entry span as on a request's.
- **Where it reports**: the agent's collector is `NEW_RELIC_HOST`:`NEW_RELIC_PORT`
  (default 127.0.0.1:8443, the explorer's New Relic intake, explorer/ingest/newrelic.py).
  The agent speaks only HTTPS to a collector; the explorer's certificate is one it
  made, which the agent is told not to check (`debug.disable_certificate_validation`).
  Pointed at New Relic itself (`NEW_RELIC_HOST` unset to the default, a real
  `NEW_RELIC_LICENSE_KEY`), certificates are checked as usual.
- **Every request traced**: `distributed_tracing.sampler.*` = `always_on` (the agent's
  default keeps about 10 traces a minute), as the other approaches keep every request.
- **The user**: the custom attribute `userId` (`kit.auth` calls `user_identified`), on
  the transaction and on its entry span.
- **Errors**: an exception escaping a request is noticed (`notice_error`) before the
  kit turns it into a 500 problem.
- **Business metrics**: the services record them through the OpenTelemetry *API*. Here
  the provider is a `RecordingMeterProvider` of `record_measurement`: each counter or
  histogram measurement is a custom metric `Custom/<name>` (`record_custom_metric`: New
  Relic keeps its count, total, min and max per minute) and, when it has attributes, a
  custom event
  `KansokuMeasurement` with the metric's name, value and attributes
  (`record_custom_event`: New Relic's dimensional records). Observable gauges are not
  sent: nothing polls a callback.
- **The first request after start**: the agent connects in the background on the first
  request and records nothing until it has (measured: the first request is not
  traced). Here the service waits at start-up, up to `CONNECT_WAIT_SECONDS`, for the
  agent to connect (`register_application(timeout=…)`, the agent's documented call for
  this), so the first request is traced; past that the service starts anyway.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import newrelic.agent
from opentelemetry import metrics
from opentelemetry.util.types import Attributes
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from kansoku.kit import semconv
from kansoku.kit.approaches import Approach, ConsumedEvent, Instrumentation, propagation
from kansoku.kit.approaches.measurements import RecordingMeterProvider
from kansoku.topology import DEFAULT_NEWRELIC_PORT

logger = logging.getLogger(__name__)

#: Where the agent reports unless NEW_RELIC_HOST / NEW_RELIC_PORT say otherwise: the
#: explorer's New Relic intake on this machine.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = DEFAULT_NEWRELIC_PORT
#: The agent needs a license key to start; the explorer takes any. This one says what
#: it is (40 characters, as New Relic's keys).
LOCAL_LICENSE_KEY = "kansoku-local-collector-not-a-real-key00"
#: The custom event a measurement with attributes becomes.
MEASUREMENT_EVENT = "KansokuMeasurement"
#: How long shutting down may wait for the last harvest.
SHUTDOWN_SECONDS = 5.0
#: How long start-up waits for the agent to connect (see the module's docstring).
CONNECT_WAIT_SECONDS = 5.0
#: How the agent names kansoku's events: the library (`MessageBroker/NATS/…` for a
#: publish, `OtherTransaction/Message/NATS/…` for a consumer), the kind of destination
#: (a subject is a topic: every durable consumer gets each event), and the transport of
#: a distributed trace (NATS is not among the agent's names; JetStream queues).
MESSAGE_LIBRARY = "NATS"
MESSAGE_DESTINATION_TYPE = "Topic"
MESSAGE_TRANSPORT = "Queue"
#: The headers the agent reads to continue a trace (`accept_distributed_trace_headers`).
_TRACE_HEADERS = ("traceparent", "tracestate", "newrelic")


def agent_config(service: str, environ: dict[str, str] | os._Environ[str]) -> str:
    """The agent's configuration file for `service` (its documented ini format)."""
    host = environ.get("NEW_RELIC_HOST", DEFAULT_HOST)
    local = host != "" and not host.endswith("nr-data.net")
    lines = [
        "[newrelic]",
        f"app_name = {environ.get('NEW_RELIC_APP_NAME', service)}",
        f"license_key = {environ.get('NEW_RELIC_LICENSE_KEY', LOCAL_LICENSE_KEY)}",
        "distributed_tracing.enabled = true",
        "span_events.enabled = true",
        "distributed_tracing.sampler.root = always_on",
        "distributed_tracing.sampler.remote_parent_sampled = always_on",
        "distributed_tracing.sampler.remote_parent_not_sampled = always_on",
        # The agent's own log goes to the service's log (stderr), warnings only.
        "log_file = stderr",
        f"log_level = {environ.get('NEW_RELIC_LOG_LEVEL', 'warning')}",
        "startup_timeout = 0",
        f"shutdown_timeout = {SHUTDOWN_SECONDS}",
    ]
    if local:
        lines += [f"host = {host}", f"port = {environ.get('NEW_RELIC_PORT', DEFAULT_PORT)}",
                  "debug.disable_certificate_validation = true"]
    return "\n".join(lines) + "\n"


def record_measurement(name: str, unit: str, amount: int | float,
                       attributes: Attributes) -> None:
    """One measurement as a custom metric (and a custom event when it has attributes).
    Never raises: a metric that cannot be recorded must not fail its request."""
    try:
        application = None if newrelic.agent.current_transaction() else \
            newrelic.agent.application()
        newrelic.agent.record_custom_metric(f"Custom/{name}", amount,
                                            application=application)
        if attributes:
            newrelic.agent.record_custom_event(
                MEASUREMENT_EVENT, {**{key: value for key, value in attributes.items()
                                       if isinstance(value, str | int | float | bool)},
                                    "metric": name, "value": amount},
                application=application)
    except Exception:
        logger.warning("New Relic metric %s not recorded", name, exc_info=True)


def add_transaction_attribute(key: str, value: str) -> None:
    """A custom attribute of the current transaction (a request, or an event's
    handling): on the transaction (`add_custom_attribute`, which New Relic keeps on the
    transaction event only) and on its entry span, the span that stands for it in a
    trace."""
    newrelic.agent.add_custom_attribute(key, value)
    transaction = newrelic.agent.current_transaction()
    if transaction is not None and transaction.root_span is not None:
        transaction.root_span.add_custom_attribute(key, value)


class NewRelicMiddleware:
    """Inside the agent's own transaction (its Starlette hook opens one per request):
    notes a trace header the agent cannot continue, and notices an escaping exception."""

    def __init__(self, app: ASGIApp, *, quiet: Callable[[str], bool]) -> None:
        self.app = app
        self.quiet = quiet

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.quiet(scope["path"]):
            transaction = newrelic.agent.current_transaction()
            if scope["type"] == "http" and transaction is not None:
                transaction.ignore_transaction = True  # probes are not requests
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        # The agent has read the headers already: its transaction began outside this.
        foreign = propagation.foreign_trace(headers, Instrumentation.NEWRELIC) or \
            propagation.refused_traceparent(headers, newrelic.agent.current_trace_id())
        if foreign is not None:
            for key, value in foreign.attributes().items():
                add_transaction_attribute(key, value)
        try:
            await self.app(scope, receive, send)
        except Exception:
            newrelic.agent.notice_error()
            raise


class NewRelicApproach(Approach):
    """The New Relic agent in one service process."""

    instrumentation = Instrumentation.NEWRELIC

    def __init__(self, service: str) -> None:
        self.service = service
        self.config_file: Path | None = None

    def start(self) -> None:
        """Write the configuration, initialise the agent, answer the metrics API."""
        directory = Path(tempfile.mkdtemp(prefix=f"kansoku-newrelic-{self.service}-"))
        self.config_file = directory / "newrelic.ini"
        self.config_file.write_text(agent_config(self.service, os.environ))
        newrelic.agent.initialize(str(self.config_file))
        metrics.set_meter_provider(RecordingMeterProvider(record_measurement))

    def wrap(self, app: ASGIApp, *, quiet: Callable[[str], bool]) -> ASGIApp:
        return NewRelicMiddleware(app, quiet=quiet)

    async def on_startup(self) -> None:
        # Connect now rather than on the first request (which the agent would then not
        # record); in a thread, since the agent's wait blocks.
        await asyncio.to_thread(newrelic.agent.register_application,
                                timeout=CONNECT_WAIT_SECONDS)

    def user_identified(self, user_id: str) -> None:
        add_transaction_attribute(semconv.NEWRELIC_USER_ID_ATTRIBUTE, user_id)

    def current_trace_id(self) -> str | None:
        trace_id = newrelic.agent.current_trace_id()  # None outside a transaction
        return str(trace_id).lower() if trace_id else None  # as the explorer keeps it

    def event_trace_headers(self) -> dict[str, str]:
        headers: list[tuple[str, str]] = []
        newrelic.agent.insert_distributed_trace_headers(headers)  # none outside a transaction
        return dict(headers)

    @contextmanager
    def publishing(self, subject: str, message_id: str) -> Iterator[None]:
        if newrelic.agent.current_transaction() is None:  # the outbox relay: no transaction
            yield
            return
        with newrelic.agent.MessageTrace(MESSAGE_LIBRARY, "Produce", MESSAGE_DESTINATION_TYPE,
                                         subject):
            yield

    @contextmanager
    def consuming(self, event: ConsumedEvent) -> Iterator[None]:
        trace_headers = {name: event.headers[name] for name in _TRACE_HEADERS
                         if name in event.headers}
        with newrelic.agent.MessageTransaction(
                MESSAGE_LIBRARY, MESSAGE_DESTINATION_TYPE, event.subject,
                application=newrelic.agent.application()):
            # Accepted first thing, before anything in the transaction could insert
            # headers of its own (after which the agent ignores an accept). Not through
            # the transaction's `headers=`, which would also keep every header
            # (baggage, the trace headers) as attributes.
            newrelic.agent.accept_distributed_trace_headers(trace_headers,
                                                            transport_type=MESSAGE_TRANSPORT)
            add_transaction_attribute(semconv.MESSAGING_CONSUMER, event.consumer)
            add_transaction_attribute(semconv.MESSAGING_MESSAGE_ID, event.message_id)
            if event.user_id:
                add_transaction_attribute(semconv.NEWRELIC_USER_ID_ATTRIBUTE, event.user_id)
            foreign = propagation.foreign_trace(event.headers, Instrumentation.NEWRELIC) or \
                propagation.refused_traceparent(event.headers,
                                                newrelic.agent.current_trace_id())
            if foreign is not None:
                for key, value in foreign.attributes().items():
                    add_transaction_attribute(key, value)
            yield

    def event_failed(self, error: BaseException) -> None:
        newrelic.agent.notice_error((type(error), error, error.__traceback__))

    def shutdown(self) -> None:
        """The last harvest, then the agent stops."""
        newrelic.agent.shutdown_agent(timeout=SHUTDOWN_SECONDS)
        if self.config_file is not None:
            self.config_file.unlink(missing_ok=True)
            self.config_file.parent.rmdir()
            self.config_file = None


def start(service: str) -> NewRelicApproach:
    """The New Relic approach for `service`, started."""
    approach = NewRelicApproach(service)
    approach.start()
    return approach
