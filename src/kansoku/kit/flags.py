"""Fault flags as a service sees them: evaluation through OpenFeature, cheap on the hot path.

A service holds one `FaultFlags`, which evaluates the flags through the OpenFeature SDK
with the flagd provider in file mode. The provider polls the flags file (every
`POLL_MILLISECONDS`) and announces a change; `FaultFlags` then evaluates every flag once
and keeps the results, so asking on a request's hot path is a dictionary lookup (an
evaluation through the SDK costs about 30 µs; the lookup well under 1 µs).

The kit knows no flag by name: `FaultFlags` is told which flags exist and the `FlagKind`
of each (the shop's catalogue and the flags file live in `kansoku.faults`). A service
asks `flags.active("paymentFailure")`: `None` when the flag is off, else an
`ActiveFault` that marks the span it acts on (`feature_flag.key`,
`feature_flag.result.variant`), sleeps inside its own span, or builds the error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from kansoku.kit import semconv
from kansoku.kit.errors import Problem
from kansoku.kit.flagkinds import FLAGS_FILE_VARIABLE, OFF, FlagKind, FlagValue

logger = logging.getLogger(__name__)
_tracer = trace.get_tracer("kansoku.faults")

#: How often the flagd provider looks at the file's modification time. (In file mode the
#: provider uses its `deadline_ms` as the polling interval.)
POLL_MILLISECONDS = 500


@dataclass(frozen=True)
class ActiveFault:
    """A flag that is on, as one service sees it: its variant and that variant's value
    (a share for percentages, seconds for latencies, a factor, or True), and its kind."""

    flag: str
    variant: str
    value: FlagValue
    kind: FlagKind

    def hits(self) -> bool:
        """Whether this request is one the fault acts on: always for on/off and time
        flags, that share of the time for percentage flags."""
        if self.kind is not FlagKind.SHARE:
            return True
        return random.random() < self.value  # noqa: S311 - not a secret

    def mark(self, span: Span | None = None) -> None:
        """Say on `span` (default: the current one) that this fault acted on it."""
        span = span or trace.get_current_span()
        span.set_attribute(semconv.FEATURE_FLAG_KEY, self.flag)
        span.set_attribute(semconv.FEATURE_FLAG_VARIANT, self.variant)

    @contextlib.contextmanager
    def span(self, name: str) -> Iterator[Span]:
        """A child span of the current one for the work the fault adds (a sleep, burnt
        CPU); both are marked, so the request's server span shows the fault too."""
        self.mark()
        with _tracer.start_as_current_span(name) as span:
            self.mark(span)
            yield span

    async def sleep(self, seconds: float, span_name: str) -> None:
        """Really wait `seconds`, inside a span of its own."""
        with self.span(span_name):
            await asyncio.sleep(seconds)

    def fail(self, error: Exception, status: int, code: str, detail: str,
             **extensions: Any) -> Problem:
        """The answer to raise for a request this fault breaks. The current span records
        `error` as an exception and turns to error, and one log line says what failed,
        as for a real failure; the caller gets problem+json with `status`."""
        span = trace.get_current_span()
        self.mark(span)
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        logger.error("%s: %s (fault flag %s=%s)", type(error).__name__, error, self.flag,
                     self.variant, extra={"flag": self.flag, "variant": self.variant})
        problem = Problem(status, code, detail, **extensions)
        problem.__cause__ = error
        return problem


class FaultFlags:
    """The fault flags as this process sees them, kept up to date from the file.

    `kinds` names every flag to evaluate and how (the shop passes
    `kansoku.faults.catalogue.FLAG_KINDS`); a flag not in it is always off here.
    `start()` registers a flagd provider (file mode) with OpenFeature under a domain of
    its own and evaluates every flag; each change the provider announces re-evaluates
    them. `active(name)` and `variant(name)` only read what was evaluated. Without a
    file (unset, or missing at start-up), every flag is off: one log line says so, and
    the flags come on if the file appears later.
    """

    def __init__(self, path: Path | str | None, service: str,
                 kinds: Mapping[str, FlagKind]) -> None:
        self.path = Path(path) if path else None
        self.service = service
        #: The flags this process evaluates, and how (any other flag reads as off).
        self.kinds = dict(kinds)
        self._active: dict[str, ActiveFault] = {}
        self._listeners: list[Callable[[], None]] = []
        self._domain = f"kansoku-flags-{service}-{uuid.uuid4().hex[:8]}"
        self._client: Any = None
        self._provider: Any = None
        self._closed = threading.Event()
        self._refreshing = threading.Lock()
        self._waiter: threading.Thread | None = None

    # hot path

    def active(self, name: str) -> ActiveFault | None:
        """The fault if flag `name` is on, else None. A dictionary lookup."""
        return self._active.get(name)

    def variant(self, name: str) -> str:
        fault = self._active.get(name)
        return fault.variant if fault else OFF

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call `listener()` (from a background thread) after every change."""
        self._listeners.append(listener)

    # life cycle

    def start(self) -> None:
        if self.path is None:
            logger.info("fault flags are off: %s is not set", FLAGS_FILE_VARIABLE)
            return
        if not self.path.exists():
            logger.warning("fault flags are off: %s does not exist (`kansoku flags reset` "
                           "creates it)", self.path)
            self._waiter = threading.Thread(target=self._wait_for_file, daemon=True,
                                            name="fault-flags-file-wait")
            self._waiter.start()
            return
        self._connect()

    def close(self) -> None:
        self._closed.set()
        if self._provider is not None:
            from openfeature import api
            from openfeature.provider.no_op_provider import NoOpProvider

            # Replacing the provider shuts it down (its polling thread ends).
            api.set_provider(NoOpProvider(), domain=self._domain)
            self._provider = None

    def _wait_for_file(self) -> None:
        assert self.path is not None
        while not self._closed.wait(POLL_MILLISECONDS / 1000):
            if self.path.exists():
                self._connect()
                return

    def _connect(self) -> None:
        # Imported here: the CLI's `kansoku flags` needs none of it.
        from openfeature import api
        from openfeature.contrib.provider.flagd import FlagdProvider
        from openfeature.contrib.provider.flagd.config import ResolverType
        from openfeature.event import ProviderEvent

        assert self.path is not None
        self._client = api.get_client(self._domain)
        # Registered before the provider starts, so no change can slip in between.
        for provider_event in (ProviderEvent.PROVIDER_READY,
                               ProviderEvent.PROVIDER_CONFIGURATION_CHANGED):
            self._client.add_handler(provider_event, lambda details: self._refresh())
        self._provider = FlagdProvider(resolver_type=ResolverType.FILE,
                                       offline_flag_source_path=str(self.path),
                                       deadline_ms=POLL_MILLISECONDS)
        try:
            api.set_provider_and_wait(self._provider, domain=self._domain)
        except Exception as exc:
            logger.warning("fault flags are off: %s cannot be read (%s)", self.path, exc)
            return
        self._refresh()
        on = {name: fault.variant for name, fault in self._active.items()}
        logger.info("fault flags read from %s%s", self.path,
                    f"; on: {on}" if on else "; all off")

    def _refresh(self) -> None:
        """Evaluate every flag through OpenFeature and swap in the result."""
        client = self._client
        if client is None:
            return
        # Change events run on a thread pool: evaluate one change at a time.
        with self._refreshing:
            self._evaluate(client)

    def _evaluate(self, client: Any) -> None:
        active: dict[str, ActiveFault] = {}
        for name, kind in self.kinds.items():
            if kind is FlagKind.SWITCH:
                details: Any = client.get_boolean_details(name, False)
            else:
                details = client.get_float_details(name, 0.0)
            if details.error_code is None and details.variant not in (None, OFF) and \
                    details.value:
                active[name] = ActiveFault(name, str(details.variant), details.value, kind)
        changed = active != self._active
        self._active = active  # one assignment: readers see the old or the new dict
        if changed:
            logger.info("fault flags changed; on: %s",
                        {name: fault.variant for name, fault in active.items()} or "none")
            for listener in self._listeners:
                try:
                    listener()
                except Exception:
                    logger.exception("a fault flag listener failed")


async def _fault_flags(request: Request) -> FaultFlags:
    # async: FastAPI runs a plain function dependency in a thread pool, costing far
    # more than the lookup.
    flags: FaultFlags = request.app.state.flags
    return flags


#: A route parameter: the app's `FaultFlags`.
Faults = Annotated[FaultFlags, Depends(_fault_flags)]
