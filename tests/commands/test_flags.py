"""`kansoku flags list|set|reset` against a data directory's flags file, and the one
plain line a bad name or variant gets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kansoku.cli import app
from kansoku.faults import catalogue, flagfile
from kansoku.kit.flagkinds import FLAGS_FILE_VARIABLE


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(FLAGS_FILE_VARIABLE, raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_set_list_and_reset(data_dir: Path) -> None:
    code, out, _ = run("flags", "set", "paymentfailure", "25%", "--data-dir", str(data_dir))
    assert code == 0 and "paymentFailure is now 25%" in out
    assert flagfile.read_variants(data_dir / "flags.json")["paymentFailure"] == "25%"
    code, out, _ = run("flags", "list", "--data-dir", str(data_dir))
    assert code == 0
    row = next(line for line in out.splitlines() if "paymentFailure" in line)
    assert "25%" in row and "off 10% 25% 50% 75% 100%" in row
    assert "Payments fail that share of charges" in row
    code, out, _ = run("flags", "list", "--json", "--data-dir", str(data_dir))
    listed = {flag["name"]: flag for flag in json.loads(out)}
    assert list(listed) == list(catalogue.FLAGS)
    assert listed["paymentFailure"]["variant"] == "25%"
    assert listed["loadFlood"]["variants"] == ["off", "on"]
    code, out, _ = run("flags", "reset", "--data-dir", str(data_dir))
    assert code == 0 and "Every fault flag is off" in out
    assert set(flagfile.read_variants(data_dir / "flags.json").values()) == {"off"}


def test_the_flags_file_variable_wins(data_dir: Path, monkeypatch: pytest.MonkeyPatch
                                      ) -> None:
    elsewhere = data_dir / "elsewhere.json"
    monkeypatch.setenv(FLAGS_FILE_VARIABLE, str(elsewhere))
    assert run("flags", "set", "orderQueueLag", "on")[0] == 0
    assert flagfile.read_variants(elsewhere)["orderQueueLag"] == "on"


@pytest.mark.parametrize(("args", "message"), [
    (("noSuchFlag", "on"), "error: There is no fault flag 'noSuchFlag'. Flags: "
                           "paymentFailure, paymentLatency,"),
    (("paymentLatency", "2s"), "error: Flag paymentLatency has no variant '2s'. "
                               "Variants: off, 1s, 3s."),
])
def test_bad_names_and_variants_get_one_line(data_dir: Path, args: tuple[str, str],
                                             message: str) -> None:
    code, out, err = run("flags", "set", *args, "--data-dir", str(data_dir))
    assert code == 1 and out == ""
    assert err.startswith(message) and len(err.strip().splitlines()) == 1
    assert not (data_dir / "flags.json").exists()


def test_a_broken_file_is_named(data_dir: Path) -> None:
    (data_dir / "flags.json").write_text("{oops")
    code, _, err = run("flags", "list", "--data-dir", str(data_dir))
    assert code == 1 and "is not valid JSON" in err and "kansoku flags reset" in err
