"""`kansoku flags list|set|reset`: the fault flags (see docs/faults.md).

The flags live in `<data dir>/flags.json` (or the file `KANSOKU_FLAGS_FILE` names), in
flagd's format; every service of a running stack sees a change within about a second.
In a Kubernetes cluster they live in a ConfigMap (`--configmap`, or
`KANSOKU_FLAGS_CONFIGMAP`, which the chart sets in the gateway's pods), switched
through the Kubernetes API (see docs/deploy.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from kansoku.commands.common import DataDir, console, fail, load_settings, print_table
from kansoku.commands.typer_texts import TranslatedTyper
from kansoku.faults import catalogue, flagfile
from kansoku.faults.configmap import FLAGS_CONFIGMAP_VARIABLE, FlagConfigMap
from kansoku.kit.flagkinds import OFF
from kansoku.kit.i18n import _

app = TranslatedTyper(help=_("List, set and reset the fault flags."), no_args_is_help=True)


ConfigMapOption = Annotated[str | None, typer.Option(
    "--configmap", help=_("Switch the flags of a Kubernetes release: its flags ConfigMap, "
                          "[NAMESPACE/]NAME (e.g. kansoku/shop-kansoku-flags), through the "
                          "kubeconfig's cluster"),
    envvar=FLAGS_CONFIGMAP_VARIABLE, show_default=False)]


def flags_file(data_dir: Path | None) -> Path:
    """The flag file of the stack in `data_dir` (or `KANSOKU_FLAGS_FILE` when set)."""
    explicit = flagfile.default_path()
    if explicit is not None:
        return explicit.expanduser().absolute()
    return load_settings(data_dir).data_dir / "flags.json"


def flag_store(data_dir: Path | None, configmap: str | None) -> flagfile.FlagStore:
    """The ConfigMap named (`--configmap` or `KANSOKU_FLAGS_CONFIGMAP`), else the flags
    file of the stack (`flags_file`)."""
    if not configmap:
        return flagfile.FlagFile(flags_file(data_dir))
    try:
        return FlagConfigMap.named(configmap)
    except flagfile.FlagFileError as exc:
        fail(str(exc))


def _current(store: flagfile.FlagStore) -> dict[str, str]:
    try:
        return store.read_variants()
    except flagfile.FlagFileError as exc:
        fail(str(exc))


@app.command("list", help=_("Every flag: its current variant, its variants, and what it "
                            "does."))
def list_flags(
    data_dir: DataDir = None,
    as_json: Annotated[bool, typer.Option("--json",
                                          help=_("Print JSON instead of a table"))] = False,
    configmap: ConfigMapOption = None,
) -> None:
    store = flag_store(data_dir, configmap)
    variants = _current(store)
    if as_json:
        console.print_json(json.dumps([
            {"name": flag.name, "variant": variants[flag.name],
             "variants": flag.variant_names, "service": flag.service,
             "description": flag.description, "effect": flag.effect,
             "look_for": flag.look_for}
            for flag in catalogue.FLAGS.values()]))
        return
    table = Table(title=_("Fault flags ({location})").format(location=store.location),
                  title_justify="left")
    table.add_column(_("flag"), no_wrap=True)
    table.add_column(_("now"), no_wrap=True)
    table.add_column(_("variants"))
    table.add_column(_("description"))
    for flag in catalogue.FLAGS.values():
        now = variants[flag.name]
        table.add_row(flag.name, now if now == OFF else f"[bold red]{now}[/]",
                      " ".join(flag.variant_names), flag.description)
    print_table(table)


@app.command("set", help=_("Switch a flag to one of its variants (`off` turns it off)."))
def set_flag(
    name: Annotated[str, typer.Argument(help=_("The flag, e.g. paymentFailure"))],
    variant: Annotated[str, typer.Argument(help=_("One of its variants, e.g. 25% (off: "
                                                  "off)"))],
    data_dir: DataDir = None,
    configmap: ConfigMapOption = None,
) -> None:
    store = flag_store(data_dir, configmap)
    try:
        name, variant = store.set_variant(name, variant)
    except (catalogue.FlagError, flagfile.FlagFileError) as exc:
        fail(str(exc))
    except OSError as exc:
        fail(_cannot_write(store, exc))
    state = "off" if variant == OFF else f"[bold red]{variant}[/]"
    console.print(_("{name} is now {variant}  ({location})").format(
        name=name, variant=state, location=store.location))


def _cannot_write(store: flagfile.FlagStore, exc: OSError) -> str:
    return _("cannot write {location}: {error} — check the data directory").format(
        location=store.location, error=exc.strerror)


@app.command("reset", help=_("Turn every flag off."))
def reset_flags(data_dir: DataDir = None, configmap: ConfigMapOption = None) -> None:
    store = flag_store(data_dir, configmap)
    try:
        store.reset()
    except flagfile.FlagFileError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(_cannot_write(store, exc))
    console.print(_("Every fault flag is off  ({location})").format(location=store.location))
