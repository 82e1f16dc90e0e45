"""Time ranges as the API takes them: a lookback before now ('1h'), Jaeger's start and
end in microseconds, a chart's step."""

from __future__ import annotations

import time
from typing import Annotated

from pydantic import BeforeValidator

from kansoku.kit.durations import DurationError, parse_duration, parse_duration_ns
from kansoku.kit.errors import Problem

DEFAULT_LOOKBACK_NS = 3_600_000_000_000  # an hour

#: A length of time in seconds in a rules file, written as `kit.durations` reads it
#: (`30s`, `1h30m`, or a number of seconds).
Duration = Annotated[float, BeforeValidator(parse_duration)]


def window(lookback: str | None, start: int | None = None, end: int | None = None
           ) -> tuple[int, int]:
    """(start, end) in ns from Jaeger's parameters: start/end in microseconds, or a
    lookback such as '1h' before now (default: the last hour). A Problem for a lookback
    that is no duration."""
    end_ns = end * 1000 if end else time.time_ns()
    if start:
        return start * 1000, end_ns
    if not lookback or lookback == "custom":  # Jaeger's UI sends "custom" with start/end
        return end_ns - DEFAULT_LOOKBACK_NS, end_ns
    try:
        # A bare number is microseconds in Jaeger's API, as its timestamps are.
        span = parse_duration_ns(lookback, bare_unit="us", field="lookback")
    except DurationError as exc:
        raise Problem(400, "bad-parameter", str(exc), field="lookback") from exc
    return end_ns - span, end_ns


def step_ns(step: str) -> int:
    """A chart's time step ('30s', '1m') in ns; at least a second."""
    try:
        return max(parse_duration_ns(step, bare_unit="us", field="step"), 1_000_000_000)
    except DurationError as exc:
        raise Problem(400, "bad-parameter", str(exc), field="step") from exc
