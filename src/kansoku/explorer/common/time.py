"""Time ranges as the API takes them: a lookback before now ('1h'), Jaeger's start and
end in microseconds, a chart's step."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Query
from pydantic import BeforeValidator

from kansoku.kit.durations import DurationError, parse_duration, parse_duration_ns
from kansoku.kit.errors import invalid_parameter

DEFAULT_LOOKBACK_NS = 3_600_000_000_000  # an hour

#: A length of time in seconds in a rules file, written as `kit.durations` reads it
#: (`30s`, `1h30m`, or a number of seconds).
Duration = Annotated[float, BeforeValidator(parse_duration)]


#: What `kit.durations` reads, as a pattern the OpenAPI document states (and FastAPI
#: checks): one or more number-and-unit parts (`500ms`, `1h30m`, `2d`), or a bare number
#: (microseconds, as in Jaeger's API).
_NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_UNIT = r"(?:[nN][sS]|[uU\u00b5\u03bc][sS]|[mM][sS]|[sSmMhHdDwW])"
DURATION_PATTERN = rf"^\s*(?:{_NUMBER}\s*{_UNIT}\s*)+$|^\s*{_NUMBER}\s*$"
#: Jaeger's UI sends `lookback=custom` with start and end.
LOOKBACK_PATTERN = rf"^custom$|{DURATION_PATTERN}"
#: The longest step: 2**62 ns (146 years); beyond it DuckDB's BIGINT would overflow.
_LONGEST_STEP_NS = 2**62

#: Query parameters: how far back to look, and a chart's step.
Lookback = Annotated[str, Query(
    pattern=LOOKBACK_PATTERN, max_length=40,
    description="How far back: a duration such as 15m, 1h or 2d (a bare number is "
                "microseconds)")]
Step = Annotated[str, Query(pattern=DURATION_PATTERN, max_length=40,
                            description="A chart's step, e.g. 30s or 1m (at least 1s)")]
#: A span's duration bound (Jaeger's minDuration/maxDuration).
SpanDuration = Annotated[str, Query(pattern=DURATION_PATTERN, max_length=40,
                                    description="e.g. 250ms, 1m30s")]


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
        raise invalid_parameter("lookback", str(exc)) from exc
    # A lookback longer than time itself starts at the epoch (no negative timestamps).
    return max(end_ns - span, 0), end_ns


def step_ns(step: str) -> int:
    """A chart's time step ('30s', '1m') in ns; at least a second."""
    try:
        return min(max(parse_duration_ns(step, bare_unit="us", field="step"),
                       1_000_000_000), _LONGEST_STEP_NS)
    except DurationError as exc:
        raise invalid_parameter("step", str(exc)) from exc
