"""Calling another kansoku service over HTTP, the way every service does it.

- Timeouts per phase (connect, read, write, pool), never one number for everything.
- Retries with exponential backoff and jitter, for idempotent methods only: a retried
  POST could place an order twice.
- A circuit breaker per downstream service: after repeated failures calls fail at once
  for a while instead of piling up; its state is a metric.
- One client span per attempt, and trace context and baggage in the headers, so the
  callee's spans join the caller's trace; one duration measurement per attempt. Made
  here rather than by OpenTelemetry's httpx instrumentation, which re-parses the URL and
  copies every header of every request whether or not any is captured (5 % of the
  gateway's CPU in `benchmarks/telemetry_tax.py`).

Failures surface as `DependencyUnavailable`, which the error handlers answer with 503.
A 503 whose problem names a dependency of the callee's own (orders saying payments is
away) is not a failure of the callee: it does not count against the callee's breaker,
and it surfaces as `UpstreamDependencyUnavailable` carrying the callee's problem, so one
service being away does not open every breaker in front of it and the answer names the
real cause.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx
from opentelemetry import metrics, propagate, trace
from opentelemetry.metrics import CallbackOptions, Histogram, Meter, Observation
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from kansoku import __version__
from kansoku.kit import semconv
from kansoku.kit.context import current_request_id
from kansoku.kit.errors import (
    PROBLEM_MEDIA_TYPE,
    DependencyUnavailable,
    UpstreamDependencyUnavailable,
)
from kansoku.kit.middleware import DURATION_BUCKETS, SERVICE_CLIENT_USER_AGENT
from kansoku.kit.telemetry import Telemetry

logger = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
#: How long an idle connection to another service is kept for reuse: well under the
#: services' own keep-alive (kit.serve), so the client always drops it first.
KEEPALIVE_SECONDS = 5.0

#: A 5xx answer carrying this header (`true`) is an error the caller asked for — the
#: lab's deliberate SQL error — set by the callee, never believed from a client: it is
#: handed back as an answer, not retried, and not counted by the circuit breaker.
CALLER_REQUESTED_ERROR_HEADER = "Kansoku-Requested-Error"

#: Answers that say "try again": the callee or something in front of it is overloaded.
RETRYABLE_STATUSES = frozenset({502, 503, 504})


@dataclass(frozen=True)
class Timeouts:
    """Seconds allowed for each phase of a call."""

    connect: float = 1.0
    read: float = 3.0
    write: float = 3.0
    #: Waiting for a free connection of our own pool.
    pool: float = 3.0

    def as_httpx(self) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write,
                             pool=self.pool)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently idempotent calls are retried."""

    attempts: int = 3
    initial_backoff: float = 0.05
    max_backoff: float = 0.5


@dataclass(frozen=True)
class BreakerPolicy:
    """Consecutive failed calls that open the circuit, and how long it stays open."""

    failure_threshold: int = 5
    open_seconds: float = 5.0


class _ServerError(Exception):
    """The callee answered 5xx: a failure for the breaker; retried if `retryable`."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response
        self.retryable = response.status_code in RETRYABLE_STATUSES


def _upstream_problem(response: httpx.Response, callee: str) -> dict[str, Any] | None:
    """The callee's problem when `response` is a 503 in which it reports that one of
    *its* dependencies is unavailable (a `dependency` other than itself), else None."""
    if response.status_code != 503 or not response.headers.get(
            "content-type", "").startswith(PROBLEM_MEDIA_TYPE):
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    dependency = body.get("dependency")
    return body if isinstance(dependency, str) and dependency not in ("", callee) else None


def _answered_as_designed(response: httpx.Response, callee: str) -> bool:
    """Whether a 5xx answer is the callee working as designed rather than failing:
    it reports that one of *its* dependencies is away, or it marks the error as one the
    caller asked for (`CALLER_REQUESTED_ERROR_HEADER`: the lab's deliberate SQL
    errors). Neither counts against the callee's breaker: one user's twenty clicks on
    "database error" must not shut the lab for everyone."""
    if response.headers.get(CALLER_REQUESTED_ERROR_HEADER) == "true":
        return True
    return _upstream_problem(response, callee) is not None


def _worth_retrying(exc: BaseException) -> bool:
    """Retry what a second try can fix: no connection (yet), or an answer that says "try
    again". Not a read timeout: the callee is slow, and asking again makes it slower."""
    if isinstance(exc, _ServerError):
        return exc.retryable
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.RemoteProtocolError)


class CircuitBreakers:
    """The circuit breakers of one process, one per downstream service.

    Wraps purgatory's in-memory breakers and follows their state changes, so the state
    can be read (`state(name)`) and exported as the `kansoku.circuit_breaker.state` gauge.
    """

    def __init__(self, policy: BreakerPolicy, meter: Meter | None = None) -> None:
        self.policy = policy
        self._factory = AsyncCircuitBreakerFactory(
            default_threshold=policy.failure_threshold, default_ttl=policy.open_seconds
        )
        self._factory.add_listener(self._on_event)
        self._states: dict[str, str] = {}
        if meter is not None:
            meter.create_observable_gauge(
                semconv.METRIC_CIRCUIT_STATE,
                callbacks=[self._observe],
                description="Circuit breaker state per downstream service: "
                "0 closed, 1 half-open, 2 open.",
            )

    def _on_event(self, name: str, event_name: str, event: Any) -> None:
        if event_name == "circuit_breaker_created":
            self._states[name] = "closed"
        elif event_name == "state_changed":
            previous = self._states.get(name)
            self._states[name] = event.state
            if previous != event.state:
                logger.warning("circuit breaker for %s is now %s", name, event.state,
                               extra={"circuit": name, "circuit_state": event.state})

    def _observe(self, options: CallbackOptions) -> list[Observation]:
        return [
            Observation(semconv.CIRCUIT_STATE_VALUES.get(state, 0),
                        {semconv.PEER_SERVICE: name})
            for name, state in self._states.items()
        ]

    def state(self, name: str) -> str:
        """`closed`, `half-opened` or `opened`. A breaker never used is closed."""
        return self._states.get(name, "closed")

    async def get(self, name: str) -> Any:
        return await self._factory.get_breaker(name)


class ServiceClient:
    """A client for one downstream service, e.g. `ServiceClient("catalog", url, …)`."""

    def __init__(
        self,
        service: str,
        base_url: str,
        breakers: CircuitBreakers,
        *,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        telemetry: Telemetry | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 500,
    ) -> None:
        self.service = service
        self.breakers = breakers
        self.retry = retry or RetryPolicy()
        self._client = httpx.AsyncClient(
            base_url=base_url,
            timeout=(timeouts or Timeouts()).as_httpx(),
            # httpx's default of 100 connections makes a busy gateway queue for its own
            # pool; a service's callers are bounded by their own limits anyway.
            limits=httpx.Limits(max_connections=max_connections,
                                max_keepalive_connections=min(max_connections, 100),
                                keepalive_expiry=KEEPALIVE_SECONDS),
            transport=transport,
            headers={"User-Agent": SERVICE_CLIENT_USER_AGENT},
        )
        self._tracer: Tracer | None = None
        self._duration: Histogram | None = None
        if telemetry is not None and telemetry.enabled:
            self._tracer = trace.get_tracer("kansoku.kit.http", __version__,
                                            tracer_provider=telemetry.tracer_provider)
            self._duration = metrics.get_meter(
                "kansoku.kit.http", __version__, meter_provider=telemetry.meter_provider
            ).create_histogram(semconv.METRIC_HTTP_CLIENT_DURATION, unit="s",
                               description="Duration of calls to other services.",
                               explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS))
        url = self._client.base_url
        self._base_url = str(url).rstrip("/")
        self._server = {semconv.SERVER_ADDRESS: url.host or "",
                        semconv.SERVER_PORT: url.port or (443 if url.scheme == "https" else 80)}

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send one logical call; retried if idempotent; 4xx are returned to the caller.

        Raises `DependencyUnavailable` when the service cannot be reached, times out,
        keeps answering 5xx, or its circuit is open.
        """
        method = method.upper()
        attempts = self.retry.attempts if method in IDEMPOTENT_METHODS else 1
        try:
            breaker = await self.breakers.get(self.service)
            async with breaker:
                response = await self._send_with_retries(method, path, attempts, **kwargs)
        except OpenedState as exc:
            raise DependencyUnavailable(self.service, "circuit open after repeated failures"
                                        ) from exc
        except _ServerError as exc:
            raise DependencyUnavailable(
                self.service, f"it answered HTTP {exc.response.status_code}",
                response=exc.response) from exc
        except httpx.TimeoutException as exc:
            raise DependencyUnavailable(
                self.service, f"no answer in time: {type(exc).__name__}",
                request_sent=isinstance(exc, httpx.ReadTimeout | httpx.WriteTimeout)) from exc
        except (httpx.ConnectError, httpx.ProxyError, httpx.UnsupportedProtocol) as exc:
            raise DependencyUnavailable(self.service, f"cannot connect: {type(exc).__name__}"
                                        ) from exc
        except httpx.TransportError as exc:
            # The request went out and the connection broke before the answer: the callee
            # may well have done it. Say so, rather than "cannot connect".
            raise DependencyUnavailable(
                self.service, f"no answer: the connection broke after the request was "
                f"sent ({type(exc).__name__})", request_sent=True) from exc
        if response.status_code == 503:
            upstream = _upstream_problem(response, self.service)
            if upstream is not None:
                raise UpstreamDependencyUnavailable(self.service, response, upstream)
        return response

    async def _send_with_retries(
        self, method: str, path: str, attempts: int, **kwargs: Any
    ) -> httpx.Response:
        headers = self._forwarded_headers(kwargs.pop("headers", None))
        retrying = AsyncRetrying(
            stop=stop_after_attempt(attempts),
            wait=wait_exponential_jitter(multiplier=self.retry.initial_backoff,
                                         max=self.retry.max_backoff,
                                         jitter=self.retry.initial_backoff),
            retry=retry_if_exception(_worth_retrying),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                response = await self._traced_send(method, path, dict(headers), **kwargs)
                if response.status_code >= 500 and not _answered_as_designed(
                        response, self.service):
                    raise _ServerError(response)
                # 2xx-4xx, the callee saying that its own dependency is away, or an
                # error the caller asked for: the callee answered as designed, which is
                # no failure for its breaker.
                return response
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    async def _traced_send(self, method: str, path: str, headers: dict[str, str],
                           **kwargs: Any) -> httpx.Response:
        """One attempt, in a client span whose context goes along in the headers."""
        if self._tracer is None:
            return await self._client.request(method, path, headers=headers, **kwargs)
        attributes: dict[str, Any] = {
            semconv.HTTP_REQUEST_METHOD: method,
            # The path without its query: a search term is the user's, not ours to keep.
            semconv.URL_FULL: self._base_url + path,
            semconv.PEER_SERVICE: self.service,
            **self._server,
        }
        started = time.perf_counter()
        status = 0
        # The span is made current for the headers only: nothing traced runs inside the
        # call itself, so the SDK's context-manager machinery (a generator, an attach
        # and a detach per call) would be work for nothing.
        span = self._tracer.start_span(method, kind=SpanKind.CLIENT, attributes=attributes)
        propagate.inject(headers, context=trace.set_span_in_context(span))
        try:
            response = await self._client.request(method, path, headers=headers, **kwargs)
            status = response.status_code
        except BaseException as exc:  # cancelled calls too, as the SDK's context manager did
            if isinstance(exc, httpx.HTTPError):
                span.set_attribute(semconv.ERROR_TYPE, type(exc).__name__)
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            raise
        finally:
            if self._duration is not None:
                labels: dict[str, Any] = {semconv.HTTP_REQUEST_METHOD: method,
                                          semconv.PEER_SERVICE: self.service}
                if status:
                    labels[semconv.HTTP_RESPONSE_STATUS_CODE] = status
                self._duration.record(time.perf_counter() - started, labels)
            if status:
                span.set_attribute(semconv.HTTP_RESPONSE_STATUS_CODE, status)
                # A client span is an error for any 4xx or 5xx answer (the HTTP
                # conventions); the callee's server span says whose mistake it was.
                if status >= 400:
                    span.set_status(Status(StatusCode.ERROR))
            span.end()
        return response

    @staticmethod
    def _forwarded_headers(headers: dict[str, str] | None) -> dict[str, str]:
        """The caller's headers plus this request's id, so one id follows the request
        through every service's logs."""
        forwarded = dict(headers or {})
        request_id = current_request_id()
        if request_id:
            forwarded.setdefault(semconv.REQUEST_ID_HEADER, request_id)
        return forwarded

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", path, **kwargs)

    async def aclose(self) -> None:
        await self._client.aclose()
