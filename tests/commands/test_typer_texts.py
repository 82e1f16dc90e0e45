"""Click's own words in the command line's language (commands/typer_texts.py): the usage
line, the help option's line and every usage error — "No such option", "Missing
argument", "Invalid value", extra arguments — in Japanese for `--lang ja`, and as Click
writes them in English otherwise.

Each runs `kansoku` in a fresh process, as a person does: the language is decided as the
command line starts."""

from __future__ import annotations

import os
import re

import pytest

from tests.support import run_cli

#: How the command names itself, run as `python -m kansoku`.
KANSOKU = "python -m kansoku"
#: Box-drawing characters of Rich's panels, taken out to read the words alone.
_BOX = re.compile(r"[╭╮╰╯│─]+")


def kansoku(*arguments: str, language: str | None = None) -> tuple[int, str, str]:
    """`kansoku ARGUMENTS…` in a C locale (KANSOKU_LANG=`language` if given), 200 columns
    wide, no colours: its exit code, stdout, and stderr's words with the panel's box
    taken away and the lines joined."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("KANSOKU_LANG", "LANG", "LC_ALL", "LC_MESSAGES", "FORCE_COLOR")}
    env.update(LANG="C.UTF-8", COLUMNS="200", NO_COLOR="1", TERM="dumb")
    if language is not None:
        env["KANSOKU_LANG"] = language
    result = run_cli(*arguments, env=env, timeout=60)
    words = " ".join(_BOX.sub(" ", result.stderr).split())
    return result.returncode, result.stdout, words


def test_an_unknown_option_is_a_japanese_usage_error() -> None:
    code, _, said = kansoku("--lang", "ja", "status", "--bogus")
    assert code == 2
    assert said == (f"使い方: {KANSOKU} status [OPTIONS] '{KANSOKU} status --help' でヘルプを"
                    "表示できます。 エラー 不明なオプションです: --bogus")


def test_in_english_the_usage_error_is_clicks_own() -> None:
    code, _, said = kansoku("status", "--bogus")
    assert code == 2
    assert said == (f"Usage: {KANSOKU} status [OPTIONS] Try '{KANSOKU} status --help' for "
                    "help. Error No such option: --bogus")


@pytest.mark.parametrize(("arguments", "expected"), [
    # An option close to one that exists: the candidates, in Japanese too.
    (("status", "--jsno"), "不明なオプションです: --jsno (候補: --json)"),
    (("chaos", "run"), "引数 'experiment' が指定されていません。"),
    (("load", "--users", "many"),
     "'--users' / '-u' の値が正しくありません: 'many' は整数ではありません。"),
    (("load", "--users", "0"),
     "'--users' / '-u' の値が正しくありません: 0 は小さすぎます。1 以上にしてください。"),
    (("load", "--users"), "オプション '--users' には値が必要です。"),
    (("version", "now"), "余分な引数があります: now"),
    (("stauts",), "コマンド 'stauts' はありません。もしかして 'status', 'start' ですか\uff1f"),
])
def test_each_kind_of_usage_error_is_said_in_japanese(arguments: tuple[str, ...],
                                                      expected: str) -> None:
    code, _, said = kansoku("--lang", "ja", *arguments)
    assert code == 2
    assert said.endswith("エラー " + expected), said
    assert "Usage" not in said and "Error" not in said


def test_a_choice_refused_names_the_choices_in_japanese() -> None:
    """KANSOKU_LANG=ja and a --lang kansoku does not speak: the error is Japanese."""
    code, _, said = kansoku("--lang", "fr", "version", language="ja")
    assert code == 2
    assert said.endswith("'--lang' の値が正しくありません: 'fr' は選べません。次のいずれかに"
                         "してください: 'ja', 'en'"), said


def test_the_help_says_usage_and_its_own_option_in_japanese() -> None:
    code, shown, _ = kansoku("--lang", "ja", "status", "--help")
    assert code == 0
    assert shown.strip().startswith(f"使い方: {KANSOKU} status [OPTIONS]")
    assert "このヘルプを表示して終了します。" in shown
    assert "Usage" not in shown and "Show this message" not in shown
