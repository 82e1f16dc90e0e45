"""Every command's `--help` at 80 columns, as a newcomer's terminal shows it: the prose
is re-wrapped to the width (no line ends where the next word would still have fit, as
a docstring's own line breaks used to make it), and no word of a docstring or of an
option's help goes missing on the way (rich markup used to swallow `[default: …]`)."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from itertools import pairwise

import pytest
import typer
from typer.core import TyperCommand, TyperGroup, TyperOption
from typer.testing import CliRunner

from kansoku.cli import app

WIDTH = 80

Command = TyperCommand | TyperGroup


def _commands(command: Command, path: tuple[str, ...] = ()
              ) -> Iterator[tuple[tuple[str, ...], Command]]:
    """Every command and group a user can ask for help on, with the words that name it."""
    yield path, command
    if isinstance(command, TyperGroup):
        for name, sub in command.commands.items():
            assert isinstance(sub, TyperCommand | TyperGroup)
            if not sub.hidden:
                yield from _commands(sub, (*path, name))


def _root() -> Command:
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    return root


COMMANDS = dict(_commands(_root()))


def _words(text: str) -> list[str]:
    """The words of help text as written (Markdown's backticks are not shown)."""
    return text.replace("`", "").split()


def _help(path: tuple[str, ...]) -> list[str]:
    """The help as shown, colours taken out (Typer forces them on under GitHub Actions
    or FORCE_COLOR)."""
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": str(WIDTH)})
    assert result.exit_code == 0, result.output
    lines = re.sub(r"\x1b\[[0-9;]*m", "", result.output).splitlines()
    assert max(len(line) for line in lines) <= _width(lines), "\n".join(lines)
    return lines


def _width(lines: list[str]) -> int:
    """The width the help was rendered at: its panels' borders span it (80 columns,
    unless Typer was told otherwise by TERMINAL_WIDTH)."""
    return max(len(line.rstrip()) for line in lines if line.startswith("╭"))


def _description(lines: list[str]) -> list[list[str]]:
    """The paragraphs between the usage line and the first panel, as lines of text."""
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("Usage:"))
    paragraphs: list[list[str]] = [[]]
    for line in lines[start + 1:]:
        if line.startswith("╭"):
            break
        if line.strip():
            paragraphs[-1].append(line.strip())
        elif paragraphs[-1]:
            paragraphs.append([])
    return [paragraph for paragraph in paragraphs if paragraph]


def _panel(lines: list[str], title: str) -> list[str]:
    """The inside of a panel (between its borders), line by line."""
    start = next((i for i, line in enumerate(lines)
                  if line.startswith("╭") and f" {title} " in line), None)
    if start is None:
        return []
    inside = []
    for line in lines[start + 1:]:
        if line.startswith("╰"):
            break
        inside.append(line.rstrip()[1:-1])
    return inside


def _premature_breaks(paragraph: list[str], column: int, width: int) -> list[str]:
    """Line breaks in a paragraph (its lines starting at `column`, `width` wide) where
    the next line's first word would have fitted on the line before."""
    return [f"{line!r} / {following.split()[0]!r}"
            for line, following in pairwise(paragraph)
            if column + len(line) + 1 + len(following.split()[0]) <= width]


def _first_paragraph(command: Command) -> str:
    return inspect.cleandoc(command.help or "").split("\n\n")[0]


@pytest.mark.parametrize("path", list(COMMANDS), ids=lambda path: " ".join(path) or "kansoku")
def test_help_is_wrapped_to_the_terminal_and_says_everything(path: tuple[str, ...]) -> None:
    command = COMMANDS[path]
    lines = _help(path)

    # The description: every word of the docstring, wrapped only where it must be.
    paragraphs = _description(lines)
    written = inspect.cleandoc(command.help or "").partition("\f")[0]
    assert _words(" ".join(" ".join(p) for p in paragraphs)) == _words(written)
    for paragraph in paragraphs:
        assert not _premature_breaks(paragraph, 1, _width(lines) - 1), paragraph

    # A group's commands: each one's first paragraph, likewise.
    rows: dict[str, list[str]] = {}
    for line in _panel(lines, "Commands"):
        if line[1:2].strip():  # a new row starts with the command's name
            name, text = line.split(maxsplit=1)
            rows[name] = [text.strip()]
            column = line.index(text)
        else:
            rows[name].append(line.strip())
    assert isinstance(command, TyperGroup) == bool(rows)
    for name, row in rows.items():
        sub = COMMANDS[(*path, name)]
        assert _words(" ".join(row)) == _words(_first_paragraph(sub)), name
        assert not _premature_breaks(row, column, len(line) - 1), (name, row)

    # Every option's and argument's help, whole (with what Typer adds, such as the
    # default, in between).
    panels = _panel(lines, "Options") + _panel(lines, "Arguments")
    for parameter in command.params:
        helped = getattr(parameter, "help", None)
        if not helped:
            continue
        shown_as = parameter.opts[0] if isinstance(parameter, TyperOption) else parameter.name
        rows_start = [i for i, line in enumerate(panels) if line[1:6].strip()]
        starts = [i for i in rows_start
                  if re.match(rf"\s*\*?\s*{re.escape(str(shown_as))}\s", panels[i])]
        assert starts, (shown_as, panels)
        after = [i for i in rows_start if i > starts[0]]
        window = iter(_words(" ".join(panels[starts[0]:after[0] if after else None])))
        missing = [word for word in _words(helped) if word not in window]
        assert not missing, (shown_as, helped, missing)
