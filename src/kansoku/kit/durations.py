"""Lengths of time as people and tools write them: one grammar for every duration kansoku
reads — alert rules and SLOs, chaos experiments, `kansoku chaos schedule` and
`kansoku load --duration`, the explorer's Jaeger API — and `format_duration` to write one
back.

The grammar is Go's `time.ParseDuration` (the one Jaeger's API speaks), widened to what
kansoku's readers have always taken:

- one part or several, each a decimal number and a unit: `500ms`, `1.5s`, `1h30m`,
  `2m30.5s`, `.5h`;
- units `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h`, and `d` (24 h) and `w` (7 d), which
  Prometheus reads too;
- letters in either case; blanks around the text and between a number and its unit or
  between parts (`1H 30m`, `500 ms`);
- a bare number (`90`) in the unit the caller names — seconds for the rules and the
  commands, microseconds for Jaeger's API — or refused when the caller names none (only
  `0` then, as in Go);
- no sign: a duration is never negative.

Pure functions of the standard library: the parts are summed as exact fractions, so
`0.1s` is exactly 100,000,000 ns and `1h30m` exactly 5,400 s.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import Final, Literal

__all__ = ["DurationError", "Unit", "format_duration", "parse_duration",
           "parse_duration_ns"]

Unit = Literal["ns", "us", "ms", "s", "m", "h", "d", "w"]

_NS_PER_SECOND: Final = 1_000_000_000
#: Each unit in seconds. Both micro signs: U+00B5 (the keyboard's µ) and U+03BC (Greek mu),
#: as Go accepts.
_UNIT_SECONDS: Final[dict[str, Fraction]] = {
    "ns": Fraction(1, 1_000_000_000), "us": Fraction(1, 1_000_000),
    "\u00b5s": Fraction(1, 1_000_000), "\u03bcs": Fraction(1, 1_000_000),
    "ms": Fraction(1, 1000), "s": Fraction(1), "m": Fraction(60), "h": Fraction(3600),
    "d": Fraction(86_400), "w": Fraction(604_800)}

_NUMBER: Final = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_PART: Final = re.compile(rf"\s*({_NUMBER})\s*([^\W\d_]+)")
_COMPOUND: Final = re.compile(rf"(?:\s*{_NUMBER}\s*[^\W\d_]+)+\s*")
_BARE: Final = re.compile(rf"\s*({_NUMBER})\s*")

#: The examples an error names: forms every reader of durations takes.
_EXAMPLES: Final = "500ms, 30s, 2m, 1h or 3d"


class DurationError(ValueError):
    """Text that is not a duration (or one the caller does not allow); the message is one
    sentence that names the field, when the caller gave it, and shows examples."""


def _refusal(field: str | None, message: str) -> DurationError:
    return DurationError(f"{field} {message}" if field else message)


def _not_a_duration(value: object, field: str | None, hint: str = "") -> DurationError:
    return _refusal(field, f"'{value}' is not a duration such as {_EXAMPLES}{hint}")


def _seconds(value: object, bare_unit: Unit | None, field: str | None,
             positive: bool) -> Fraction:
    """`value` in exact seconds; DurationError when it is not a duration."""
    if isinstance(value, bool):  # a YAML `yes`: a bool is an int to Python
        raise _refusal(field, "expected a duration such as 30s, 2m or 1h")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise _not_a_duration(value, field)
        if value < 0:
            raise _refusal(field, "cannot be negative" if field
                           else "a duration cannot be negative")
        seconds = _bare_number(Fraction(value), value, bare_unit, field)
    else:
        seconds = _text_seconds(str(value), bare_unit, field)
    if positive and seconds <= 0:
        raise _refusal(field, "must be longer than 0s")
    return seconds


def _text_seconds(text: str, bare_unit: Unit | None, field: str | None) -> Fraction:
    if (bare := _BARE.fullmatch(text)) is not None:
        return _bare_number(Fraction(bare.group(1)), text, bare_unit, field)
    if _COMPOUND.fullmatch(text) is None:
        raise _not_a_duration(text, field)
    seconds = Fraction(0)
    for number, unit in _PART.findall(text):
        size = _UNIT_SECONDS.get(unit.lower())
        if size is None:
            raise _not_a_duration(text, field)
        seconds += Fraction(number) * size
    return seconds


def _bare_number(number: Fraction, value: object, bare_unit: Unit | None,
                 field: str | None) -> Fraction:
    """A number without a unit, in `bare_unit`; without one, only 0 (as in Go)."""
    if bare_unit is None and number:
        raise _not_a_duration(value, field, " — give it a unit")
    return number * _UNIT_SECONDS[bare_unit or "s"]


def parse_duration(value: object, *, bare_unit: Unit | None = "s",
                   field: str | None = None, positive: bool = False) -> float:
    """A duration (see the module's doc for the grammar) in seconds.

    `value` is text, or a number (as YAML gives one) read like a bare number: in
    `bare_unit`, or refused when that is None. Anything else is read as its text.
    `positive` refuses zero. `field`, the name of what the user filled in (`--interval`,
    `lookback`), begins the error message, which then reads as one sentence:
    "--interval 'soon' is not a duration such as 500ms, 30s, 2m, 1h or 3d". Raises
    `DurationError` (a ValueError).
    """
    return float(_seconds(value, bare_unit, field, positive))


def parse_duration_ns(value: object, *, bare_unit: Unit | None = "s",
                      field: str | None = None, positive: bool = False) -> int:
    """As `parse_duration`, in whole nanoseconds (a fraction of one is dropped, as Go
    does): for timestamps counted in nanoseconds, with no rounding through a float."""
    return int(_seconds(value, bare_unit, field, positive) * _NS_PER_SECOND)


def format_duration(seconds: float) -> str:
    """Seconds as the shortest exact text that `parse_duration` (and Prometheus) reads:
    `500ms`, `90s`, `2m`, `1h`, `3d`. Below a second it is whole milliseconds."""
    if seconds and seconds < 1:
        return f"{round(seconds * 1000)}ms"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s" if seconds == int(seconds) else f"{round(seconds * 1000)}ms"
