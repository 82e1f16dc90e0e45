"""What every `kansoku` subcommand shares: the consoles, `print_table`, the `--data-dir`
option, and `fail`, which ends a command with one plain line naming the problem and the
fix."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console, RenderableType

from kansoku.kit.i18n import _
from kansoku.stack.paths import absolute

if TYPE_CHECKING:
    # pydantic is imported by the commands that read settings, when they do: `kansoku
    # --help` needs none of it.
    from pydantic import ValidationError

    from kansoku.stack.settings import StackSettings

console = Console()
errors = Console(stderr=True)


def in_a_window(out: Console) -> bool:
    """Whether `out` writes to a terminal window rather than a pipe or a file. (Not
    `Console.is_terminal`, which FORCE_COLOR turns on: colours can be asked for in a
    pipe, a window's width cannot.)"""
    try:
        return out.file.isatty()
    except (AttributeError, ValueError):  # no isatty, or already closed
        return False


# Piped or redirected, a line is not wrapped at 80 columns: a path or URL in it stays
# whole for grep and for the next program (a terminal wraps long lines by itself).
console.soft_wrap = not in_a_window(console)
errors.soft_wrap = not in_a_window(errors)

#: Wider than any table a command prints: the bound its natural width is measured in.
_UNBOUNDED_WIDTH = 10_000


def print_table(table: RenderableType) -> None:
    """Print a table (or a report holding one) on stdout. In a terminal it fits the
    window. Piped or redirected (`kansoku status | cat`) there is no window, and Rich
    would squeeze it into 80 columns, cutting URLs and descriptions short: there it
    keeps its natural width instead, one row to a line."""
    if in_a_window(console):
        console.print(table)
        return
    natural = console.measure(table, options=console.options.update_width(
        _UNBOUNDED_WIDTH)).maximum
    Console(file=console.file, width=max(natural, console.width)).print(table)


DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help=_("Where data, logs and state live "
                                      "[env: KANSOKU_DATA_DIR; default: ./.kansoku]"),
                 show_default=False),
]


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one plain line naming the problem and the fix, and exit."""
    errors.print(_("[bold red]error:[/] {message}").format(message=message),
                 highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def invalid_setting(exc: ValidationError, prefix: str = "KANSOKU_") -> NoReturn:
    """End the command with the line naming the bad variable and the fix."""
    from kansoku.kit.settings import invalid_setting_message  # pydantic-settings: lazily

    fail(invalid_setting_message(exc, prefix))


def load_settings(data_dir: Path | None) -> StackSettings:
    """The stack's settings (pydantic-settings, imported here: `kansoku --help` needs
    none, and they are a good part of every command's start)."""
    from pydantic import ValidationError

    from kansoku.stack.settings import StackSettings

    try:
        settings = StackSettings() if data_dir is None else StackSettings(data_dir=data_dir)
    except ValidationError as exc:
        invalid_setting(exc)
    settings.data_dir = absolute(settings.data_dir)
    return settings
