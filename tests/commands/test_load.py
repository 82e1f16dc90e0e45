"""`kansoku load` and `kansoku synth` refuse bad input with one line naming the problem
and the fix, before anything starts (the runs themselves: tests/stack/test_load.py);
`kansoku install-browser` says what it did, or what to do."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kansoku.kit.durations import parse_duration
from tests.browser import missing_chromium
from tests.support import free_ports, run_cli, stack_environment


def load_duration(text: str) -> float:
    """`--duration` as `kansoku load` reads it (the grammar: tests/kit/test_durations.py)."""
    return parse_duration(text, positive=True)


@pytest.mark.parametrize(("text", "seconds"), [
    ("90", 90), ("90s", 90), ("5m", 300), ("1h30m", 5400), ("2m30s", 150), (" 1H ", 3600),
    ("1.5m", 90)])
def test_durations_people_write_are_understood(text: str, seconds: float) -> None:
    assert load_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "0s", "5 minutes", "1x", "-5m", "m"])
def test_anything_else_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError):
        load_duration(text)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    stderr = result.stderr.strip()
    assert stderr.startswith("error: "), stderr
    assert "Traceback" not in stderr and len(stderr.splitlines()) == 1, stderr
    return stderr


def test_load_without_a_running_stack_says_how_to_start_one(tmp_path: Path) -> None:
    result = run_cli("load", "--duration", "10s", env=stack_environment(tmp_path / "data"),
                     timeout=60)
    assert result.returncode == 1
    error = one_line_error(result)
    assert "kansoku is not running" in error and "kansoku up --detach" in error
    assert "--target" in error


def test_a_bad_duration_is_named_with_examples(tmp_path: Path) -> None:
    result = run_cli("load", "--duration", "soon", env=stack_environment(tmp_path / "data"),
                     timeout=60)
    assert result.returncode == 2
    error = one_line_error(result)
    assert "'soon' is not a duration" in error and "5m" in error


def test_an_unreachable_target_is_named(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    result = run_cli("load", "--target", f"http://127.0.0.1:{port}", "--duration", "5s",
                     env=stack_environment(tmp_path / "data"), timeout=60)
    assert result.returncode == 1
    error = one_line_error(result)
    assert f"cannot reach the gateway at http://127.0.0.1:{port}" in error


def test_a_target_that_is_not_a_url_is_refused(tmp_path: Path) -> None:
    result = run_cli("load", "--target", "localhost:8000", env=stack_environment(
        tmp_path / "data"), timeout=60)
    assert result.returncode == 2
    assert "is not an http(s) URL" in one_line_error(result)


def test_synth_names_the_journeys_it_knows(tmp_path: Path) -> None:
    result = run_cli("synth", "--journey", "teleport", env=stack_environment(
        tmp_path / "data"), timeout=60)
    assert result.returncode == 2
    error = one_line_error(result)
    assert "no journey 'teleport'" in error
    assert "browse, checkout, storefront" in error


def test_synth_without_a_running_stack_says_how_to_start_one(tmp_path: Path) -> None:
    result = run_cli("synth", env=stack_environment(tmp_path / "data"), timeout=60)
    assert result.returncode == 1
    assert "kansoku up --detach" in one_line_error(result)


def test_the_summary_lists_every_step_in_journey_order_with_the_total() -> None:
    from rich.console import Console

    from kansoku.commands.load import summary_document, summary_table
    from kansoku.loadgen.steps import STEP_NAMES

    summary = {
        "elapsed": 12.0, "errors": [],
        "steps": [{"name": "checkout: pay", "requests": 7, "failures": 2, "p50": 80,
                   "p95": 300, "p99": 310, "rps": 0.5},
                  {"name": "browse: home page", "requests": 40, "failures": 0, "p50": 11,
                   "p95": 43, "p99": 99, "rps": 3.3}],
        "total": {"requests": 47, "failures": 2, "p50": 12, "p95": 280, "p99": 310,
                  "rps": 3.9}}
    document = summary_document(summary, "http://127.0.0.1:8000")
    assert [f"{row['journey']}: {row['step']}" for row in document["steps"]] == list(
        STEP_NAMES)
    rows = {(row["journey"], row["step"]): row for row in document["steps"]}
    assert rows["checkout", "pay"] == {"journey": "checkout", "step": "pay", "requests": 7,
                                       "failures": 2, "p50_ms": 80, "p95_ms": 300,
                                       "p99_ms": 310}
    assert rows["search", "search"]["requests"] == 0  # a step nobody reached still shows
    assert document["total"]["failures"] == 2

    console = Console(width=120, record=True)
    console.print(summary_table(summary))
    text = console.export_text()
    lines = [line for line in text.splitlines() if "│" in line]
    assert [cell.strip() for cell in lines[-1].split("│")[1:-1]] == [
        "all", "", "47", "2", "12", "280", "310"]
    pay = next(line for line in lines if "pay" in line)
    assert [cell.strip() for cell in pay.split("│")[1:-1]] == [
        "checkout", "pay", "7", "2", "80", "300", "310"]
    assert len(lines) == len(STEP_NAMES) + 1


def test_install_browser_where_both_are_there_says_the_journey_can_run(tmp_path: Path
                                                                       ) -> None:
    """Here (scripts/test installs Chromium, the test extra Playwright) nothing is
    installed: the command says the browser synthetic can run."""
    if reason := missing_chromium():
        pytest.skip(reason)
    result = run_cli("install-browser", env=stack_environment(tmp_path / "data"))
    assert result.returncode == 0, result.stderr
    assert "The browser synthetic can run" in result.stdout


def test_install_browser_for_a_chromium_path_of_ones_own_names_the_variable(tmp_path: Path
                                                                            ) -> None:
    env = {**stack_environment(tmp_path / "data"),
           "KANSOKU_SYNTHETICS_CHROMIUM_PATH": "/nonexistent/chromium"}
    result = run_cli("install-browser", env=env)
    assert result.returncode == 1
    assert one_line_error(result) == (
        "error: KANSOKU_SYNTHETICS_CHROMIUM_PATH names /nonexistent/chromium, which is not a "
        "program: install Chromium there, or unset the variable to use Debian's "
        "(/usr/bin/chromium)")
