"""The flags file: flagd's format written atomically, every flag in it, clear errors for
names and variants that do not exist, and a broken file reported and repaired."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kansoku.faults import flagfile
from kansoku.faults.catalogue import FLAGS, FlagError
from kansoku.faults.flagfile import FlagFileError


@pytest.fixture
def flags_file(tmp_path: Path) -> Path:
    return tmp_path / "flags.json"


def test_the_file_is_flagd_json_with_values_the_code_can_use(flags_file: Path) -> None:
    assert flagfile.set_variant(flags_file, "paymentfailure", "25%") == ("paymentFailure", "25%")
    flagfile.set_variant(flags_file, "paymentLatency", "3S")
    flagfile.set_variant(flags_file, "cartCacheOutage", "on")
    document = json.loads(flags_file.read_text())
    assert document["$schema"] == flagfile.FLAGD_SCHEMA
    payment = document["flags"]["paymentFailure"]
    assert payment["state"] == "ENABLED" and payment["defaultVariant"] == "25%"
    assert payment["variants"]["25%"] == 0.25 and payment["variants"]["off"] == 0
    assert document["flags"]["paymentLatency"]["variants"]["3s"] == 3.0
    assert document["flags"]["cartCacheOutage"]["variants"] == {"off": False, "on": True}
    assert set(document["flags"]) == set(FLAGS)
    variants = flagfile.read_variants(flags_file)
    assert (variants["paymentFailure"], variants["paymentLatency"],
            variants["cartCacheOutage"], variants["loadFlood"]) == ("25%", "3s", "on", "off")
    assert flagfile.current_variant("paymentFailure", flags_file) == "25%"


def test_reset_turns_everything_off_and_keeps_flags_it_does_not_know(flags_file: Path
                                                                     ) -> None:
    flagfile.set_variant(flags_file, "inventoryFailure", "50%")
    document = json.loads(flags_file.read_text())
    document["flags"]["myOwnFlag"] = {"state": "ENABLED", "variants": {"a": 1},
                                      "defaultVariant": "a"}
    flags_file.write_text(json.dumps(document))
    flagfile.reset(flags_file)
    assert set(flagfile.read_variants(flags_file).values()) == {"off"}
    assert "myOwnFlag" in json.loads(flags_file.read_text())["flags"]
    # Written by rename: no temporary file is left behind.
    assert sorted(p.name for p in flags_file.parent.iterdir()) == ["flags.json",
                                                                  "flags.json.lock"]


def test_a_missing_file_means_every_flag_is_off(flags_file: Path) -> None:
    assert set(flagfile.read_variants(flags_file).values()) == {"off"}
    assert flagfile.current_variant("loadFlood", flags_file) == "off"


def test_bad_names_and_variants_name_the_valid_ones(flags_file: Path) -> None:
    with pytest.raises(FlagError) as unknown:
        flagfile.set_variant(flags_file, "paymentFailures", "on")
    assert "no fault flag 'paymentFailures'" in str(unknown.value)
    assert all(name in str(unknown.value) for name in FLAGS)
    with pytest.raises(FlagError) as variant:
        flagfile.set_variant(flags_file, "paymentLatency", "2s")
    assert str(variant.value) == ("Flag paymentLatency has no variant '2s'. "
                                  "Variants: off, 1s, 3s.")
    assert not flags_file.exists(), "nothing was written"


def test_a_broken_file_is_reported_and_repaired_by_setting(flags_file: Path) -> None:
    flags_file.write_text("{not json")
    with pytest.raises(FlagFileError, match=r"not valid JSON .*kansoku flags reset"):
        flagfile.read_variants(flags_file)
    flagfile.set_variant(flags_file, "orderQueueLag", "on")
    assert flagfile.read_variants(flags_file)["orderQueueLag"] == "on"
