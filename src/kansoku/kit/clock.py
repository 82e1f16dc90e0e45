"""Clocks: code that decides what time it is takes one, so a test can move time instead
of sleeping until it passes.

Two kinds, for the two questions the services ask:

- a `WallClock` answers seconds since the epoch, like `time.time` (its default): for
  windows and deadlines counted in seconds (rate-limit windows, token lifetimes);
- a `UtcClock` answers now as a `datetime` in UTC *without* a zone (default `utc_now`):
  what `timestamp without time zone` columns hold and every schema here returns, so
  rows that expire (reservations, refresh tokens) compare with it correctly.

Code takes the clock as a parameter defaulting to the real one; a test passes a function
of its own (`tests.support.ManualClock` gives both kinds from one moved time).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeAlias

#: Seconds since the epoch, as `time.time()` answers.
WallClock: TypeAlias = Callable[[], float]
#: Now in UTC as a naive `datetime`, as `utc_now()` answers.
UtcClock: TypeAlias = Callable[[], datetime]

#: The real wall clock.
wall_time: WallClock = time.time


def utc_now() -> datetime:
    """Now in UTC, naive: what `timestamp without time zone` columns (server default
    now() in a UTC session) hold, so the two compare correctly."""
    return datetime.now(UTC).replace(tzinfo=None)
