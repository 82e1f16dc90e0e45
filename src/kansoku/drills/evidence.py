"""Whether a trace proves a drill's fault, read through the explorer's public HTTP API
(`GET /api/traces/{trace_id}`, Jaeger's shape) as any script or Grafana would.

A learner's answer names a trace as evidence. It proves the fault when one of its spans

- carries the drill's flag as `feature_flag.key` (every span a fault flag acted on
  does, `kansoku.kit.flags`), or
- belongs to the service at fault — its own span, or a client span calling it
  (`peer.service`) — and ended in error or took at least `SLOW_SPAN_SECONDS`.

The checker never reads the explorer's storage: what it accepts is what the learner
could see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from kansoku.drills.model import Truth
from kansoku.kit import semconv
from kansoku.kit.i18n import N_, Phrase, Words, _

#: A span of the service at fault that lasts this long shows a latency fault: the
#: catalogue's slowest faults add a second or more (paymentLatency's 1s, pg_sleep(2) …).
SLOW_SPAN_SECONDS = 1.0
#: How long the explorer may take to answer.
TIMEOUT = httpx.Timeout(10.0, connect=3.0)


class EvidenceError(Exception):
    """The evidence could not be checked (a malformed trace id, the explorer away); the
    message names the problem and the fix. Not a wrong answer: it costs nothing."""


class _Jaeger(BaseModel):
    # The explorer's answer holds more (references, logs, warnings): only these are read.
    model_config = ConfigDict(extra="ignore", frozen=True)


class Tag(_Jaeger):
    key: str
    value: Any = None


class Span(_Jaeger):
    spanID: str
    operationName: str
    #: Microseconds.
    duration: int
    processID: str
    tags: list[Tag] = []

    def tag(self, key: str) -> Any:
        return next((tag.value for tag in self.tags if tag.key == key), None)

    @property
    def failed(self) -> bool:
        return self.tag("error") in (True, "true") or self.tag("otel.status_code") == "ERROR"


class Process(_Jaeger):
    serviceName: str


class Trace(_Jaeger):
    traceID: str
    spans: list[Span]
    processes: dict[str, Process]

    def service_of(self, span: Span) -> str:
        process = self.processes.get(span.processID)
        return process.serviceName if process else ""


class TraceAnswer(_Jaeger):
    data: list[Trace]


@dataclass(frozen=True)
class Verdict:
    """Whether the trace proves the fault, and the span (and what about it) that does,
    or why none does — in words the learner reads, in their language when they read
    them (the attempt keeps them)."""

    proves: bool
    reason: Words


def trace_id(text: str) -> str:
    """`text` as a trace id (32 hexadecimal digits, lower case); `EvidenceError` if not."""
    cleaned = text.strip().lower()
    if len(cleaned) != 32 or any(c not in "0123456789abcdef" for c in cleaned):
        raise EvidenceError(_("'{text}' is not a trace id — copy the 32 hexadecimal digits "
                              "from the explorer's trace page").format(text=text[:40]))
    return cleaned


async def ask(explorer: httpx.AsyncClient, path: str, what: str,
              params: dict[str, str | int] | None = None, *, missing_ok: bool = False
              ) -> httpx.Response:
    """GET `path` from the explorer (`explorer`'s base URL and headers): its answer, 200
    (or 404 with `missing_ok`); `EvidenceError` naming `what` was asked for otherwise."""
    try:
        answer = await explorer.get(path, params=params, timeout=TIMEOUT)
    except httpx.HTTPError as exc:
        raise EvidenceError(_("cannot reach the explorer at {url} ({error}) — is the stack "
                              "up? (kansoku status)").format(url=explorer.base_url,
                                                             error=type(exc).__name__)
                            ) from exc
    if answer.status_code in (401, 403):
        raise EvidenceError(_("the explorer refused the request — set "
                              "KANSOKU_EXPLORER_TOKEN to its token"))
    if answer.status_code != 200 and not (missing_ok and answer.status_code == 404):
        raise EvidenceError(_("the explorer answered {status} for {what} — try again, or "
                              "see its log").format(status=answer.status_code, what=what))
    return answer


async def read_trace(explorer: httpx.AsyncClient, wanted: str) -> Trace | None:
    """The trace from the explorer, None if it has no such trace."""
    answer = await ask(explorer, f"/api/traces/{wanted}",
                       _("trace {trace}").format(trace=wanted), missing_ok=True)
    if answer.status_code == 404:
        return None
    try:
        traces = TraceAnswer.model_validate_json(answer.content).data
    except ValidationError as exc:
        raise EvidenceError(_("the explorer's answer for trace {trace} is not a trace (is "
                              "that URL kansoku's explorer?)").format(trace=wanted)) from exc
    return traces[0] if traces else None


def judge(trace: Trace | None, truth: Truth, wanted: str) -> Verdict:
    """Whether `trace` (`wanted`, None when the explorer has none) proves the fault of
    `truth`."""
    if trace is None:
        return Verdict(False, Phrase(N_("the explorer has no trace {trace} — copy the id of "
                                        "a trace it shows"), trace=wanted))
    if truth.nothing_wrong:
        return Verdict(False, Phrase(N_("this run has no fault for a trace to prove")))
    for span in trace.spans:
        if truth.flag is not None and span.tag(semconv.FEATURE_FLAG_KEY) == truth.flag:
            return Verdict(True, Phrase(N_("span '{span}' ({service}) carries "
                                           "{attribute}={flag}"),
                                        span=span.operationName, service=trace.service_of(span),
                                        attribute=semconv.FEATURE_FLAG_KEY, flag=truth.flag))
    for span in trace.spans:
        service = trace.service_of(span)
        called = span.tag(semconv.PEER_SERVICE)
        if truth.service not in (service, called):
            continue
        where = (Phrase(N_("span '{span}' of {service} calling {called}"),
                        span=span.operationName, service=service, called=called)
                 if called and called != service
                 else Phrase(N_("span '{span}' of {service}"), span=span.operationName,
                             service=service))
        if span.failed:
            return Verdict(True, Phrase(N_("{span} ended in error"), span=where))
        seconds = span.duration / 1_000_000
        if seconds >= SLOW_SPAN_SECONDS:
            return Verdict(True, Phrase(N_("{span} took {seconds}s"), span=where,
                                        seconds=f"{seconds:.2f}"))
    services = sorted({trace.service_of(span) for span in trace.spans})
    return Verdict(False, Phrase(N_("trace {trace} ({count} spans of {services}) shows no "
                                    "error, no slow span and no fault flag on the service "
                                    "you named"),
                                 trace=wanted, count=len(trace.spans),
                                 services=", ".join(services)))


async def check(explorer: httpx.AsyncClient, text: str, truth: Truth) -> Verdict:
    """Read the trace `text` names from the explorer and judge it against `truth`."""
    wanted = trace_id(text)
    return judge(await read_trace(explorer, wanted), truth, wanted)
