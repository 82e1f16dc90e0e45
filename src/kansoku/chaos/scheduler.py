"""Game days: random fault flags, on and off, on a schedule.

Every `interval` the scheduler picks a flag and one of its variants (never `off`) at
random, turns it on, and after `fault_time` puts it back to the variant it had; then it
waits for the next interval. One fault at a time, never the same flag twice in a row.
The picks come from a `random.Random(seed)`: the same seed and flags give the same
faults in the same order, so a game day can be replayed (and the seed is printed).

What it says (`say`) is in the reader's language (kit/i18n.py); a flag's description too.

Whatever it turned on, it puts back when it ends — at the end of `duration`, on Ctrl-C,
SIGTERM or a closed terminal. Flags that were already on when it started are someone
else's: it leaves them alone.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from kansoku.faults import catalogue, flagfile
from kansoku.kit.durations import format_duration
from kansoku.kit.flagkinds import OFF
from kansoku.kit.i18n import _, gettext


@dataclass(frozen=True)
class Fault:
    """One flag at one variant."""

    flag: str
    variant: str

    def __str__(self) -> str:
        return f"{self.flag}={self.variant}"


class FaultPicker:
    """Random faults from `names`, reproducible from `seed`."""

    def __init__(self, seed: int, names: Sequence[str]) -> None:
        if not names:
            raise ValueError("no flags to choose from")
        self.names = list(names)
        self._rng = random.Random(seed)  # noqa: S311 - a game day, not a secret
        self._last: str | None = None

    def next(self) -> Fault:
        choices = [name for name in self.names if name != self._last] or self.names
        name = self._rng.choice(choices)
        variants = [v for v in catalogue.FLAGS[name].variant_names if v != OFF]
        self._last = name
        return Fault(name, self._rng.choice(variants))


def plan(seed: int, names: Sequence[str], interval: float, duration: float
         ) -> list[tuple[float, Fault]]:
    """The faults a game day of `duration` would start, each with its start time in
    seconds from the beginning (what `--dry-run` prints)."""
    picker = FaultPicker(seed, names)
    return [(index * interval, picker.next())
            for index in range(max(1, int(-(-duration // interval))))]


class Scheduler:
    """Turns faults on and off in one flags file, saying what it does through `say`."""

    def __init__(self, flags_file: Path, picker: FaultPicker, *, interval: float,
                 fault_time: float, duration: float | None,
                 say: Callable[[str], None]) -> None:
        self.flags_file = flags_file
        self.picker = picker
        self.interval = interval
        self.fault_time = fault_time
        self.duration = duration
        self.say = say
        #: Flag -> its variant before the scheduler first set it, while it is changed.
        self.changed: dict[str, str] = {}
        self.faults = 0
        self._began = time.monotonic()

    def _line(self, text: str) -> None:
        minutes, seconds = divmod(time.monotonic() - self._began, 60)
        self.say(f"{datetime.now().strftime('%H:%M:%S')}  +{int(minutes)}:{seconds:04.1f}  "
                 f"{text}")

    def _sleep_until(self, moment: float) -> None:
        remaining = moment - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)

    def run(self) -> None:
        """Until `duration` has passed (forever if None). Raises whatever interrupts it
        (KeyboardInterrupt) after `restore` — call `restore` in a `finally` too."""
        self._began = time.monotonic()
        end = None if self.duration is None else self._began + self.duration
        index = 0
        # Fault n starts at n * interval, computed rather than summed (adding 0.4 three
        # times falls short of 1.2 and would start one fault too many), and a start
        # within a microsecond of the end counts as the end.
        while self.duration is None or index * self.interval < self.duration - 1e-6:
            start = self._began + index * self.interval
            fault = self.picker.next()
            self.turn_on(fault)
            off_at = start + self.fault_time
            self._sleep_until(off_at if end is None else min(off_at, end))
            self.turn_off(fault)
            index += 1
            following = self._began + index * self.interval
            self._sleep_until(following if end is None else min(following, end))

    def turn_on(self, fault: Fault) -> None:
        before = flagfile.read_variants(self.flags_file)[fault.flag]
        self.changed.setdefault(fault.flag, before)
        flagfile.set_variant(self.flags_file, fault.flag, fault.variant)
        self.faults += 1
        self._line(_("on   {fault}  for {duration} — {description}").format(
            fault=fault, duration=format_duration(self.fault_time),
            description=gettext(catalogue.FLAGS[fault.flag].description)))

    def turn_off(self, fault: Fault) -> None:
        original = self.changed.get(fault.flag, OFF)
        flagfile.set_variant(self.flags_file, fault.flag, original)
        self.changed.pop(fault.flag, None)  # only once it is really back
        self._line(_("off  {flag} (back to {variant})").format(flag=fault.flag,
                                                               variant=original))

    def restore(self) -> list[str]:
        """Put back every flag still changed; returns them as `flag=variant`."""
        restored = []
        for name, original in list(self.changed.items()):
            flagfile.set_variant(self.flags_file, name, original)
            del self.changed[name]
            restored.append(f"{name}={original}")
        return restored
