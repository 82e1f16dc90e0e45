"""`kansoku flags list|set|reset`: the fault flags (see docs/faults.md).

The flags live in `<data dir>/flags.json` (or the file `KANSOKU_FLAGS_FILE` names), in
flagd's format; every service of a running stack sees a change within about a second.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from kansoku.commands.common import DataDir, console, fail, load_settings, print_table
from kansoku.faults import catalogue, flagfile
from kansoku.kit.flagkinds import OFF

app = typer.Typer(help="List, set and reset the fault flags.", no_args_is_help=True)


def flags_file(data_dir: Path | None) -> Path:
    """The flag file of the stack in `data_dir` (or `KANSOKU_FLAGS_FILE` when set)."""
    explicit = flagfile.default_path()
    if explicit is not None:
        return explicit.expanduser().absolute()
    return load_settings(data_dir).data_dir / "flags.json"


def _current(path: Path) -> dict[str, str]:
    try:
        return flagfile.read_variants(path)
    except flagfile.FlagFileError as exc:
        fail(str(exc))


@app.command("list")
def list_flags(
    data_dir: DataDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")]
    = False,
) -> None:
    """Every flag: its current variant, its variants, and what it does."""
    path = flags_file(data_dir)
    variants = _current(path)
    if as_json:
        console.print_json(json.dumps([
            {"name": flag.name, "variant": variants[flag.name],
             "variants": flag.variant_names, "service": flag.service,
             "description": flag.description, "effect": flag.effect,
             "look_for": flag.look_for}
            for flag in catalogue.FLAGS.values()]))
        return
    table = Table(title=f"Fault flags ({path})", title_justify="left")
    table.add_column("flag", no_wrap=True)
    table.add_column("now", no_wrap=True)
    table.add_column("variants")
    table.add_column("description")
    for flag in catalogue.FLAGS.values():
        now = variants[flag.name]
        table.add_row(flag.name, now if now == OFF else f"[bold red]{now}[/]",
                      " ".join(flag.variant_names), flag.description)
    print_table(table)


@app.command("set")
def set_flag(
    name: Annotated[str, typer.Argument(help="The flag, e.g. paymentFailure")],
    variant: Annotated[str, typer.Argument(help="One of its variants, e.g. 25% (off: off)")],
    data_dir: DataDir = None,
) -> None:
    """Switch a flag to one of its variants (`off` turns it off)."""
    path = flags_file(data_dir)
    try:
        name, variant = flagfile.set_variant(path, name, variant)
    except catalogue.FlagError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror} — check the data directory")
    state = "off" if variant == OFF else f"[bold red]{variant}[/]"
    console.print(f"{name} is now {state}  ({path})")


@app.command("reset")
def reset_flags(data_dir: DataDir = None) -> None:
    """Turn every flag off."""
    path = flags_file(data_dir)
    try:
        flagfile.reset(path)
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror} — check the data directory")
    console.print(f"Every fault flag is off  ({path})")
