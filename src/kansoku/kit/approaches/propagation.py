"""Trace headers in a mixed shop: which ones an OpenTelemetry service speaks, and how a
service of any approach notes a trace header it cannot continue.

Each approach reads and writes its own header: OpenTelemetry and New Relic the W3C
`traceparent` (New Relic adds `tracestate: …@nr=…`, and reads its older `newrelic`
header too), the X-Ray SDK only `X-Amzn-Trace-Id`. So:

- **OpenTelemetry next to X-Ray.** When any service of the platform runs `xray`, the
  OpenTelemetry services read and write `X-Amzn-Trace-Id` too: their propagators become
  `xray,tracecontext,baggage` (`propagators_for`). An OpenTelemetry service learns it
  from the same variables that choose the approaches, `KANSOKU_INSTRUMENTATION` and
  `KANSOKU_<SERVICE>_INSTRUMENTATION` (`kansoku up` and the compose file give every
  service all of them). `OTEL_PROPAGATORS`, when set, is obeyed instead.
- **X-Ray next to New Relic** share no header: a request from one to the other starts a
  new trace. The service that received it knows: it saw the other's header and could
  not continue it. It says so on its own request span (`foreign_trace`): the attribute
  `kansoku.trace.break` names the header, `kansoku.trace.break.caller_trace_id` the
  trace it came from (X-Ray: the annotations `kansoku_trace_break…`, which the explorer
  stores under the same names). The explorer shows both among the span's details.
- **Events over NATS** are kansoku's own code on both sides, so they carry what each
  approach can write (`kit.events`): an OpenTelemetry publisher `traceparent` and
  `baggage`, and `X-Amzn-Trace-Id` too with an X-Ray neighbour (`event_propagator`);
  an X-Ray publisher `X-Amzn-Trace-Id` and a `traceparent` made from the same ids
  (`traceparent`); a New Relic one what the agent inserts. A consumer that cannot
  continue any of them marks its first span the same way.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from opentelemetry import propagate
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from kansoku.kit import semconv
from kansoku.kit.approaches import Instrumentation

logger = logging.getLogger(__name__)

#: The headers, lower case as ASGI gives them.
TRACEPARENT = "traceparent"
XRAY_HEADER = "x-amzn-trace-id"
#: The X-Ray header as the OpenTelemetry X-Ray propagator reads it (its getter is case
#: sensitive).
XRAY_HEADER_NAME = "X-Amzn-Trace-Id"
#: The propagators of an OpenTelemetry service with an X-Ray neighbour.
WITH_XRAY = ("xray", "tracecontext", "baggage")

#: Why a trace breaks, as each span says it (`kansoku.trace.break.reason`): the same
#: sentence for a request and for an event's handling.
XRAY_READS_NO_TRACEPARENT = ("The X-Ray SDK reads only X-Amzn-Trace-Id; the caller sent a "
                             "W3C traceparent, so a new trace starts here.")
NEWRELIC_READS_NO_XRAY = ("The New Relic agent reads only W3C traceparent and its own "
                          "header; the caller sent X-Amzn-Trace-Id, so a new trace starts "
                          "here.")
OTEL_READS_NO_XRAY = ("This service's OpenTelemetry propagators do not read "
                      "X-Amzn-Trace-Id (no X-Ray neighbour is configured), so a new trace "
                      "starts here.")
NEWRELIC_REFUSED_TRACEPARENT = ("The New Relic agent did not continue the caller's "
                                "traceparent (agent 14.1 refuses trace flags other than 00 "
                                "and 01, and OpenTelemetry sets 03), so a new trace starts "
                                "here.")

_XRAY_ROOT = re.compile(r"Root=1-([0-9a-fA-F]{8})-([0-9a-fA-F]{24})")
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")


def approaches_in_use(environ: Mapping[str, str]) -> set[Instrumentation]:
    """Every approach the platform's variables choose (the platform-wide one, or
    OpenTelemetry by default, and each service's own)."""
    found = {Instrumentation.OTEL}
    for name, value in environ.items():
        if name.startswith("KANSOKU_") and name.endswith("_INSTRUMENTATION"):
            try:
                chosen = Instrumentation(value.strip().lower())
            except ValueError:
                continue  # the service that reads it refuses it, naming the variable
            if name == "KANSOKU_INSTRUMENTATION":
                found.discard(Instrumentation.OTEL)
            found.add(chosen)
    return found


def propagators_for(environ: Mapping[str, str]) -> tuple[str, ...] | None:
    """The propagators an OpenTelemetry service should use, or None to keep the
    API's (`OTEL_PROPAGATORS`, else W3C trace context and baggage)."""
    if environ.get("OTEL_PROPAGATORS"):
        return None
    if Instrumentation.XRAY in approaches_in_use(environ):
        return WITH_XRAY
    return None


def install_propagators(environ: Mapping[str, str] | None = None) -> tuple[str, ...] | None:
    """Make the propagators `propagators_for` says the global ones; returns their names
    (None: left as they were). Without the X-Ray propagator installed
    (`pip install 'kansoku[aws]'`), one warning and W3C alone."""
    names = propagators_for(os.environ if environ is None else environ)
    if names is None:
        return None
    try:
        from opentelemetry.propagators.aws import AwsXRayPropagator
    except ImportError:
        logger.warning("a service runs on X-Ray, but the OpenTelemetry X-Ray propagator is "
                       "not installed (pip install 'kansoku[aws]'): calls to and from it "
                       "start new traces")
        return None
    propagators: list[TextMapPropagator] = [
        AwsXRayPropagator(), TraceContextTextMapPropagator(), W3CBaggagePropagator()]
    propagate.set_global_textmap(CompositePropagator(propagators))
    return names


def speaks_xray() -> bool:
    """Whether this process's OpenTelemetry propagators read `X-Amzn-Trace-Id`."""
    return XRAY_HEADER_NAME in propagate.get_global_textmap().fields


#: How an event carries its context: W3C `traceparent` and `baggage`, always (events
#: are kansoku's own contract, stored in outbox rows and on the stream, so they do not
#: follow OTEL_PROPAGATORS, which may pick B3 for HTTP or leave baggage out).
_EVENT_PROPAGATOR = CompositePropagator([TraceContextTextMapPropagator(),
                                         W3CBaggagePropagator()])
_event_propagator_with_xray: TextMapPropagator | None = None


def event_propagator() -> TextMapPropagator:
    """The propagator of events' headers in an OpenTelemetry service: W3C trace context
    and baggage, and `X-Amzn-Trace-Id` too where this service speaks it over HTTP (an
    X-Ray neighbour: its consumers continue the event's trace). Where both headers
    came, `traceparent` wins, as with the HTTP propagators."""
    global _event_propagator_with_xray
    if not speaks_xray():
        return _EVENT_PROPAGATOR
    if _event_propagator_with_xray is None:
        from opentelemetry.propagators.aws import AwsXRayPropagator  # installed: it speaks

        _event_propagator_with_xray = CompositePropagator(
            [AwsXRayPropagator(), TraceContextTextMapPropagator(), W3CBaggagePropagator()])
    return _event_propagator_with_xray


def traceparent(trace_id: str, parent_id: str, sampled: bool) -> str | None:
    """A W3C `traceparent` (version 00) for a trace id of 32 hex digits and a parent span
    id of 16, or None when either is not one (all zeros included)."""
    trace_id, parent_id = trace_id.lower(), parent_id.lower()
    if not (re.fullmatch(r"[0-9a-f]{32}", trace_id) and re.fullmatch(r"[0-9a-f]{16}", parent_id)):
        return None
    if not trace_id.strip("0") or not parent_id.strip("0"):
        return None
    return f"00-{trace_id}-{parent_id}-{'01' if sampled else '00'}"


@dataclass(frozen=True)
class ForeignTrace:
    """A trace header a service received and could not continue."""

    #: The header, as it is written (`X-Amzn-Trace-Id`, `traceparent`).
    header: str
    #: The caller's trace id in 32 hex digits, when the header could be read.
    caller_trace_id: str | None
    #: Why, in a sentence a learner reads among the span's details.
    reason: str

    def attributes(self) -> dict[str, str]:
        found = {semconv.TRACE_BREAK: self.header, semconv.TRACE_BREAK_REASON: self.reason}
        if self.caller_trace_id:
            found[semconv.TRACE_BREAK_CALLER_TRACE_ID] = self.caller_trace_id
        return found


def _xray_trace_id(value: str) -> str | None:
    match = _XRAY_ROOT.search(value)
    return (match[1] + match[2]).lower() if match else None


def xray_root_trace_id(root: str) -> str | None:
    """The 32-hex-digit trace id of an X-Ray trace id (`1-5759e988-bd86…`), the mapping
    OpenTelemetry's X-Ray propagator and the explorer make; None if it is not one."""
    return _xray_trace_id(f"Root={root}")


def _w3c_trace_id(value: str) -> str | None:
    match = _TRACEPARENT.fullmatch(value.strip().lower())
    return match[1] if match else None


def foreign_trace(headers: Mapping[str, str], running: Instrumentation,
                  *, reads_xray: bool = False) -> ForeignTrace | None:
    """The foreign trace header among a request's or an event's `headers` (lower-case
    names) that a service running `running` cannot continue, if any. `reads_xray`: an OpenTelemetry
    service whose propagators include X-Ray's."""
    has_w3c, has_xray = TRACEPARENT in headers, XRAY_HEADER in headers
    match running:
        case Instrumentation.XRAY:
            if has_w3c and not has_xray:
                return ForeignTrace(TRACEPARENT, _w3c_trace_id(headers[TRACEPARENT]),
                                    XRAY_READS_NO_TRACEPARENT)
        case Instrumentation.NEWRELIC:
            if has_xray and not has_w3c:
                return ForeignTrace(XRAY_HEADER_NAME, _xray_trace_id(headers[XRAY_HEADER]),
                                    NEWRELIC_READS_NO_XRAY)
        case Instrumentation.OTEL:
            if has_xray and not has_w3c and not reads_xray:
                return ForeignTrace(XRAY_HEADER_NAME, _xray_trace_id(headers[XRAY_HEADER]),
                                    OTEL_READS_NO_XRAY)
        case Instrumentation.NONE:
            pass
    return None


def refused_traceparent(headers: Mapping[str, str], trace_id: str | None
                        ) -> ForeignTrace | None:
    """A `traceparent` the New Relic agent did not continue: the request came with one,
    and the agent's transaction runs in another trace (`trace_id`). Agent 14.1 reads
    the header's flags as binary digits, so it refuses flags `03` — the W3C level 2
    "random trace id" flag OpenTelemetry's SDK sets — and starts a new trace."""
    if TRACEPARENT not in headers or not trace_id:
        return None
    caller = _w3c_trace_id(headers[TRACEPARENT])
    if caller is None or caller == trace_id.lower():
        return None
    return ForeignTrace(TRACEPARENT, caller, NEWRELIC_REFUSED_TRACEPARENT)
