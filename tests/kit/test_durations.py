"""One duration grammar for every reader: each accepted form and its value, each refusal
and its one-sentence message, and `format_duration` written back the same."""

from __future__ import annotations

from typing import Any

import pytest

from kansoku.kit.durations import (
    DurationError,
    Unit,
    format_duration,
    parse_duration,
    parse_duration_ns,
)

MS, S, M, H, D = 1_000_000, 1_000_000_000, 60_000_000_000, 3_600_000_000_000, 86_400 * 10**9


@pytest.mark.parametrize(("value", "nanoseconds"), [
    # one unit each (Go's, and d and w as Prometheus reads them)
    ("7ns", 7), ("250us", 250_000), ("250\u00b5s", 250_000), ("250\u03bcs", 250_000),
    ("500ms", 500 * MS), ("30s", 30 * S), ("2m", 2 * M), ("1h", H), ("3d", 3 * D),
    ("2w", 14 * D),
    # decimals, as in Go and Jaeger: exact, not through a float
    ("1.5s", 1_500 * MS), ("0.1s", 100 * MS), (".5h", 30 * M), ("1.s", S),
    ("2.25m", 135 * S), ("0.000000001s", 1),
    # compound forms, as Go's time.ParseDuration (any order, as Go)
    ("1h30m", 90 * M), ("2m30.5s", 150_500 * MS), ("1h1m1s1ms", H + M + S + MS),
    ("30m1h", 90 * M), ("1d12h", 36 * H),
    # blanks and case, as the rules and `kansoku load` have always taken
    (" 1H ", H), ("500 ms", 500 * MS), ("1h 30m", 90 * M), ("15M", 15 * M),
    # a bare number is in the caller's unit: seconds by default
    ("90", 90 * S), ("1.5", 1_500 * MS), ("0", 0), ("0s", 0),
    # numbers, as YAML gives them
    (15, 15 * S), (0.5, 500 * MS), (0, 0),
    # large
    ("1000000h", 1_000_000 * H),
])
def test_every_accepted_form(value: str | float, nanoseconds: int) -> None:
    assert parse_duration_ns(value) == nanoseconds
    assert parse_duration(value) == nanoseconds / 1e9


@pytest.mark.parametrize(("value", "bare_unit", "nanoseconds"), [
    ("250", "us", 250_000), ("1.5", "us", 1_500), ("2", "ms", 2 * MS), ("2", "m", 2 * M),
    (3, "h", 3 * H), ("0", None, 0), (0, None, 0), ("250ms", "us", 250 * MS),
])
def test_a_bare_number_is_in_the_unit_the_caller_names(value: str | float,
                                                        bare_unit: Unit | None,
                                                        nanoseconds: int) -> None:
    assert parse_duration_ns(value, bare_unit=bare_unit) == nanoseconds


EXAMPLES = "such as 500ms, 30s, 2m, 1h or 3d"


@pytest.mark.parametrize(("value", "options", "message"), [
    ("soon", {}, f"'soon' is not a duration {EXAMPLES}"),
    ("", {}, f"'' is not a duration {EXAMPLES}"),
    ("  ", {}, f"'  ' is not a duration {EXAMPLES}"),
    ("5 minutes", {}, f"'5 minutes' is not a duration {EXAMPLES}"),
    ("1x", {}, f"'1x' is not a duration {EXAMPLES}"),
    ("1mo", {}, f"'1mo' is not a duration {EXAMPLES}"),
    ("m", {}, f"'m' is not a duration {EXAMPLES}"),
    (".s", {}, f"'.s' is not a duration {EXAMPLES}"),
    ("1h30", {}, f"'1h30' is not a duration {EXAMPLES}"),
    ("-5m", {}, f"'-5m' is not a duration {EXAMPLES}"),
    ("+5m", {}, f"'+5m' is not a duration {EXAMPLES}"),
    ("1e3s", {}, f"'1e3s' is not a duration {EXAMPLES}"),
    ("1,5s", {}, f"'1,5s' is not a duration {EXAMPLES}"),
    ("\u0665s", {}, f"'\u0665s' is not a duration {EXAMPLES}"),  # an Arabic-Indic 5
    (None, {}, f"'None' is not a duration {EXAMPLES}"),
    ([1], {}, f"'[1]' is not a duration {EXAMPLES}"),
    (float("nan"), {}, f"'nan' is not a duration {EXAMPLES}"),
    (float("inf"), {}, f"'inf' is not a duration {EXAMPLES}"),
    (True, {}, "expected a duration such as 30s, 2m or 1h"),
    (-1, {}, "a duration cannot be negative"),
    (-0.5, {"field": "window"}, "window cannot be negative"),
    # a caller that wants a unit
    ("90", {"bare_unit": None}, f"'90' is not a duration {EXAMPLES} — give it a unit"),
    (90, {"bare_unit": None}, f"'90' is not a duration {EXAMPLES} — give it a unit"),
    # a caller that wants more than nothing
    ("0", {"positive": True}, "must be longer than 0s"),
    ("0ms", {"positive": True}, "must be longer than 0s"),
    (0, {"positive": True}, "must be longer than 0s"),
    # the field the user filled in begins the sentence
    ("2x", {"field": "lookback"}, f"lookback '2x' is not a duration {EXAMPLES}"),
    ("0s", {"field": "--interval", "positive": True}, "--interval must be longer than 0s"),
])
def test_every_refusal_is_one_sentence(value: Any, options: dict[str, Any],
                                       message: str) -> None:
    with pytest.raises(DurationError) as refused:
        parse_duration(value, **options)
    assert str(refused.value) == message
    assert isinstance(refused.value, ValueError)  # pydantic validators report it
    with pytest.raises(DurationError):
        parse_duration_ns(value, **options)


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (0.001, "1ms"), (0.5, "500ms"), (1, "1s"), (30, "30s"), (90, "90s"),
    (1.5, "1500ms"), (60, "1m"), (120, "2m"), (3600, "1h"), (5400, "90m"),
    (86400, "1d"), (259200, "3d"), (604800, "7d"), (90061, "90061s"),
])
def test_format_duration_writes_the_shortest_exact_text(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds  # and reads back to the same


@pytest.mark.parametrize("text", ["500ms", "1h30m", "2m30.5s", "3d", "1w", "0.25s", "45"])
def test_what_is_parsed_formats_back_to_the_same_length(text: str) -> None:
    seconds = parse_duration(text)
    assert parse_duration(format_duration(seconds)) == seconds
