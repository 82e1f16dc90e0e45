"""An experiment's report in words: lines as the run goes, a summary at the end.

While it runs, `EventPrinter` prints every step of the method and the rollback, and a
probing round whenever its outcome differs from the round before (which probes fail),
so twenty identical rounds do not fill the screen. `render` then prints each probe's
record before, during and after — how many probing rounds it failed in — and the
result: whether the hypothesis held, and the recovery time.

The words are plain on purpose: a probe *held* or *failed* in so many rounds (never
"held 0 of 21", which makes the reader do the subtraction), and the hypothesis holds
or fails. They are in the reader's language (kit/i18n.py), the run's own `Words` too;
the JSON report (`Report.as_dict`) stays English.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from kansoku.chaos.experiment import in_words
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
from kansoku.kit.i18n import N_, Words, _, gettext, ngettext

#: The phases of a run, as the progress lines name them.
PHASE_NAMES = {"before": N_("before"), "during": N_("during"), "after": N_("after"),
               "method": N_("method"), "rollback": N_("rollback")}


def _phase(phase: str) -> str:
    return gettext(PHASE_NAMES.get(phase, phase))


class EventPrinter:
    """Prints the run's progress on `console`, one line per change."""

    def __init__(self, console: Console) -> None:
        self.console = console
        #: Per phase, the probes that deviated in the round printed last.
        self._last: dict[str, tuple[Words, ...]] = {}
        # The phase column is as wide as its longest name in this language (in cells: a
        # Japanese character takes two), and a space.
        self._phase_width = max(cell_len(_phase(phase)) for phase in PHASE_NAMES) + 1

    def __call__(self, event: Event) -> None:
        if isinstance(event, Round):
            self._round(event)
        elif isinstance(event, Step):
            self._step(event)
        else:
            self.console.print(f"[yellow]{event}[/]", highlight=False)

    def _start(self, seconds: float, phase: str) -> Text:
        """A line's beginning: the seconds into the run, and the phase."""
        name = _phase(phase)
        return Text(f"{seconds:7.1f}s  {name}{' ' * (self._phase_width - cell_len(name))}")

    def _round(self, found: Round) -> None:
        signature = tuple(result.probe for result in found.deviations)
        if self._last.get(found.phase) == signature and found.phase != "before":
            return  # as the round before: the summary counts it
        self._last[found.phase] = signature
        # Printed as it ends, so stamped with its end: the lines stay in time order.
        ended = found.at + max((result.seconds for result in found.results), default=0.0)
        line = self._start(ended, found.phase)
        if found.held:
            line.append(_("hypothesis holds"), style="green")
            if found.phase == "before":
                line.append(": " + "; ".join(
                    _("{probe} ({detail})").format(probe=result.probe, detail=result.detail)
                    for result in found.results))
        else:
            line.append(_("hypothesis fails"), style="bold red")
            line.append(": " + "; ".join(
                _("{probe} — {detail}").format(probe=result.probe, detail=result.detail)
                for result in found.deviations))
        self.console.print(line, highlight=False)

    def _step(self, step: Step) -> None:
        if not step.done:
            if step.quick:
                return  # its end is a moment away, and says more
            line = self._start(step.at, step.phase)
            line.append(str(step.action), style="bold")
        elif not step.ok:
            line = self._start(step.at + step.seconds, step.phase)
            line.append(f"{step.action}: ")
            line.append(_("failed — {detail}").format(detail=step.detail), style="red")
        elif step.quick:
            line = self._start(step.at, step.phase)
            line.append(str(step.action), style="bold")
            line.append(f": {step.detail}" if step.detail else "")
        elif step.detail:
            line = self._start(step.at + step.seconds, step.phase)
            line.append(_("{action}: {detail} ({seconds}s)").format(
                action=step.action, detail=step.detail, seconds=f"{step.seconds:.1f}"))
        else:
            return  # a wait: its start said it all
        self.console.print(line, highlight=False)


def _rounds(count: int) -> str:
    return ngettext("{count} round", "{count} rounds", count).format(count=count)


def _of_rounds(part: int, whole: int, probing: bool = False) -> str:
    """"the one round", "all 9 rounds" or "3 of 9 rounds" (of probing, in the summary)."""
    if whole == 1:
        return _("the one probing round") if probing else _("the one round")
    if part == whole:
        return (_("all {count} probing rounds") if probing else
                _("all {count} rounds")).format(count=whole)
    return (_("{part} of {whole} probing rounds") if probing else
            _("{part} of {whole} rounds")).format(part=part, whole=whole)


def _record(report: Report, phase: str, probe: Words) -> str:
    """One probe in one phase, in words (console markup): held, or in how many of the
    phase's probing rounds it failed."""
    results = [result for found in report.rounds_of(phase) for result in found.results
               if result.probe == probe]
    if not results:
        return _("not probed")
    failed = sum(1 for result in results if not result.held)
    if phase == "after":
        # Probing after the rollback stops at the first round that holds: the last
        # round says whether the probe came back.
        if not results[-1].held:
            return _("[red]still failing[/] (failed in {count} of {rounds})").format(
                count=failed, rounds=_rounds(len(results)))
        return (_("[green]held[/]") if not failed
                else _("[yellow]failed in {rounds}, then held[/]").format(
                    rounds=_rounds(failed)))
    if len(results) == 1:
        return _("[red]failed[/]") if failed else _("[green]held[/]")
    if not failed:
        return _("[green]held in {rounds}[/]").format(
            rounds=_of_rounds(len(results), len(results)))
    style = "red" if failed == len(results) else "yellow"
    return f"[{style}]" + _("failed in {rounds}").format(
        rounds=_of_rounds(failed, len(results))) + "[/]"


def render(report: Report) -> RenderableType:
    """The summary: each probe before, during and after; then the result."""
    table = Table(title=_("{title} — hypothesis: {hypothesis}").format(
        title=in_words(report.title), hypothesis=in_words(report.hypothesis)),
        title_justify="left", expand=False)
    table.add_column(_("probe"))
    for column in (_("before"), _("during the method"), _("after the rollback")):
        table.add_column(column, no_wrap=True)
    for probe in report.probes:
        table.add_row(str(probe), _record(report, "before", probe),
                      _record(report, "during", probe), _record(report, "after", probe))
    return Group(table, Text.from_markup(summary(report), emoji=False))


def summary(report: Report) -> str:
    """The result in a few sentences (console markup)."""
    lines = []
    if report.held_before is False:
        lines.append(_("[red]The hypothesis failed before the method[/]: the shop was not "
                       "in its steady state, so the experiment stopped there and changed "
                       "nothing."))
    if report.deviated_during is not None:
        during = report.rounds_of("during")
        failed = sum(1 for found in during if not found.held)
        lines.append(
            _("During the method the hypothesis [red]failed in {rounds}[/].").format(
                rounds=_of_rounds(failed, len(during), probing=True)) if failed else
            _("During the method the hypothesis [green]held in {rounds}[/].").format(
                rounds=_of_rounds(len(during), len(during), probing=True)))
    if report.rollback_seconds is not None:
        rollback = [str(step.action) for step in report.steps if step.phase == "rollback"]
        put_back = ", ".join(str(what) for what in report.undone)
        took = f"{report.rollback_seconds:.1f}"
        if rollback and put_back:
            lines.append(_("The rollback ({steps}) took {seconds}s; it left changed, and "
                           "kansoku put back: {put_back}.").format(
                steps=", ".join(rollback), seconds=took, put_back=put_back))
        elif rollback:
            lines.append(_("The rollback ({steps}) took {seconds}s.").format(
                steps=", ".join(rollback), seconds=took))
        elif put_back:
            lines.append(_("The experiment has no rollback: kansoku put back what the "
                           "method changed ({put_back}) in {seconds}s.").format(
                put_back=put_back, seconds=took))
    if report.status == INTERRUPTED and report.rollback_seconds is not None:
        lines.append(_("Interrupted: the method was cut short, the rollback ran, and the "
                       "stack is as it was; the recovery was not measured."))
    if report.recovered:
        assert report.recovery_seconds is not None
        assert report.since_rollback_began_seconds is not None
        lines.append(_(
            "[bold green]Recovered[/]: the hypothesis held again [bold]{seconds}s[/] after "
            "the rollback ended ({since_began}s after it began). The probes ran every "
            "{interval}s, so the shop may have recovered up to {interval}s sooner.").format(
            seconds=f"{report.recovery_seconds:.1f}",
            since_began=f"{report.since_rollback_began_seconds:.1f}",
            interval=f"{report.probe_interval:g}"))
    elif report.recovered is False:
        lines.append(_("[bold red]Not recovered[/]: the hypothesis still failed {seconds}s "
                       "after the rollback ended.").format(
            seconds=f"{report.recovery_timeout:g}"))
    lines.append(_result(report))
    if report.error:
        lines.append(f"[red]{_escape(str(report.error))}[/]")
    return "\n".join(lines)


def _result(report: Report) -> str:
    """The last sentence: how it ended, and how long it all took."""
    words = {RECOVERED: "[bold green]" + _("recovered") + "[/]",
             NOT_RECOVERED: "[bold red]" + _("not recovered") + "[/]",
             ABORTED: "[bold red]" + _("aborted") + "[/]",
             FAILED: "[bold red]" + _("failed") + "[/]",
             INTERRUPTED: "[bold yellow]" + _("interrupted") + "[/]"}
    status = words.get(report.status, report.status)
    total = f"{report.duration_seconds:.0f}"
    if report.recovery_seconds is None:
        return _("Result: {status}; the whole run took {total}s.").format(
            status=status, total=total)
    recovery = f"{report.recovery_seconds:.1f}"
    if report.status == RECOVERED:
        return _("Result: {status} in {seconds}s; the whole run took {total}s.").format(
            status=status, seconds=recovery, total=total)
    return _("Result: {status} — the shop recovered in {seconds}s; the whole run took "
             "{total}s.").format(status=status, seconds=recovery, total=total)


def _escape(text: str) -> str:
    return text.replace("[", "\\[")
