"""The `kansoku` command: the Typer app, put together from `kansoku.commands`.

    kansoku up | down | status | stop | start   the stack (commands/stack.py)
    kansoku serve | migrate                     the services (commands/services.py)
    kansoku version
    kansoku flags …                             fault flags (commands/flags.py)
    kansoku load | synth                        generated traffic (commands/load.py)
    kansoku alerts …                            alert rules and SLOs (commands/alerts.py)
    kansoku chaos …                             chaos experiments (commands/chaos.py)
    kansoku drill …                             incident drills, scored (commands/drill.py)

Errors are one line naming the problem and the fix, with a non-zero exit code
(`commands.common.fail`).
"""

from __future__ import annotations

import typer

from kansoku import __version__
from kansoku.commands import alerts as alerts_commands
from kansoku.commands import chaos as chaos_commands
from kansoku.commands import drill as drill_commands
from kansoku.commands import flags as flags_commands
from kansoku.commands import load as load_commands
from kansoku.commands import services as services_commands
from kansoku.commands import stack as stack_commands

app = typer.Typer(
    name="kansoku",
    help="kansoku (観測): an online shop built to be observed.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Help is Markdown: a docstring's line breaks are only where its source wraps, so
    # each paragraph is re-flowed to the terminal's width (Rich markup would keep them,
    # breaking lines mid-sentence, and would swallow "[default: …]" as a style tag).
    # Write `<placeholders>` and `code` in backticks: bare <…> is an HTML tag, not shown.
    rich_markup_mode="markdown",
)

#: `kansoku version`, in a group of its own only so that `kansoku --help` lists it where
#: it has always been: Typer lists an app's own commands before those of its groups.
about = typer.Typer()


@about.command()
def version() -> None:
    """Print kansoku's version."""
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
