"""Typer's own words — the help's panel titles, "[default: …]", "Error", "Try … for
help" — in the command line's language.

Typer writes them in English: the panels' titles are constants of `typer.rich_utils`
(read when help or an error is shown, a module Typer imports only then: it brings
Markdown and syntax highlighting, which `kansoku status` should not wait for), the rest
go through `typer.core`'s `_`. `translate_typer` gives both our catalog's words; the
first when Typer imports the module, through a finder that waits for it. (Typer's copy of
Click writes "Usage:" and its parsing errors without gettext: those stay English.)

Japanese has no spaces between words, and Rich breaks lines only at spaces: a sentence
longer than the help's column would end in "…". In Japanese, the help's tables fold such
a line at the column's edge instead (`FoldingTable`, and `FoldingColumns` for an option's
help, which Typer lays out in columns of its own).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any, Final

from rich.columns import Columns
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table

from kansoku.kit import i18n
from kansoku.kit.i18n import _, lazy_gettext

RICH_UTILS: Final = "typer.rich_utils"

#: What `typer.core` passes through its `_`, marked here so that scripts/messages puts
#: them in the catalogs.
CORE_TEXTS: Final = (
    lazy_gettext("Missing command."), lazy_gettext("No such command {name!r}."),
    lazy_gettext("default: {default}"), lazy_gettext("required"),
    lazy_gettext("env var: {var}"), lazy_gettext("(dynamic)"), lazy_gettext("Aborted!"),
)


def _translate_rich_utils(module: ModuleType) -> None:
    replacements: dict[str, object] = {
        "DEPRECATED_STRING": _("(deprecated) "),
        "DEFAULT_STRING": _("[default: {}]"),
        "ENVVAR_STRING": _("[env var: {}]"),
        "REQUIRED_LONG_STRING": _("[required]"),
        "ARGUMENTS_PANEL_TITLE": _("Arguments"),
        "OPTIONS_PANEL_TITLE": _("Options"),
        "COMMANDS_PANEL_TITLE": _("Commands"),
        "ERRORS_PANEL_TITLE": _("Error"),
        "ABORTED_TEXT": _("Aborted."),
        "RICH_HELP": _("Try [blue]'{command_path} {help_option}'[/] for help."),
        "Table": FoldingTable, "Columns": FoldingColumns,
    }
    for name, replacement in replacements.items():
        setattr(module, name, replacement)


class FoldingTable(Table):
    """A table whose columns fold a line too long for them (rather than cut it short
    with "…"): how a help text without spaces, as Japanese is written, stays whole."""

    def add_column(self, header: Any = "", footer: Any = "", **options: Any) -> None:
        options.setdefault("overflow", "fold")
        super().add_column(header, footer, **options)

    def add_row(self, *renderables: Any, **options: Any) -> None:
        super().add_row(*renderables, **options)
        for column in self.columns:  # those the row made, as well
            column.overflow = "fold"




class _TranslateWhenLoaded(importlib.abc.MetaPathFinder):
    """Finds `typer.rich_utils` as the import system would, and translates its texts
    once it has run."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != RICH_UTILS:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        run_module = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run_module(module)
            _translate_rich_utils(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def translate_typer() -> None:
    """Typer's words in the current language from now on (English needs nothing)."""
    if i18n.current_language() == i18n.DEFAULT_LANGUAGE:
        return
    import typer.core

    typer.core._ = i18n.gettext  # type: ignore[attr-defined]
    if RICH_UTILS in sys.modules:
        _translate_rich_utils(sys.modules[RICH_UTILS])
    elif not any(isinstance(finder, _TranslateWhenLoaded) for finder in sys.meta_path):
        sys.meta_path.insert(0, _TranslateWhenLoaded())


class FoldingColumns(Columns):
    """Columns (an option's help, its default, "[required]") that fold a line too long
    for them, as `FoldingTable` does."""

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for renderable in super().__rich_console__(console, options):
            if isinstance(renderable, Table):
                for column in renderable.columns:
                    column.overflow = "fold"
            yield renderable
