"""What the `kansoku` command loads to start: every command module, and no web framework,
database toolkit, HTTP client or telemetry SDK — those belong to the commands that use
them (imported inside them), so `kansoku --help` and `kansoku status` start at once
(docs/performance.md has the times; this checks the structure, not a time). Nor does it
load pydantic, Babel or asyncio to show its help, nor the settings to show the status."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

#: Packages the CLI must not import merely to start: each costs tens of milliseconds to
#: hundreds, and `kansoku --help` needs none of them. pydantic (and pydantic-settings)
#: come with the commands that read settings, Babel with formatting (the catalogs are
#: read without it: kit/languages.py), asyncio with the commands that run a loop, and
#: urllib's client with a health probe.
HEAVY = ("fastapi", "starlette", "sqlalchemy", "alembic", "httpx", "opentelemetry", "yaml",
         "uvicorn", "asyncpg", "redis", "duckdb", "psutil", "pydantic", "babel", "asyncio",
         "concurrent.futures", "urllib.request", "kansoku.chaos", "kansoku.services",
         "kansoku.explorer", "kansoku.kit.flags")

#: What `kansoku status` must not import, a stack running or not: Typer checks the
#: command line's values with pydantic, but the settings (pydantic-settings, and the
#: models they build) are not needed to read the state file (stack/paths.py), and the
#: probes need neither an HTTP client nor a thread pool (commands/health.py).
HEAVY_FOR_STATUS = ("pydantic_settings", "babel", "asyncio", "httpx", "fastapi",
                    "starlette", "sqlalchemy", "opentelemetry", "yaml", "urllib.request",
                    "http.client", "ssl", "concurrent.futures", "kansoku.chaos",
                    "kansoku.services", "kansoku.explorer", "kansoku.kit.settings",
                    "kansoku.stack.settings", "kansoku.loadgen.settings")


def _loaded_by(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running `code`."""
    printed = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys; print(*sorted(sys.modules))"],
        capture_output=True, text=True, check=True).stdout.split()
    return set(printed)


def _run_quietly(*arguments: str) -> str:
    """Code that runs `kansoku ARGUMENTS…`, its output thrown away (it exits when done)."""
    return ("import contextlib, io, kansoku.cli\n"
            "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
            f"    kansoku.cli.app({list(arguments)!r})")


def _heavy(loaded: set[str], heavy: tuple[str, ...]) -> list[str]:
    return sorted(name for name in loaded if name.split(".")[0] in heavy
                  or name.startswith(heavy))


@pytest.mark.parametrize("code", [
    "import kansoku.cli", _run_quietly("--help"), _run_quietly("--lang", "ja", "--help")])
def test_the_command_starts_without_the_service_machinery(code: str) -> None:
    loaded = _loaded_by(code)
    assert "kansoku.commands.stack" in loaded  # it did load the commands
    assert not _heavy(loaded, HEAVY)


def test_status_reads_the_state_file_without_the_settings(tmp_path: Path) -> None:
    """With no stack, and with one running (a live supervisor; its components do not
    answer: the probes run, and find them down)."""
    from kansoku.stack.state import write_state
    from tests.support import idle_process

    stopped = _loaded_by(_run_quietly("status", "--data-dir", str(tmp_path / "none")))
    assert "kansoku.stack.state" in stopped and not _heavy(stopped, HEAVY_FOR_STATUS)
    with idle_process() as supervisor:
        write_state(tmp_path / "run" / "state.json", {
            "supervisor": {"pid": supervisor.pid, "process_started": None,
                           "state": "running", "data_dir": str(tmp_path), "updated_at": 1.0},
            "components": [{"name": "payments", "kind": "service",
                            "url": "http://127.0.0.1:9/", "pid": None,
                            "process_started": None, "state": "running", "health": "healthy",
                            "restarts": 0, "held": False, "last_exit": None, "log": "-"}],
            "browser_synthetic": {"on": False, "reason": "Playwright is not installed",
                                  "command": "kansoku install-browser"}})
        running = _loaded_by(_run_quietly("status", "--data-dir", str(tmp_path)))
    assert "psutil" in running  # it did find the supervisor alive, and so probed
    assert not _heavy(running, HEAVY_FOR_STATUS)


# --- two languages (issue 23) --------------------------------------------------------

def _kansoku(*arguments: str, language: str | None = None, data_dir: str | None = None
             ) -> subprocess.CompletedProcess[str]:
    """`kansoku ARGUMENTS…` in a fresh process (the language is decided as it starts),
    in a C locale unless `language` sets KANSOKU_LANG, 80 columns, no colours."""
    import os

    environ = {key: value for key, value in os.environ.items()
               if key not in ("KANSOKU_LANG", "LANG", "LC_ALL", "LC_MESSAGES", "FORCE_COLOR")}
    environ.update(LANG="C.UTF-8", COLUMNS="80", NO_COLOR="1", TERM="dumb")
    if language is not None:
        environ["KANSOKU_LANG"] = language
    if data_dir is not None:
        environ["KANSOKU_DATA_DIR"] = data_dir
    return subprocess.run([sys.executable, "-m", "kansoku", *arguments], capture_output=True,
                          text=True, env=environ, timeout=60)


def test_help_speaks_japanese_with_lang_ja_and_english_by_default() -> None:
    japanese = _kansoku("--lang", "ja", "--help")
    assert japanese.returncode == 0, japanese.stderr
    assert "観測されるために作られたオンラインショップ" in japanese.stdout
    assert "コマンド" in japanese.stdout and "オプション" in japanese.stdout  # Typer's panels
    assert "プラットフォーム全体を起動し" in japanese.stdout  # `up`'s line
    english = _kansoku("--help")
    assert "an online shop built to be observed" in english.stdout
    assert "Commands" in english.stdout and "観測されるために" not in english.stdout
    assert "--lang" in english.stdout


def test_kansoku_lang_chooses_the_language_and_the_option_beats_it() -> None:
    from_variable = _kansoku("drill", "start", "--help", language="ja")
    assert "ドリルを開始します" in from_variable.stdout
    assert "[必須]" in from_variable.stdout
    assert "…" not in from_variable.stdout, "a Japanese line was cut short, not folded"
    overridden = _kansoku("--lang", "en", "drill", "start", "--help", language="ja")
    assert "Start a drill" in overridden.stdout and "ドリルを開始" not in overridden.stdout


def test_a_bad_input_is_one_japanese_line(tmp_path: Path) -> None:
    answer = _kansoku("--lang", "ja", "load", "--duration", "soon",
                      data_dir=str(tmp_path))
    assert answer.returncode == 2
    assert answer.stderr.splitlines() == [
        "エラー: --duration 'soon' は期間として読めません。90s、5m、1h30m のように指定して"
        "ください"]
    # A message raised below the commands (no stack runs from this data directory).
    stopped = _kansoku("stop", "payments", language="ja", data_dir=str(tmp_path))
    assert stopped.returncode == 1
    assert len(stopped.stderr.splitlines()) == 1
    assert stopped.stderr.startswith("エラー: kansoku は起動していません")
    assert "'kansoku up --detach' で起動してください" in stopped.stderr
    english = _kansoku("load", "--duration", "soon", data_dir=str(tmp_path))
    assert english.stderr.startswith("error: --duration 'soon' is not a duration")


def test_an_unknown_language_is_refused_by_name() -> None:
    answer = _kansoku("--lang", "fr", "version")
    assert answer.returncode == 2
    assert "'fr' is not one of 'ja', 'en'" in answer.stderr


@pytest.mark.parametrize("arguments", [("drill", "list", "--json"),
                                       ("drill", "glossary", "--json")])
def test_json_output_is_the_same_in_both_languages(arguments: tuple[str, ...]) -> None:
    english = _kansoku(*arguments, language="en")
    japanese = _kansoku(*arguments, language="ja")
    assert english.returncode == japanese.returncode == 0, japanese.stderr
    assert json.loads(english.stdout) == json.loads(japanese.stdout)


def test_status_json_keys_and_values_do_not_follow_the_language(tmp_path: Path) -> None:
    english = json.loads(_kansoku("status", "--json", language="en",
                                  data_dir=str(tmp_path)).stdout)
    japanese = json.loads(_kansoku("status", "--json", language="ja",
                                   data_dir=str(tmp_path)).stdout)
    assert english == japanese
    assert english["state"] == "stopped"
    # The words around it, though, are Japanese.
    said = _kansoku("status", language="ja", data_dir=str(tmp_path)).stdout
    assert said.startswith("kansoku は起動していません")


@pytest.mark.parametrize("command", [("up",), ("status",), ("flags",), ("flags", "set"),
                                     ("load",), ("synth",), ("alerts", "export"),
                                     ("chaos", "schedule"), ("drill", "answer")])
def test_each_commands_help_is_japanese(command: tuple[str, ...]) -> None:
    """A sample across the command modules: the description and every option's help
    are marked for translation (the catalog test checks each marked text has its
    Japanese)."""
    shown = _kansoku(*command, "--help", language="ja").stdout
    description, _, panels = shown.partition("╭")
    assert any("\u3040" <= char <= "\u30ff" for char in description), shown
    rows: list[str] = []  # an option's row, its help's wrapped lines joined to it
    for line in panels.splitlines():
        cells = line.removeprefix("│").split()
        if cells and cells[0].startswith("-"):
            rows.append(line)
        elif rows and cells and not line.startswith(("╭", "╰")):
            rows[-1] += line
    assert rows, shown
    for row in rows:
        if row.removeprefix("│").split()[0] != "--help":  # Typer's own, untranslated
            assert any("\u3040" <= char <= "\u9fff" for char in row), row
