"""Typer's own words — the help's panel titles, "[default: …]", "Error", "Try … for
help" — in the command line's language.

Typer writes them in English: the panels' titles are constants of `typer.rich_utils`
(read when help or an error is shown, a module Typer imports only then: it brings
Markdown and syntax highlighting, which `kansoku status` should not wait for), the rest
go through `typer.core`'s `_`. `translate_typer` gives both our catalog's words; the
first when Typer imports the module, through a finder that waits for it.

Click's own words — "Usage:", the help option's "Show this message and exit.", the
parsing errors ("No such option", "Missing argument", "Invalid value for …", "Got
unexpected extra argument(s)") — come from the copy of Click that Typer carries
(`typer._click`: Typer 0.29 no longer uses the `click` package), which writes them
as plain f-strings: Click's gettext marks are gone, so there is no text domain to
give a translation to. What Typer does offer is the class of every command and group
(`cls=`): `TranslatedTyper` is a `typer.Typer` whose commands and groups are
`TranslatedCommand` and `TranslatedGroup`, whose contexts write the usage line with our
"Usage:" (Click's `Context.formatter_class`) and whose help option says its line in our
words. A usage error is put in our words as it leaves the command line's root group
(`usage_errors_in_our_words`): from what the error carries — the option's name, the
parameter, the value and pydantic's error type — where it carries it, and by matching
the exact English sentence where it carries nothing else.

Japanese has no spaces between words, and Rich breaks lines only at spaces: a sentence
longer than the help's column would end in "…". In Japanese, the help's tables fold such
a line at the column's edge instead (`FoldingTable`, and `FoldingColumns` for an option's
help, which Typer lays out in columns of its own).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from enum import Enum
from types import ModuleType
from typing import Any, Final

import typer
from rich.columns import Columns
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from typer._click.core import Context as ClickContext
from typer._click.exceptions import (
    BadArgumentUsage,
    BadOptionUsage,
    BadParameter,
    MissingParameter,
    NoArgsIsHelpError,
    NoSuchOption,
    UsageError,
)
from typer._click.formatting import HelpFormatter
from typer._click.utils import _escape_control_characters
from typer.core import TyperCommand, TyperGroup, TyperOption
from typer.models import CommandFunctionType

from kansoku.kit import i18n
from kansoku.kit.i18n import N_, _

RICH_UTILS: Final = "typer.rich_utils"

#: What `typer.core` passes through its `_`, marked here so that scripts/messages puts
#: them in the catalogs.
CORE_TEXTS: Final = (
    N_("Missing command."), N_("No such command {name!r}."), N_("default: {default}"),
    N_("required"), N_("env var: {var}"), N_("(dynamic)"), N_("Aborted!"),
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


# --- Click's words ---------------------------------------------------------------------

class UsageInOurWords(HelpFormatter):
    """Click's help formatter, whose usage line begins with our "Usage:"."""

    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        super().write_usage(prog, args, _("Usage: ") if prefix is None else prefix)


class TranslatedContext(typer.Context):
    """The context of a `TranslatedCommand` or `TranslatedGroup`: the usage line it
    formats (in its help and above a usage error) is in our words."""

    formatter_class = UsageInOurWords


def _help_option_in_our_words(option: TyperOption | None) -> TyperOption | None:
    if option is not None:
        option.help = _("Show this message and exit.")
    return option


class TranslatedCommand(TyperCommand):
    """A command whose usage line, help option and usage errors are in our words."""

    context_class = TranslatedContext

    def get_help_option(self, ctx: ClickContext) -> TyperOption | None:
        return _help_option_in_our_words(super().get_help_option(ctx))


class TranslatedGroup(TyperGroup):
    """A group whose usage line, help option and usage errors — its own and those of
    every command under it — are in our words."""

    context_class = TranslatedContext

    def get_help_option(self, ctx: ClickContext) -> TyperOption | None:
        return _help_option_in_our_words(super().get_help_option(ctx))

    def make_context(self, info_name: str | None, args: list[str],
                     parent: ClickContext | None = None, **extra: Any) -> ClickContext:
        with usage_errors_in_our_words():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: ClickContext) -> Any:
        # The commands under this group are resolved, parsed and run in here.
        with usage_errors_in_our_words():
            return super().invoke(ctx)


class TranslatedTyper(typer.Typer):
    """A `typer.Typer` whose groups and commands are, unless told otherwise,
    `TranslatedGroup` and `TranslatedCommand`: every command app of kansoku is one."""

    def __init__(self, **options: Any) -> None:
        if options.get("cls") is None:
            options["cls"] = TranslatedGroup
        super().__init__(**options)

    def command(self, name: str | None = None, **options: Any
                ) -> Callable[[CommandFunctionType], CommandFunctionType]:
        if options.get("cls") is None:
            options["cls"] = TranslatedCommand
        return super().command(name, **options)


class UsageErrorInOurWords(UsageError):
    """A usage error as Click raised it, its message put in our words."""

    def __init__(self, message: str, original: UsageError) -> None:
        super().__init__(message, original.ctx)
        self.exit_code = original.exit_code


@contextmanager
def usage_errors_in_our_words() -> Iterator[None]:
    """Raise a usage error from inside in the current language (English: as it is)."""
    try:
        yield
    except UsageError as error:
        message = in_our_words(error)
        if message is None:
            raise
        raise UsageErrorInOurWords(message, error) from error


#: The sentences Click writes with nothing but the text to go by, and how to say them.
_EXTRA_ARGUMENTS: Final = re.compile(r"Got unexpected extra argument\(s\) \((?P<arguments>.*)\)",
                                     re.DOTALL)
_ARGUMENT_TAKES: Final = re.compile(r"Argument (?P<name>'.*') takes (?P<count>\d+) values\.",
                                    re.DOTALL)
_OPTION_REQUIRES: Final = re.compile(r"Option (?P<name>'.*') requires (?P<count>\d+) "
                                     r"arguments\.", re.DOTALL)
#: What Typer adds to "No such command 'x'." when it knows a command of a close name.
_DID_YOU_MEAN: Final = re.compile(r"(?P<head>.*)\. Did you mean (?P<names>.*)\?", re.DOTALL)
#: What Typer puts before a choice parameter's choices when it is missing.
_CHOOSE_FROM: Final = "Choose from:"


def in_our_words(error: UsageError) -> str | None:
    """`error`'s message in the current language; None to leave it as it is (English,
    help shown for a bare group, a message of our own, or one we do not know)."""
    if i18n.current_language() == i18n.DEFAULT_LANGUAGE:
        return None
    match error:
        case NoArgsIsHelpError() | UsageErrorInOurWords():
            return None
        case NoSuchOption():
            return _no_such_option(error)
        case MissingParameter():
            return _missing(error)
        case BadParameter():
            return _invalid(error)
        case BadOptionUsage():
            return _bad_option_usage(error)
        case BadArgumentUsage():
            if found := _ARGUMENT_TAKES.fullmatch(error.message):
                return _("Argument {name} takes {count} values.").format(**found.groupdict())
            return None
        case _:
            return _plain_usage_error(error.message)


def _no_such_option(error: NoSuchOption) -> str:
    name = _escape_control_characters(error.option_name)
    message = (_("No such option: {name}").format(name=name)
               if error.message == f"No such option: {name}" else error.message)
    if error.possibilities:
        message += " " + _("(Possible options: {options})").format(
            options=", ".join(sorted(error.possibilities)))
    return message


def _parameter_hint(error: BadParameter) -> str | None:
    """How Click names the parameter of an error: `'--users'`, `'NAME'`."""
    hint = error.param_hint
    if hint is None and error.param is not None:
        hint = error.param.get_error_hint()
    if hint is None or isinstance(hint, str):
        return hint
    return " / ".join(repr(part) for part in hint)


def _missing(error: MissingParameter) -> str | None:
    hint = _parameter_hint(error)
    if not hint:
        return None
    kind = error.param_type or (error.param.param_type_name if error.param else None)
    sentences = [{"argument": _("Missing argument {name}."),
                  "option": _("Missing option {name}.")}.get(
        kind or "", _("Missing parameter {name}.")).format(name=hint)]
    if error.message:
        sentences.append(error.message)
    if error.param is not None:
        choices = error.param.get_missing_message(ctx=error.ctx)
        if choices and choices.startswith(_CHOOSE_FROM):
            choices = _("Choose from:") + choices.removeprefix(_CHOOSE_FROM)
        if choices:
            sentences.append(choices)
    return _sentences(sentences)


def _invalid(error: BadParameter) -> str:
    detail = _invalid_value_detail(error) or error.message
    hint = _parameter_hint(error)
    if hint is None:
        return _("Invalid value: {detail}").format(detail=detail)
    return _("Invalid value for {name}: {detail}").format(name=hint, detail=detail)


def _invalid_value_detail(error: BadParameter) -> str | None:
    """What was wrong with the value, from pydantic's error (Typer 0.29 checks values
    with pydantic and keeps its error as the cause); None when we have no words for it."""
    from pydantic import ValidationError  # already loaded: Typer checks values with it

    cause = error.__cause__
    if not isinstance(cause, ValidationError) or not cause.errors():
        return None
    first = cause.errors()[0]
    kind, value = first["type"], first.get("input")
    limits: Mapping[str, Any] = first.get("ctx") or {}
    if kind == "value_error" and error.param is not None:
        descriptor = getattr(error.param, "type_descriptor", None)
        if descriptor is not None and descriptor.is_choice and descriptor.choices:
            return _("{value!r} is not one of {choices}.").format(
                value=value, choices=", ".join(repr(_choice_text(choice))
                                               for choice in descriptor.choices))
        return None
    details: dict[str, Callable[[], str]] = {
        "int_parsing": lambda: _("{value!r} is not a whole number.").format(value=value),
        "int_from_float": lambda: _("{value!r} is not a whole number.").format(value=value),
        "float_parsing": lambda: _("{value!r} is not a number.").format(value=value),
        "bool_parsing": lambda: _("{value!r} is neither true nor false (true/false, "
                                  "yes/no, 1/0).").format(value=value),
        "greater_than_equal": lambda: _("{value} is less than {limit}, the least "
                                        "allowed.").format(value=value,
                                                           limit=limits.get("ge")),
        "less_than_equal": lambda: _("{value} is more than {limit}, the most "
                                     "allowed.").format(value=value, limit=limits.get("le")),
        "greater_than": lambda: _("{value} must be more than {limit}.").format(
            value=value, limit=limits.get("gt")),
        "less_than": lambda: _("{value} must be less than {limit}.").format(
            value=value, limit=limits.get("lt")),
    }
    said = details.get(kind)
    return said() if said else None


def _choice_text(choice: Any) -> str:
    return str(choice.value) if isinstance(choice, Enum) else str(choice)


def _bad_option_usage(error: BadOptionUsage) -> str | None:
    name = repr(error.option_name)
    if error.message == f"Option {name} does not take a value.":
        return _("Option {name} does not take a value.").format(name=name)
    if error.message == f"Option {name} requires an argument.":
        return _("Option {name} requires a value.").format(name=name)
    if found := _OPTION_REQUIRES.fullmatch(error.message):
        return _("Option {name} requires {count} values.").format(**found.groupdict())
    return None


def _plain_usage_error(message: str) -> str | None:
    if found := _EXTRA_ARGUMENTS.fullmatch(message):
        return _("Got unexpected extra arguments ({arguments}).").format(
            arguments=found["arguments"])
    if found := _DID_YOU_MEAN.fullmatch(message):
        # Typer's own "No such command" (already ours) and its English suggestion.
        return _sentences([found["head"],
                           _("Did you mean {names}?").format(names=found["names"])])
    return None


def _sentences(sentences: Sequence[str]) -> str:
    """Sentences one after the other: a space after an English one, none after a
    Japanese "。" (nor before a line break)."""
    text = ""
    for sentence in sentences:
        if text and not text.endswith(("。", "\n")) and not sentence.startswith("\n"):
            text += " " if text.endswith((".", "?", ":")) else ". "
        text += sentence
    return text
