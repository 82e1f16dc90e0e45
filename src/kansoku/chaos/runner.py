"""Running an experiment: probe, disturb, roll back, measure the recovery.

1. **Before**: the hypothesis is probed once. If it does not hold, the shop is not in
   its steady state and the experiment would prove nothing: it stops there
   (`aborted`), having changed nothing.
2. **Method**: its steps run in order. Meanwhile (unless `probe_during_method: false`)
   the hypothesis is probed every `probe_interval`, to see whether — and how — it
   deviates. A step that fails ends the method (`failed`).
3. **Rollback**: its steps run in order, each tried even if one before failed. Then
   whatever the experiment changed and the rollback did not put back is put back
   anyway: a flag set back to its variant before the experiment, a stopped component
   started, a frozen process resumed (listed in the report as `undone`).
4. **Recovery**: from the end of the rollback, the hypothesis is probed every
   `probe_interval` until a round holds (`recovered`; the time that took is the
   *recovery time*) or `recovery_timeout` passes (`not-recovered`).

Ctrl-C (or SIGTERM) during the probing or the method stops it and goes straight to the
rollback, which is not interrupted: the stack is always put back (`interrupted`).

The report's words (steps, what probes saw, errors, notes) are `Words` (kit/i18n.py):
people read them in their language, `Report.as_dict` — the JSON — and the telemetry in
English.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from kansoku.chaos import experiment as model
from kansoku.chaos.actions import ActionFailed, Actions, Stack, StackError
from kansoku.chaos.probes import Prober, ProbeResult
from kansoku.kit import semconv
from kansoku.kit.i18n import N_, Phrase, Words, in_english

logger = logging.getLogger("kansoku.chaos")

T = TypeVar("T")

RECOVERED = "recovered"
NOT_RECOVERED = "not-recovered"
ABORTED = "aborted"
FAILED = "failed"
INTERRUPTED = "interrupted"


@dataclass
class Round:
    """The hypothesis probed once: every probe's result, at `at` seconds into the run."""

    phase: str  # before, during, after
    at: float
    results: list[ProbeResult]

    @property
    def held(self) -> bool:
        return all(result.held for result in self.results)

    @property
    def deviations(self) -> list[ProbeResult]:
        return [result for result in self.results if not result.held]

    def as_dict(self) -> dict[str, Any]:
        return {"phase": self.phase, "at": round(self.at, 3), "held": self.held,
                "probes": [result.as_dict() for result in self.results]}


@dataclass
class Step:
    """One step of the method or the rollback, as it went."""

    phase: str  # method, rollback
    action: Words
    at: float
    seconds: float = 0.0
    ok: bool = True
    detail: Words = ""
    #: False while it runs (the runner tells its caller when a step starts and ends).
    done: bool = False
    #: Over at once (a flag, a kill): only its end is worth telling.
    quick: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"phase": self.phase, "action": in_english(self.action),
                "at": round(self.at, 3), "seconds": round(self.seconds, 3), "ok": self.ok,
                "detail": in_english(self.detail)}


@dataclass
class Report:
    """What happened, for people (`report.render`) and machines (`as_dict`)."""

    title: str
    source: str
    hypothesis: str
    probes: list[Words]
    parameters: dict[str, Any]
    started_at: str = ""
    status: str = ABORTED
    held_before: bool | None = None
    #: Whether any round during the method deviated (None: not probed, or not reached).
    deviated_during: bool | None = None
    rollback_seconds: float | None = None
    recovered: bool | None = None
    #: From the end of the rollback to the end of the first round that held again.
    recovery_seconds: float | None = None
    #: The same, from the start of the rollback (the fault's removal) instead.
    since_rollback_began_seconds: float | None = None
    recovery_timeout: float = 0.0
    probe_interval: float = 0.0
    duration_seconds: float = 0.0
    error: Words | None = None
    rounds: list[Round] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    #: What was put back after the rollback because it was still changed.
    undone: list[Words] = field(default_factory=list)

    def rounds_of(self, phase: str) -> list[Round]:
        return [found for found in self.rounds if found.phase == phase]

    def as_dict(self) -> dict[str, Any]:
        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 3)

        during = self.rounds_of("during")
        return {
            "title": self.title, "source": self.source, "hypothesis": self.hypothesis,
            "probes": [in_english(probe) for probe in self.probes],
            "parameters": self.parameters,
            "started_at": self.started_at, "status": self.status,
            "held_before": self.held_before, "deviated_during": self.deviated_during,
            "during": {"rounds": len(during),
                       "deviated_rounds": sum(1 for found in during if not found.held)},
            "rollback_seconds": rounded(self.rollback_seconds),
            "recovered": self.recovered, "recovery_seconds": rounded(self.recovery_seconds),
            "since_rollback_began_seconds": rounded(self.since_rollback_began_seconds),
            "recovery_timeout": self.recovery_timeout, "probe_interval": self.probe_interval,
            "duration_seconds": rounded(self.duration_seconds),
            "error": None if self.error is None else in_english(self.error),
            "undone": [in_english(what) for what in self.undone],
            "steps": [step.as_dict() for step in self.steps],
            "rounds": [found.as_dict() for found in self.rounds],
        }


class Interrupted(Exception):
    """Ctrl-C or SIGTERM arrived while the experiment could still be cut short."""


#: What the runner tells its caller as it goes: a finished round or step, or a note.
Event = Round | Step | Phrase


class Runner:
    """Runs one experiment against one stack. `on_event` hears every round, step and
    note as it happens (the command prints them).

    The run is also a trace (from the tracer provider set up by the caller, if any): a
    root span `chaos <title>` with a child span per step, an event whenever the
    hypothesis starts or stops holding, and the outcome as attributes; a log record
    says when it began and how it ended. So the explorer shows the experiment beside
    the errors it caused."""

    def __init__(self, experiment: model.Experiment, stack: Stack,
                 on_event: Callable[[Event], None] = lambda event: None,
                 handle_signals: bool = True) -> None:
        self.tracer = trace.get_tracer("kansoku.chaos")
        self._root: Span | None = None
        self._last_held: dict[str, bool] = {}
        self.experiment = experiment
        self.stack = stack
        self.on_event = on_event
        self.handle_signals = handle_signals
        self.actions = Actions(stack)
        self.prober = Prober(stack)
        self.report = Report(
            experiment.title, experiment.source, experiment.hypothesis.title,
            [probe.label for probe in experiment.hypothesis.probes],
            dict(experiment.parameters), recovery_timeout=experiment.recovery_timeout,
            probe_interval=experiment.probe_interval)
        self._began = time.monotonic()
        #: The part of the run a signal may cut short, while one runs.
        self._cancellable: asyncio.Task[Any] | None = None
        #: The probing while the method runs.
        self._probing: asyncio.Task[None] | None = None
        self._interrupted = False
        #: Rolling back or cleaning up: a signal must not cut that short.
        self._putting_back = False

    def _now(self) -> float:
        return time.monotonic() - self._began

    async def run(self) -> Report:
        """Run the experiment to the end; the stack is put back however it ends."""
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP) if self.handle_signals \
            else ()
        for signum in signals:
            loop.add_signal_handler(signum, self._on_signal)
        self._began = time.monotonic()
        self.report.started_at = datetime.now(UTC).isoformat(timespec="seconds")
        title = self.experiment.title
        extra = {semconv.CHAOS_EXPERIMENT: title}
        with self.tracer.start_as_current_span(
                f"chaos {title}", attributes={semconv.CHAOS_EXPERIMENT: title},
                record_exception=False) as root:
            self._root = root
            logger.info("chaos experiment %s began", title, extra=extra)
            try:
                await self._run()
            finally:
                self._putting_back = True
                await self._end_probing(cancel=True)
                if self.actions.changes:  # a surprise cut the run short: put it back
                    self.report.undone += await self.actions.undo()
                await self.prober.close()
                for signum in signals:
                    loop.remove_signal_handler(signum)
                self.report.duration_seconds = self._now()
                self._record_outcome(root)
        return self.report

    def _record_outcome(self, root: Span) -> None:
        report = self.report
        extra: dict[str, Any] = {semconv.CHAOS_EXPERIMENT: report.title,
                                 semconv.CHAOS_STATUS: report.status}
        root.set_attribute(semconv.CHAOS_STATUS, report.status)
        if report.recovery_seconds is not None:
            root.set_attribute(semconv.CHAOS_RECOVERY_SECONDS,
                               round(report.recovery_seconds, 3))
            extra[semconv.CHAOS_RECOVERY_SECONDS] = round(report.recovery_seconds, 3)
        if report.status == RECOVERED:
            logger.info("chaos experiment %s: recovered %.1f s after the rollback",
                        report.title, report.recovery_seconds, extra=extra)
        else:
            root.set_status(Status(StatusCode.ERROR, report.status))
            logger.warning("chaos experiment %s: %s%s", report.title, report.status,
                           f" ({in_english(report.error)})" if report.error else "",
                           extra=extra)

    def _on_signal(self) -> None:
        if self._putting_back:
            self.on_event(Phrase(N_("the stack is being put back as it was — a moment")))
            return
        if not self._interrupted:
            self.on_event(Phrase(N_("interrupted — rolling back")))
        self._interrupted = True
        if self._cancellable is not None and not self._cancellable.done():
            self._cancellable.cancel()

    async def _cancellable_part(self, work: Coroutine[Any, Any, T]) -> T:
        """Run `work`, which a signal may cut short (then `Interrupted`)."""
        if self._interrupted:  # the signal came between two parts
            work.close()
            raise Interrupted
        task = asyncio.ensure_future(work)
        self._cancellable = task
        try:
            return await task
        except asyncio.CancelledError:
            if self._interrupted:
                raise Interrupted from None
            raise
        finally:
            self._cancellable = None

    async def _run(self) -> None:
        report = self.report
        try:
            before = await self._cancellable_part(self._round("before"))
        except Interrupted:
            report.status = INTERRUPTED
            return
        report.held_before = before.held
        if not before.held:
            first = before.deviations[0]
            report.status = ABORTED
            report.error = Phrase(N_("the hypothesis did not hold before the method ({probe}: "
                                     "{detail}) — nothing was changed; see 'kansoku status'"),
                                  probe=first.probe, detail=first.detail)
            return
        try:
            await self._cancellable_part(self._method())
        except Interrupted:
            report.status = INTERRUPTED
            await self._end_probing(cancel=True)
        except (ActionFailed, StackError) as exc:
            report.status, report.error = FAILED, exc.words
        rollback_began = time.monotonic()
        self._putting_back = True
        await self._rollback()
        self._putting_back = False
        rollback_ended = time.monotonic()
        report.rollback_seconds = rollback_ended - rollback_began
        if report.status != INTERRUPTED:
            try:
                await self._cancellable_part(self._recover(rollback_began, rollback_ended))
            except Interrupted:
                report.status = INTERRUPTED
        await self._end_probing(cancel=report.status == INTERRUPTED)
        during = report.rounds_of("during")
        if during:
            report.deviated_during = any(not found.held for found in during)

    async def _round(self, phase: str) -> Round:
        at = self._now()
        found = Round(phase, at, await self.prober.round(self.experiment.hypothesis.probes))
        self.report.rounds.append(found)
        self.on_event(found)
        if self._root is not None and self._last_held.get(phase) != found.held:
            # An event when the hypothesis starts or stops holding, not one per round.
            self._last_held[phase] = found.held
            self._root.add_event(
                "hypothesis held" if found.held else "hypothesis deviated",
                {semconv.CHAOS_PHASE: phase,
                 semconv.CHAOS_DEVIATIONS: [in_english(r.probe) for r in found.deviations]})
        return found

    async def _step(self, phase: str, action: Any) -> None:
        step = Step(phase, action.describe(), self._now(),
                    quick=isinstance(action, model.SetFlag | model.Kill))
        self.report.steps.append(step)
        self.on_event(step)
        began = time.monotonic()
        action_name = in_english(step.action)
        with self.tracer.start_as_current_span(
                f"chaos {phase}: {action_name}", record_exception=False,
                attributes={semconv.CHAOS_PHASE: phase,
                            semconv.CHAOS_ACTION: action_name}) as span:
            try:
                step.detail = await self.actions.run(action)
            except (ActionFailed, StackError) as exc:
                step.ok, step.detail = False, exc.words
                span.set_status(Status(StatusCode.ERROR, in_english(exc.words)[:200]))
                raise
            except asyncio.CancelledError:
                step.ok, step.detail = False, Phrase(N_("interrupted"))
                raise
            finally:
                step.seconds, step.done = time.monotonic() - began, True
                self.on_event(step)

    async def _method(self) -> None:
        method_over = asyncio.Event()
        if self.experiment.probe_during_method:
            self._probing = asyncio.create_task(self._probe_during(method_over))
        try:
            for action in self.experiment.method:
                await self._step("method", action)
        finally:
            method_over.set()

    async def _probe_during(self, method_over: asyncio.Event) -> None:
        """Probe round after round until the method is over. A round still under way
        then is not cut short: it finishes (its probes are bounded by their timeouts)
        and counts as during — it is what a hung component looks like."""
        while not method_over.is_set():
            began = time.monotonic()
            await self._round("during")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(method_over.wait(), max(
                    0.0, self.experiment.probe_interval - (time.monotonic() - began)))

    async def _end_probing(self, cancel: bool) -> None:
        """Wait for the last round of the method's probing (or cut it short)."""
        if self._probing is None:
            return
        if cancel:
            self._probing.cancel()
        await asyncio.gather(self._probing, return_exceptions=True)
        self._probing = None
        self.report.rounds.sort(key=lambda found: found.at)

    async def _rollback(self) -> None:
        for action in self.experiment.rollback:
            try:
                await self._step("rollback", action)
            except (ActionFailed, StackError) as exc:
                self.report.error = self.report.error or Phrase(N_("rollback: {error}"),
                                                                error=exc.words)
        undone = await self.actions.undo()
        for what in undone:
            self.on_event(Step("rollback", Phrase(N_("put back: {what}"), what=what),
                               self._now(), done=True, quick=True))
        self.report.undone += undone

    async def _recover(self, rollback_began: float, rollback_ended: float) -> None:
        report = self.report
        self.prober.not_before = time.time() - (time.monotonic() - rollback_ended)
        deadline = rollback_ended + self.experiment.recovery_timeout
        while True:
            began = time.monotonic()
            found = await self._round("after")
            if found.held:
                ended = time.monotonic()
                report.recovered = True
                report.recovery_seconds = ended - rollback_ended
                report.since_rollback_began_seconds = ended - rollback_began
                if report.status != FAILED:
                    report.status = RECOVERED
                return
            if time.monotonic() >= deadline:
                report.recovered = False
                if report.status != FAILED:
                    report.status = NOT_RECOVERED
                    first = found.deviations[0]
                    report.error = Phrase(
                        N_("the hypothesis did not hold again within {seconds}s of the "
                           "rollback ({probe}: {detail})"),
                        seconds=f"{self.experiment.recovery_timeout:g}", probe=first.probe,
                        detail=first.detail)
                return
            await asyncio.sleep(min(max(0.0, self.experiment.probe_interval
                                        - (time.monotonic() - began)),
                                    max(0.0, deadline - time.monotonic())))


async def run_experiment(experiment: model.Experiment, stack: Stack,
                         on_event: Callable[[Event], None] = lambda event: None,
                         handle_signals: bool = True) -> Report:
    """Check the stack has what the experiment names, then run it."""
    stack.check(experiment)
    return await Runner(experiment, stack, on_event, handle_signals).run()
