"""An experiment's report in words: lines as the run goes, a summary at the end.

While it runs, `EventPrinter` prints every step of the method and the rollback, and a
probing round whenever its outcome differs from the round before (which probes fail),
so twenty identical rounds do not fill the screen. `render` then prints each probe's
record before, during and after — how many probing rounds it failed in — and the
result: whether the hypothesis held, and the recovery time.

The words are plain on purpose: a probe *held* or *failed* in so many rounds (never
"held 0 of 21", which makes the reader do the subtraction), and the hypothesis holds
or fails.
"""

from __future__ import annotations

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from kansoku.chaos.runner import (
    ABORTED,
    FAILED,
    INTERRUPTED,
    NOT_RECOVERED,
    RECOVERED,
    Event,
    Report,
    Round,
    Step,
)


class EventPrinter:
    """Prints the run's progress on `console`, one line per change."""

    def __init__(self, console: Console) -> None:
        self.console = console
        #: Per phase, the probes that deviated in the round printed last.
        self._last: dict[str, tuple[str, ...]] = {}

    def __call__(self, event: Event) -> None:
        if isinstance(event, Round):
            self._round(event)
        elif isinstance(event, Step):
            self._step(event)
        else:
            self.console.print(f"[yellow]{event}[/]", highlight=False)

    def _round(self, found: Round) -> None:
        signature = tuple(result.probe for result in found.deviations)
        if self._last.get(found.phase) == signature and found.phase != "before":
            return  # as the round before: the summary counts it
        self._last[found.phase] = signature
        # Printed as it ends, so stamped with its end: the lines stay in time order.
        ended = found.at + max((result.seconds for result in found.results), default=0.0)
        line = Text(f"{ended:7.1f}s  {found.phase:9}")
        if found.held:
            line.append("hypothesis holds", style="green")
            if found.phase == "before":
                line.append(": " + "; ".join(f"{result.probe} ({result.detail})"
                                             for result in found.results))
        else:
            line.append("hypothesis fails", style="bold red")
            line.append(": " + "; ".join(f"{result.probe} — {result.detail}"
                                         for result in found.deviations))
        self.console.print(line, highlight=False)

    def _step(self, step: Step) -> None:
        if not step.done:
            if step.quick:
                return  # its end is a moment away, and says more
            line = Text(f"{step.at:7.1f}s  {step.phase:9}")
            line.append(step.action, style="bold")
        elif not step.ok:
            line = Text(f"{step.at + step.seconds:7.1f}s  {step.phase:9}{step.action}: ")
            line.append(f"failed — {step.detail}", style="red")
        elif step.quick:
            line = Text(f"{step.at:7.1f}s  {step.phase:9}")
            line.append(step.action, style="bold")
            line.append(f": {step.detail}" if step.detail else "")
        elif step.detail:
            line = Text(f"{step.at + step.seconds:7.1f}s  {step.phase:9}{step.action}: "
                        f"{step.detail} ({step.seconds:.1f}s)")
        else:
            return  # a wait: its start said it all
        self.console.print(line, highlight=False)


def _rounds(count: int) -> str:
    return f"{count} round" if count == 1 else f"{count} rounds"


def _of_rounds(part: int, whole: int, rounds: str = "rounds") -> str:
    """"the one round", "all 9 rounds" or "3 of 9 rounds"."""
    if whole == 1:
        return f"the one {rounds.removesuffix('s')}"
    return f"all {whole} {rounds}" if part == whole else f"{part} of {whole} {rounds}"


def _record(report: Report, phase: str, probe: str) -> str:
    """One probe in one phase, in words (console markup): held, or in how many of the
    phase's probing rounds it failed."""
    results = [result for found in report.rounds_of(phase) for result in found.results
               if result.probe == probe]
    if not results:
        return "not probed"
    failed = sum(1 for result in results if not result.held)
    if phase == "after":
        # Probing after the rollback stops at the first round that holds: the last
        # round says whether the probe came back.
        if not results[-1].held:
            return f"[red]still failing[/] (failed in {failed} of {_rounds(len(results))})"
        return ("[green]held[/]" if not failed
                else f"[yellow]failed in {_rounds(failed)}, then held[/]")
    if len(results) == 1:
        return "[red]failed[/]" if failed else "[green]held[/]"
    if not failed:
        return f"[green]held in {_of_rounds(len(results), len(results))}[/]"
    style = "red" if failed == len(results) else "yellow"
    return f"[{style}]failed in {_of_rounds(failed, len(results))}[/]"


def render(report: Report) -> RenderableType:
    """The summary: each probe before, during and after; then the result."""
    table = Table(title=f"{report.title} — hypothesis: {report.hypothesis}",
                  title_justify="left", expand=False)
    table.add_column("probe")
    for column in ("before", "during the method", "after the rollback"):
        table.add_column(column, no_wrap=True)
    for probe in report.probes:
        table.add_row(probe, _record(report, "before", probe),
                      _record(report, "during", probe), _record(report, "after", probe))
    return Group(table, Text.from_markup(summary(report), emoji=False))


def summary(report: Report) -> str:
    """The result in a few sentences (console markup)."""
    lines = []
    if report.held_before is False:
        lines.append("[red]The hypothesis failed before the method[/]: the shop was not "
                     "in its steady state, so the experiment stopped there and changed "
                     "nothing.")
    if report.deviated_during is not None:
        during = report.rounds_of("during")
        failed = sum(1 for found in during if not found.held)
        lines.append(
            f"During the method the hypothesis [red]failed in "
            f"{_of_rounds(failed, len(during), 'probing rounds')}[/]." if failed else
            f"During the method the hypothesis [green]held in "
            f"{_of_rounds(len(during), len(during), 'probing rounds')}[/].")
    if report.rollback_seconds is not None:
        rollback = [step.action for step in report.steps if step.phase == "rollback"]
        put_back = ", ".join(report.undone)
        if rollback:
            lines.append(f"The rollback ({', '.join(rollback)}) took "
                         f"{report.rollback_seconds:.1f}s"
                         + (f"; it left changed, and kansoku put back: {put_back}."
                            if put_back else "."))
        elif put_back:
            lines.append(f"The experiment has no rollback: kansoku put back what the "
                         f"method changed ({put_back}) in {report.rollback_seconds:.1f}s.")
    if report.status == INTERRUPTED and report.rollback_seconds is not None:
        lines.append("Interrupted: the method was cut short, the rollback ran, and the "
                     "stack is as it was; the recovery was not measured.")
    if report.recovered:
        assert report.recovery_seconds is not None
        assert report.since_rollback_began_seconds is not None
        lines.append(
            f"[bold green]Recovered[/]: the hypothesis held again "
            f"[bold]{report.recovery_seconds:.1f}s[/] after the rollback ended "
            f"({report.since_rollback_began_seconds:.1f}s after it began). The probes "
            f"ran every {report.probe_interval:g}s, so the shop may have recovered up to "
            f"{report.probe_interval:g}s sooner.")
    elif report.recovered is False:
        lines.append(f"[bold red]Not recovered[/]: the hypothesis still failed "
                     f"{report.recovery_timeout:g}s after the rollback ended.")
    words = {RECOVERED: "[bold green]recovered[/]",
             NOT_RECOVERED: "[bold red]not recovered[/]", ABORTED: "[bold red]aborted[/]",
             FAILED: "[bold red]failed[/]", INTERRUPTED: "[bold yellow]interrupted[/]"}
    result = f"Result: {words.get(report.status, report.status)}"
    if report.recovery_seconds is not None:
        result += (f" in {report.recovery_seconds:.1f}s" if report.status == RECOVERED
                   else f" — the shop recovered in {report.recovery_seconds:.1f}s")
    lines.append(result + f"; the whole run took {report.duration_seconds:.0f}s.")
    if report.error:
        lines.append(f"[red]{_escape(report.error)}[/]")
    return "\n".join(lines)


def _escape(text: str) -> str:
    return text.replace("[", "\\[")
