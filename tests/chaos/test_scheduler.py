"""The game-day scheduler: its seeded choices, and that every flag it turns on is back
as it was when it ends — at the end of its duration, and on Ctrl-C or SIGTERM. It only
writes the flags file, so a real file in a temporary directory is all it needs."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kansoku.chaos.scheduler import Fault, FaultPicker, Scheduler, plan
from kansoku.cli import app
from kansoku.faults import catalogue, flagfile
from kansoku.kit import i18n
from kansoku.kit.flagkinds import OFF
from tests.support import stack_environment


def test_the_same_seed_picks_the_same_faults() -> None:
    names = list(catalogue.FLAGS)
    first = [FaultPicker(42, names).next() for _ in range(1)]
    picker, again = FaultPicker(42, names), FaultPicker(42, names)
    picks = [picker.next() for _ in range(50)]
    assert picks == [again.next() for _ in range(50)]
    assert picks[0] == first[0]
    assert picks != [FaultPicker(43, names).next() for _ in range(50)]
    for fault in picks:
        assert fault.variant in catalogue.FLAGS[fault.flag].variant_names
        assert fault.variant != OFF
    # One fault at a time, and never the same flag twice in a row.
    assert all(a.flag != b.flag for a, b in itertools.pairwise(picks))
    assert len({fault.flag for fault in picks}) > 5


def test_a_restricted_pool_and_the_plan() -> None:
    picker = FaultPicker(1, ["paymentLatency", "paymentFailure"])
    picks = [picker.next() for _ in range(6)]
    assert [fault.flag for fault in picks] == ["paymentLatency", "paymentFailure"] * 3 or \
        [fault.flag for fault in picks] == ["paymentFailure", "paymentLatency"] * 3
    # Ten minutes at one fault every two: five faults, the same as the picker gives.
    steps = plan(7, list(catalogue.FLAGS), 120, 600)
    assert [start for start, _ in steps] == [0, 120, 240, 360, 480]
    picker = FaultPicker(7, list(catalogue.FLAGS))
    assert [fault for _, fault in steps] == [picker.next() for _ in range(5)]
    with pytest.raises(ValueError, match="no flags"):
        FaultPicker(1, [])


def test_each_fault_goes_on_then_back(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    flagfile.reset(path)
    seen: list[dict[str, str]] = []
    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        seen.append({name: variant for name, variant in flagfile.read_variants(path).items()
                     if variant != OFF})

    scheduler = Scheduler(path, FaultPicker(5, ["paymentFailure", "catalogSlowQuery"]),
                          interval=0.4, fault_time=0.2, duration=1.2, say=say)
    began = time.monotonic()
    scheduler.run()
    assert 1.1 < time.monotonic() - began < 3
    assert scheduler.faults == 3 and not scheduler.changed
    assert [line.split()[2] for line in lines] == ["on", "off"] * 3
    # While on, exactly the fault is on; once off, nothing.
    assert [len(on) for on in seen] == [1, 0] * 3
    assert set(flagfile.read_variants(path).values()) == {OFF}


def test_restore_puts_back_what_it_changed(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    flagfile.set_variant(path, "paymentFailure", "25%")  # someone else's before it started
    scheduler = Scheduler(path, FaultPicker(1, ["paymentFailure"]), interval=60,
                          fault_time=30, duration=None, say=lambda line: None)
    scheduler.turn_on(Fault("paymentFailure", "100%"))
    scheduler.turn_on(Fault("orderQueueLag", "on"))
    assert flagfile.read_variants(path)["paymentFailure"] == "100%"
    assert sorted(scheduler.restore()) == ["orderQueueLag=off", "paymentFailure=25%"]
    variants = flagfile.read_variants(path)
    assert variants["paymentFailure"] == "25%" and variants["orderQueueLag"] == OFF


def test_dry_run_prints_the_seeded_plan_and_changes_nothing(tmp_path: Path) -> None:
    args = ["chaos", "schedule", "--seed", "7", "--interval", "2m", "--duration", "10m",
            "--dry-run", "--data-dir", str(tmp_path)]
    first, second = CliRunner().invoke(app, args), CliRunner().invoke(app, args)
    assert first.exit_code == 0 and first.stdout == second.stdout
    lines = first.stdout.strip().splitlines()
    assert len(lines) == 6 and lines[-1] == "(seed 7; 5 faults; nothing was changed)"
    expected = [f"{fault}" for _, fault in plan(7, list(catalogue.FLAGS), 120, 600)]
    assert [line.split()[2] for line in lines[:5]] == expected
    assert not (tmp_path / "flags.json").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--interval", "soon"], "error: --interval 'soon' is not a duration"),
    (["--interval", "1m", "--fault-time", "2m"], "error: --fault-time (2m) is longer than "
                                                 "--interval (1m)"),
    (["--flag", "nope"], "error: There is no fault flag 'nope'. Flags: paymentFailure,"),
])
def test_bad_options_get_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["chaos", "schedule", *args, "--data-dir",
                                      str(tmp_path)])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith(message) and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_puts_every_flag_back(tmp_path: Path, signum: int) -> None:
    env = stack_environment(tmp_path / "data")  # no stack runs there: only the file
    path = tmp_path / "data" / "flags.json"
    flagfile.set_variant(path, "loadFlood", "on")  # already on: left alone
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "kansoku", "chaos", "schedule", "--interval", "1m",
         "--fault-time", "50s", "--seed", "11"], env={**env, "COLUMNS": "200"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            on = [name for name, variant in flagfile.read_variants(path).items()
                  if variant != OFF and name != "loadFlood"]
            if on:
                break
            assert scheduler.poll() is None, scheduler.communicate()
            time.sleep(0.1)
        assert len(on) == 1, "the scheduler turned no fault on within 30 s"
        os.kill(scheduler.pid, signum)
        out, err = scheduler.communicate(timeout=30)
    finally:
        if scheduler.poll() is None:
            scheduler.kill()
            scheduler.wait()
    assert scheduler.returncode == 0, err
    assert "Already on, left alone: loadFlood" in out
    assert "(seed 11: '--seed 11' replays it)" in out
    assert (f"Stopped: 1 fault turned on; put back just now: {on[0]}=off. Every flag it "
            "set is back as it was.") in out
    variants = flagfile.read_variants(path)
    assert variants["loadFlood"] == "on"
    assert [name for name, variant in variants.items() if variant != OFF] == \
        ["loadFlood"]


def test_a_game_day_says_what_it_does_in_japanese(tmp_path: Path, japanese: None) -> None:
    path = tmp_path / "flags.json"
    flagfile.reset(path)
    lines: list[str] = []
    scheduler = Scheduler(path, FaultPicker(5, ["paymentFailure"]), interval=60,
                          fault_time=30, duration=None, say=lines.append)
    fault = Fault("paymentFailure", "25%")
    scheduler.turn_on(fault)
    scheduler.turn_off(fault)
    description = i18n.gettext(catalogue.FLAGS["paymentFailure"].description)
    assert description != catalogue.FLAGS["paymentFailure"].description
    on, off = (line.split("  ", 2)[2] for line in lines)
    assert on == f"オン  paymentFailure=25%  期間 30s — {description}"
    assert off == "オフ  paymentFailure (off に戻しました)"
