"""`kansoku chaos list|run|schedule`: chaos experiments and game days (docs/chaos.md).

`run` takes a shipped experiment by name or a YAML file, runs it against the stack
running from the data directory and prints what happens as it goes, then the report:
whether the hypothesis held before, during and after, and the recovery time. It exits 0
when the shop recovered, 1 otherwise. `schedule` turns random fault flags on and off.

The chaos machinery (the experiment model, its actions, probes and runner) is imported
inside the commands: every `kansoku` command imports this module.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import signal
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from kansoku.commands.common import (
    DataDir,
    console,
    errors,
    fail,
    load_settings,
    print_table,
)
from kansoku.commands.flags import flags_file
from kansoku.commands.typer_texts import TranslatedTyper
from kansoku.faults import catalogue, flagfile
from kansoku.kit.durations import DurationError, format_duration, parse_duration
from kansoku.kit.flagkinds import OFF
from kansoku.kit.i18n import _, ngettext

if TYPE_CHECKING:
    from kansoku.kit.telemetry import Telemetry
    from kansoku.stack.settings import StackSettings

#: The service name the experiments' telemetry carries.
SERVICE = "chaos"

app = TranslatedTyper(help=_("Chaos experiments and game days against the running stack."),
                      no_args_is_help=True)


@app.command("list", help=_("The shipped experiments: name, title, parameters and what each "
                            "is about."))
def list_experiments() -> None:
    from kansoku.chaos import experiment as model

    table = Table(title=_("Shipped chaos experiments ('kansoku chaos run NAME')"),
                  title_justify="left")
    table.add_column(_("name"), no_wrap=True)
    table.add_column(_("title"), no_wrap=True)
    table.add_column(_("parameters"))
    table.add_column(_("what it does"))
    for name in model.shipped():
        experiment = model.load(name)
        parameters = " ".join(f"{key}={value}" for key, value
                              in experiment.parameters.items())
        # The first sentence: `kansoku chaos run NAME` prints the rest.
        table.add_row(name, model.in_words(experiment.title), parameters,
                      _first_sentence(model.in_words(experiment.description)))
    print_table(table)


def _first_sentence(text: str) -> str:
    """Up to the first full stop, English's or Japanese's."""
    english, japanese = text.find(". "), text.find("。")
    ends = [end for end in (english, japanese) if end >= 0]
    if not ends:
        return text.rstrip(".") + "."
    end = min(ends)
    return text[:end + 1] if end == japanese else text[:end] + "."


def _overrides(values: list[str]) -> dict[str, str]:
    found = {}
    for value in values:
        name, equals, setting = value.partition("=")
        if not equals or not name.strip():
            fail(_("--param '{value}' is not NAME=VALUE — e.g. --param outage=5s").format(
                value=value))
        found[name.strip()] = setting.strip()
    return found


@app.command("run", help=_("Run a chaos experiment: probe the hypothesis, run the method, "
                           "roll back, and report whether the hypothesis held and how long "
                           "the shop took to recover."))
def run(
    experiment: Annotated[str, typer.Argument(
        help=_("A shipped experiment ('kansoku chaos list') or a YAML file"),
        show_default=False)],
    param: Annotated[list[str] | None, typer.Option(
        "--param", "-p", help=_("Set a parameter of the experiment, e.g. outage=5s "
                                "(repeatable)"), show_default=False)] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help=_("Print the report as JSON (progress goes to stderr)"))] = False,
    data_dir: DataDir = None,
) -> None:
    import asyncio

    from kansoku.chaos import experiment as model
    from kansoku.chaos.actions import Stack, StackError
    from kansoku.chaos.report import EventPrinter, render
    from kansoku.chaos.runner import RECOVERED, run_experiment

    try:
        chosen = model.load(experiment, _overrides(param or []))
    except model.ExperimentError as exc:
        fail(str(exc))
    settings = load_settings(data_dir)
    stack = Stack(settings, flags_file(data_dir))
    try:
        stack.check(chosen)
    except StackError as exc:
        fail(str(exc))
    printer = EventPrinter(errors if as_json else console)
    if not as_json:
        console.print(_("[bold]{title}[/] — {source}, against the stack in {path}").format(
            title=model.in_words(chosen.title), source=chosen.source, path=settings.data_dir),
            highlight=False)
        if chosen.description:
            console.print(model.in_words(chosen.description), highlight=False)
        console.print(_("Hypothesis: {title} — {probes}").format(
            title=model.in_words(chosen.hypothesis.title),
            probes="; ".join(str(probe.label) for probe in chosen.hypothesis.probes)),
            highlight=False)
    telemetry = _telemetry(settings)
    try:
        report = asyncio.run(run_experiment(chosen, stack, printer))
    except StackError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        # The runner handles Ctrl-C while it can change anything; this one came just
        # before it began or just after it had put everything back.
        fail(_("interrupted — the experiment left nothing changed"))
    finally:
        with contextlib.suppress(KeyboardInterrupt):
            telemetry.shutdown()  # the experiment's trace and log leave before the report
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        console.print()
        print_table(render(report))
    if report.status != RECOVERED:
        raise typer.Exit(1)


def _telemetry(settings: StackSettings) -> Telemetry:
    """Providers for the experiment's trace and log records, sent where the stack's
    telemetry goes (the explorer, unless the user named another backend)."""
    from kansoku.chaos.runner import logger as runner_logger
    from kansoku.kit.telemetry import setup_telemetry

    os.environ.setdefault("OTEL_EXPORTER_OTLP_ENDPOINT", settings.otlp_endpoint)
    # An experiment may stop the explorer: exiting should not wait long for it.
    os.environ.setdefault("OTEL_EXPORTER_OTLP_TIMEOUT", "5")
    telemetry = setup_telemetry(SERVICE, prometheus=False)
    # The run's log records go over OTLP only: the console already says the same.
    run_log = logging.getLogger(runner_logger.name)
    run_log.handlers, run_log.propagate = list(telemetry.log_handlers), False
    run_log.setLevel(logging.INFO)
    return telemetry


def _duration(value: str, option: str) -> float:
    try:
        return parse_duration(value, field=option, positive=True)
    except DurationError as exc:
        fail(_("{error} — e.g. {option} 2m").format(error=exc, option=option))


@app.command("schedule", help=_("Game day: turn random fault flags on and off, one at a "
                                "time, saying what it does. Every flag it turned on is put "
                                "back when it ends, Ctrl-C included."))
def schedule(
    interval: Annotated[str, typer.Option(
        help=_("A new random fault this often, e.g. 2m"))] = "2m",
    fault_time: Annotated[str | None, typer.Option(
        "--fault-time", help=_("How long each fault stays on [default: half the interval]"),
        show_default=False)] = None,
    duration: Annotated[str | None, typer.Option(
        help=_("How long the game day lasts, e.g. 30m [default: until Ctrl-C]"),
        show_default=False)] = None,
    seed: Annotated[int | None, typer.Option(
        help=_("Seed of the random choices: the same seed replays the same faults "
               "[default: a new one, printed]"), show_default=False)] = None,
    flag: Annotated[list[str] | None, typer.Option(
        "--flag", help=_("Choose only among these flags (repeatable) [default: every flag]"),
        show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help=_("Print the faults it would turn on, change nothing"))] = False,
    data_dir: DataDir = None,
) -> None:
    from kansoku.chaos.scheduler import FaultPicker, Scheduler, plan
    from kansoku.stack.state import StackNotRunning, running_stack

    every = _duration(interval, "--interval")
    on_for = _duration(fault_time, "--fault-time") if fault_time else every / 2
    if on_for > every:
        fail(_("--fault-time ({fault_time}) is longer than --interval ({interval}) — one "
               "fault at a time: make it shorter").format(fault_time=fault_time,
                                                          interval=interval))
    total = _duration(duration, "--duration") if duration else None
    try:
        names = ([catalogue.flag_definition(name).name for name in flag or []]
                 or list(catalogue.FLAGS))
    except catalogue.FlagError as exc:
        fail(str(exc))
    seed = seed if seed is not None else random.SystemRandom().randrange(1, 1_000_000)
    if dry_run:
        shown = plan(seed, names, every, total if total is not None else every * 10)
        for start, fault in shown:
            console.print(_("+{start} on   {fault}  for {duration}").format(
                start=f"{format_duration(start):<6}", fault=fault,
                duration=format_duration(on_for)), highlight=False)
        planned = (_("(seed {seed}; the first {count} faults; nothing was changed)")
                   if total is None else
                   _("(seed {seed}; {count} faults; nothing was changed)"))
        console.print(planned.format(seed=seed, count=len(shown)), highlight=False)
        return
    settings = load_settings(data_dir)
    path = flags_file(data_dir)
    try:
        current = flagfile.read_variants(path)
    except flagfile.FlagFileError as exc:
        fail(str(exc))
    busy = [name for name in names if current[name] != OFF]
    names = [name for name in names if current[name] == OFF]
    if not names:
        fail(_("every flag to choose from is already on — 'kansoku flags reset' turns "
               "them off"))
    if busy:
        console.print(_("Already on, left alone: {flags}").format(flags=", ".join(busy)),
                      highlight=False)
    try:
        running_stack(settings)
    except StackNotRunning as exc:
        if exc.reason == "not-running":
            errors.print(_("[yellow]warning:[/] kansoku is not running from {path}: the "
                           "flags change, but nothing reads them ('kansoku up --detach' "
                           "starts it)").format(path=settings.data_dir), highlight=False)
    until = (_("for {duration}").format(duration=format_duration(total)) if total
             else _("until Ctrl-C"))
    console.print(_("Game day: a random fault every {interval}, each on for {fault_time}, "
                    "{until} (seed {seed}: '--seed {seed}' replays it). Flags file: "
                    "{path}").format(interval=format_duration(every),
                                     fault_time=format_duration(on_for), until=until,
                                     seed=seed, path=path), highlight=False)
    scheduler = Scheduler(path, FaultPicker(seed, names), interval=every,
                          fault_time=on_for, duration=total,
                          say=lambda line: console.print(line, highlight=False))

    def stop_on_signal(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    # A closed terminal or SIGTERM ends it like Ctrl-C: the flags are put back.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop_on_signal)
    interrupted = False
    try:
        scheduler.run()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        # Putting the flags back must not be cut short by a second Ctrl-C.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        try:
            restored = scheduler.restore()
        except (OSError, catalogue.FlagError) as exc:
            fail(_("could not put the flags back ({error}) — run 'kansoku flags "
                   "reset'").format(error=exc))
    back = (_("; put back just now: {flags}").format(flags=", ".join(restored))
            if restored else "")
    faults = ngettext("{count} fault", "{count} faults", scheduler.faults).format(
        count=scheduler.faults)
    ended = (_("Stopped: {faults} turned on{back}. Every flag it set is back as it was.")
             if interrupted else
             _("Done: {faults} turned on{back}. Every flag it set is back as it was."))
    console.print(ended.format(faults=faults, back=back), highlight=False)
