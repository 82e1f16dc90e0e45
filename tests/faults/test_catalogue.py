"""The catalogue: every flag starts off, says how a service evaluates it, and is found by
name and variant whatever the case."""

from __future__ import annotations

from pathlib import Path

import pytest

from kansoku.faults.catalogue import (
    FLAG_KINDS,
    FLAGS,
    FlagError,
    canonical_variant,
    flag_definition,
)
from kansoku.kit.flagkinds import OFF, FlagKind


def test_every_flag_starts_off_with_a_value_that_does_nothing() -> None:
    for flag in FLAGS.values():
        (first, value), *others = flag.variants
        assert (first, bool(value)) == (OFF, False), flag.name
        assert others and all(value for _, value in others), flag.name
        assert len(set(flag.variant_names)) == len(flag.variants), flag.name


@pytest.mark.parametrize(("name", "kind"), [
    ("paymentFailure", FlagKind.SHARE),
    ("inventoryFailure", FlagKind.SHARE),
    ("paymentLatency", FlagKind.AMOUNT),
    ("imageSlowLoad", FlagKind.AMOUNT),
    ("workerMemoryLeak", FlagKind.AMOUNT),
    ("cartCacheOutage", FlagKind.SWITCH),
    ("loadFlood", FlagKind.SWITCH),
])
def test_each_flag_is_evaluated_as_its_variants_say(name: str, kind: FlagKind) -> None:
    assert FLAGS[name].kind is kind
    assert FLAG_KINDS[name] is kind


def test_the_kinds_cover_every_flag_and_only_switches_are_booleans() -> None:
    assert list(FLAG_KINDS) == list(FLAGS)
    for name, kind in FLAG_KINDS.items():
        booleans = {isinstance(value, bool) for _, value in FLAGS[name].variants}
        assert booleans == {kind is FlagKind.SWITCH}, name


def test_names_and_variants_are_found_whatever_the_case() -> None:
    flag = flag_definition("PAYMENTLATENCY")
    assert flag.name == "paymentLatency"
    assert canonical_variant(flag, " 3S ") == "3s"
    with pytest.raises(FlagError, match="Flags: paymentFailure, paymentLatency, "):
        flag_definition("paymentLatencies")
    with pytest.raises(FlagError, match=r"Variants: off, 1s, 3s\.$"):
        canonical_variant(flag, "2s")


def test_the_guide_names_each_flag_s_cause_as_the_catalogue_does() -> None:
    """docs/faults.md's table of flags gives each flag's cause category: the catalogue's."""
    guide = (Path(__file__).parents[2] / "docs" / "faults.md").read_text("utf-8")
    rows = {cells[1].strip("` "): cells[-2].strip()
            for line in guide.splitlines() if line.startswith("| `")
            for cells in [line.split("|")]}
    assert rows == {name: flag.category.value for name, flag in FLAGS.items()}
