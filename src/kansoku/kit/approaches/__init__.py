"""Which instrumentation a service runs: OpenTelemetry (the kit's own, `kit/telemetry.py`),
a vendor's agent (one module per vendor beside this one), or none.

`KANSOKU_INSTRUMENTATION` chooses for every service, `KANSOKU_<SERVICE>_INSTRUMENTATION`
for one (`kit/settings.py`). One approach per process, never two agents at once: with a
vendor's approach selected the OpenTelemetry SDK is not started, and the kit's own
spans and measurements (which go through the OpenTelemetry API) fall to what that
approach makes of them. docs/approaches.md compares what each one sees.

An approach hooks into a service at these points, the same for every vendor:

- `start()`, when the process starts (before the app and its HTTP clients exist: a
  vendor that patches a library must do it first);
- `wrap(app)`, the ASGI middleware that opens the vendor's transaction per request;
- `on_startup()`, inside the serving event loop (a vendor whose context is per asyncio
  task must be set up on the loop that serves);
- `user_identified(user_id)`, called by `kit.auth` once a request's user is known;
- `current_trace_id()`, the trace being recorded, for a record to link to;
- for kansoku's events over NATS, which neither vendor's library sees (`kit.events`):
  `event_trace_headers()`, the vendor's trace headers an event carries so its consumers
  continue the trace; `publishing(…)` around a publish; `consuming(…)` around the
  handling of one event, opening the vendor's segment or transaction for it; and
  `event_failed(error)` when a handler failed;
- `shutdown()`, last, to flush what is buffered.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

from starlette.types import ASGIApp


class Instrumentation(enum.StrEnum):
    """The instrumentation approaches kansoku can run a service with."""

    #: OpenTelemetry SDK, OTLP to the explorer (the default, `kit/telemetry.py`).
    OTEL = "otel"
    #: AWS X-Ray SDK for traces, CloudWatch embedded metric format for metrics
    #: (`kit/approaches/xray.py`).
    XRAY = "xray"
    #: The New Relic Python agent (`kit/approaches/newrelic.py`).
    NEWRELIC = "newrelic"
    #: No telemetry exported at all (the OpenTelemetry SDK is not started).
    NONE = "none"


@dataclass(frozen=True)
class ConsumedEvent:
    """One event a service's consumer is about to handle, as `Approach.consuming` sees
    it."""

    #: The NATS subject it came on (`order.paid`).
    subject: str
    #: The consumer's durable name (`worker-order-paid`).
    consumer: str
    #: The event's id.
    message_id: str
    #: The message's headers with their names in lower case (trace headers among them).
    headers: Mapping[str, str]
    #: The user the event acts for, when its baggage names one.
    user_id: str | None


class Approach:
    """A vendor's instrumentation of one service process; subclasses override the
    hooks they need (see the module's docstring). The base does nothing."""

    instrumentation: Instrumentation = Instrumentation.NONE

    def wrap(self, app: ASGIApp, *, quiet: Callable[[str], bool]) -> ASGIApp:
        """`app` inside the vendor's per-request middleware; `quiet(path)` says which
        paths (health probes, scrapes, static files) must not be recorded."""
        return app

    async def on_startup(self) -> None:
        """Set up what needs the serving event loop."""

    def user_identified(self, user_id: str) -> None:
        """Name the request's user in the vendor's own way."""

    def event_trace_headers(self) -> dict[str, str]:
        """The vendor's trace headers naming the work being recorded now (a request, or
        an event's publish), for an event to carry; empty when nothing is recorded."""
        return {}

    def current_trace_id(self) -> str | None:
        """The trace the work being recorded now belongs to, as the explorer names it
        (32 hex digits), for a record to point at (an order keeps the trace that placed
        it); None when nothing is recorded."""
        return None

    def publishing(self, subject: str, message_id: str) -> AbstractContextManager[None]:
        """Around publishing one event: the vendor's record of the publish, when it
        happens inside recorded work. `event_trace_headers` inside names the publish."""
        return nullcontext()

    def consuming(self, event: ConsumedEvent) -> AbstractContextManager[None]:
        """Around handling one event: the vendor's record of the handling, continuing
        the trace the event's headers carry, or noting one it cannot continue."""
        return nullcontext()

    def event_failed(self, error: BaseException) -> None:
        """The event being handled failed with `error` (called inside `consuming`, in
        the `except` that caught it)."""

    def shutdown(self) -> None:
        """Flush and stop. Safe to call twice."""


#: The approach this process runs (set by `kit.app.start_process_telemetry`); None is
#: OpenTelemetry or nothing, which need no hook.
_current: Approach | None = None


def install(approach: Approach | None) -> None:
    """Make `approach` the one `user_identified` tells and `running` answers."""
    global _current
    _current = approach


def user_identified(user_id: str) -> None:
    """Tell the running approach, if any, who the request's user is (`kit.auth`)."""
    if _current is not None:
        _current.user_identified(user_id)


#: What `running` answers under OpenTelemetry or nothing: the base, whose hooks do
#: nothing (OpenTelemetry's own spans and headers are the kit's, `kit.events`).
_NO_VENDOR = Approach()


def running() -> Approach:
    """The vendor's approach this process runs; under OpenTelemetry or none, one whose
    hooks do nothing."""
    return _current or _NO_VENDOR
