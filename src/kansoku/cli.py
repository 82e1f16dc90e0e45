"""The `kansoku` command: the Typer app, put together from `kansoku.commands`.

    kansoku up | down | status | stop | start   the stack (commands/stack.py)
    kansoku serve | migrate                     the services (commands/services.py)
    kansoku version
    kansoku flags …                             fault flags (commands/flags.py)
    kansoku load | synth                        generated traffic (commands/load.py)
    kansoku alerts …                            alert rules and SLOs (commands/alerts.py)
    kansoku chaos …                             chaos experiments (commands/chaos.py)
    kansoku drill …                             incident drills, scored (commands/drill.py)

It speaks Japanese or English (`kansoku --lang ja …`, else KANSOKU_LANG, else the
locale's LANG; kit/i18n.py): every help text and message goes through the gettext
catalogs, `--json` output stays the same in both. The language is decided here, before
the command modules are imported, because Typer's help texts are written when they are.

Errors are one line naming the problem and the fix, with a non-zero exit code
(`commands.common.fail`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Annotated

from kansoku.kit import i18n
from kansoku.kit.i18n import Language, _


def language_option(arguments: Sequence[str]) -> str | None:
    """The value of `--lang` (or `--lang=…`) among the command line's arguments, read
    before Typer parses them (Typer checks it is ja or en)."""
    for position, argument in enumerate(arguments):
        if argument == "--":
            break
        if argument == "--lang" and position + 1 < len(arguments):
            return arguments[position + 1]
        if argument.startswith("--lang="):
            return argument.partition("=")[2]
    return None


i18n.set_language(i18n.command_line_language(language_option(sys.argv[1:]), os.environ))

# Imported once the language is known: their help texts are translated as they load.
import typer  # noqa: E402

from kansoku import __version__  # noqa: E402
from kansoku.commands import alerts as alerts_commands  # noqa: E402
from kansoku.commands import chaos as chaos_commands  # noqa: E402
from kansoku.commands import drill as drill_commands  # noqa: E402
from kansoku.commands import flags as flags_commands  # noqa: E402
from kansoku.commands import load as load_commands  # noqa: E402
from kansoku.commands import services as services_commands  # noqa: E402
from kansoku.commands import stack as stack_commands  # noqa: E402
from kansoku.commands.typer_texts import TranslatedTyper, translate_typer  # noqa: E402

translate_typer()

app = TranslatedTyper(
    name="kansoku",
    help=_("kansoku (観測): an online shop built to be observed."),
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Help is Markdown: a docstring's line breaks are only where its source wraps, so
    # each paragraph is re-flowed to the terminal's width (Rich markup would keep them,
    # breaking lines mid-sentence, and would swallow "[default: …]" as a style tag).
    # Write `<placeholders>` and `code` in backticks: bare <…> is an HTML tag, not shown.
    rich_markup_mode="markdown",
)


@app.callback()
def choose_language(
    lang: Annotated[Language | None, typer.Option(
        "--lang", help=_("The language of help and messages: ja or en [env: KANSOKU_LANG; "
                         "default: from LANG, else en]"), show_default=False)] = None,
) -> None:
    # Decided again for each run: a run in this process (`run`, a test's) must not speak
    # the language an earlier one chose (`kansoku drill … --lang` sets it too).
    i18n.set_language(lang or i18n.command_line_language(None, os.environ))


#: `kansoku version`, in a group of its own only so that `kansoku --help` lists it where
#: it has always been: Typer lists an app's own commands before those of its groups.
about = TranslatedTyper()


@about.command(help=_("Print kansoku's version."))
def version() -> None:
    typer.echo(__version__)


# `kansoku --help` lists the commands in this order.
app.add_typer(stack_commands.app)
app.add_typer(services_commands.app)
app.add_typer(about)
app.add_typer(flags_commands.app, name="flags")
app.add_typer(load_commands.app)
app.add_typer(alerts_commands.app, name="alerts")
app.add_typer(chaos_commands.app, name="chaos")
app.add_typer(drill_commands.app, name="drill")


def main() -> None:
    app()


def run(arguments: list[str]) -> int:
    """`kansoku ARGUMENTS…` in this process, returning its exit code: what a process
    forked from the services' template runs (`stack/prefork.py`)."""
    try:
        app(arguments, prog_name="kansoku")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0
