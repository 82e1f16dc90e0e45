"""What an experiment does to a running stack: fault flags, and stopping, starting,
killing and pausing components.

- **Flags** are written with `kansoku.faults.flagfile.set_variant` into the stack's flags file,
  as `kansoku flags set` does; every service sees the change within about a second.
- **stop / start** ask the supervisor, as `kansoku stop NAME` / `kansoku start NAME` do
  (a request file in the run directory, then SIGUSR1), and wait for the state file to
  say the component is stopped and held, or running again.
- **kill** sends SIGKILL to the component's process (pid and start time from the state
  file, so a recycled pid is never hit): a crash, which the supervisor answers by
  restarting it after its backoff.
- **pause** sends SIGSTOP to the process and its children, waits, then SIGCONT: a
  process that hangs without exiting, which nothing restarts.

What an action says about how it went, and why it failed, are `Words`: the report shows
them in the reader's language and writes them in English in its JSON.

`Changes` remembers what is still changed (a flag away from its variant before the
experiment, a component stopped and not started again, a process still frozen), so the
runner can put the stack back however the experiment ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from kansoku.chaos import experiment as model
from kansoku.faults import catalogue, flagfile
from kansoku.kit.i18n import N_, Phrase, PhrasedError, Words
from kansoku.stack import control
from kansoku.stack.settings import StackSettings
from kansoku.stack.state import ComponentState, StackNotRunning, StackState, running_stack

#: How long stop and start wait beyond the supervisor's own bounds (its SIGKILL deadline,
#: the ready timeout) — the same margin `kansoku stop` / `kansoku start` allow.
CONTROL_MARGIN_SECONDS = 15.0


class StackError(PhrasedError):
    """The stack is not there or not in a state to run an experiment; says what to do."""


class ActionFailed(PhrasedError):
    """A step could not be carried out; the message says why."""


class Stack:
    """The stack running from one data directory, as its state file describes it."""

    def __init__(self, settings: StackSettings, flags_file: Path) -> None:
        self.settings = settings
        self.flags_file = flags_file

    def state(self) -> StackState:
        """The state file of a running stack; `StackError` if none runs here."""
        try:
            return running_stack(self.settings)
        except StackNotRunning as exc:
            raise StackError(str(exc)) from exc

    def component(self, name: str, state: StackState | None = None) -> ComponentState:
        state = state or self.state()
        component = state.component(name)
        if component is None:
            names = ", ".join(state.component_names())
            raise StackError(Phrase(N_("this stack has no component '{name}' (an external "
                                       "server is not kansoku's to stop) — its components: "
                                       "{names}"), name=name, names=names))
        return component

    def url(self, name: str) -> str:
        return self.component(name).url

    def check(self, experiment: model.Experiment) -> None:
        """Every component the experiment names is part of this stack; `StackError`
        otherwise, before anything is touched."""
        state = self.state()
        named = {step.component for step in [*experiment.method, *experiment.rollback]
                 if isinstance(step, model.Stop | model.Start | model.Kill | model.Pause)}
        named |= {probe.component for probe in experiment.hypothesis.probes
                  if isinstance(probe, model.ReadyProbe | model.HttpProbe)}
        named |= {"explorer" for probe in experiment.hypothesis.probes
                  if isinstance(probe, model.ErrorRateProbe | model.LatencyProbe)}
        named |= {"gateway" for probe in experiment.hypothesis.probes
                  if isinstance(probe, model.CheckoutProbe)}
        for name in sorted(named):
            self.component(name, state)


@dataclass
class Changes:
    """What the experiment changed and has not put back yet."""

    #: Flag -> its variant before the experiment first set it.
    flags: dict[str, str] = field(default_factory=dict)
    #: Components stopped (held by the supervisor) and not started again.
    stopped: set[str] = field(default_factory=set)
    #: Component -> its processes frozen with SIGSTOP and not resumed.
    paused: dict[str, list[psutil.Process]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.flags or self.stopped or self.paused)


class Actions:
    """Carries out steps on one stack, remembering in `changes` what is still changed."""

    def __init__(self, stack: Stack) -> None:
        # Imported here, not at the top: every `kansoku` command imports this module,
        # and only a run needs the supervisor's constants (read now, not on the loop).
        from kansoku.stack.supervisor import STOP_TIMEOUT_SECONDS

        self.stop_timeout = STOP_TIMEOUT_SECONDS + CONTROL_MARGIN_SECONDS
        self.stack = stack
        self.changes = Changes()

    async def run(self, step: Any) -> Words:
        """Carry out one step; returns a few words on how it went. Raises
        `ActionFailed` (or `StackError`)."""
        if isinstance(step, model.SetFlag):
            return self.set_flag(step.flag, step.variant)
        if isinstance(step, model.Stop):
            return await self.stop(step.component)
        if isinstance(step, model.Start):
            return await self.start(step.component)
        if isinstance(step, model.Kill):
            return self.kill(step.component)
        if isinstance(step, model.Pause):
            return await self.pause(step.component, step.for_)
        if isinstance(step, model.Wait):
            await asyncio.sleep(step.for_)
            return ""
        raise ActionFailed(f"no way to carry out {step!r}")  # pragma: no cover

    # --- flags --------------------------------------------------------------------------

    def set_flag(self, name: str, variant: str) -> Words:
        path = self.stack.flags_file
        try:
            before = flagfile.read_variants(path)[name]
            flagfile.set_variant(path, name, variant)
        except catalogue.FlagError as exc:
            raise ActionFailed(str(exc)) from exc
        except OSError as exc:
            raise ActionFailed(Phrase(N_("cannot write {path}: {error}"), path=str(path),
                                      error=exc.strerror or str(exc))) from exc
        original = self.changes.flags.setdefault(name, before)
        if variant == original:
            del self.changes.flags[name]
        return Phrase(N_("was {variant}"), variant=before)

    # --- stop and start, through the supervisor -----------------------------------------

    async def stop(self, name: str) -> Words:
        if self.stack.component(name).stopped_by_user:
            return Phrase(N_("already stopped"))
        self._ask_supervisor(control.Request("stop", name))
        self.changes.stopped.add(name)
        await self._wait_for(name, self.stop_timeout, lambda c: (
            True if c.stopped_by_user else None),
            N_("{name} did not stop within {seconds}s — see {log}"))
        return Phrase(N_("stopped and held"))

    async def start(self, name: str) -> Words:
        component = self.stack.component(name)
        self.changes.stopped.discard(name)
        if not component.held:
            if component.state == "running":
                return Phrase(N_("already running"))
            return Phrase(N_("{state}: the supervisor is already starting it"),
                          state=component.state)
        self._ask_supervisor(control.Request("start", name))

        def outcome(component: ComponentState) -> bool | None:
            if component.held:
                return None  # not taken yet
            if component.state == "running":
                return True
            if component.state in ("failed", "restarting"):
                raise ActionFailed(Phrase(N_("{name} did not start; the supervisor keeps "
                                             "retrying it — see {log}"),
                                          name=name, log=str(component.log)))
            return None

        await self._wait_for(name, self.stack.settings.ready_timeout + CONTROL_MARGIN_SECONDS,
                             outcome, N_("{name} did not become ready within {seconds}s — see "
                                         "{log}"))
        return Phrase(N_("running and ready"))

    def _ask_supervisor(self, request: control.Request) -> None:
        try:
            control.ask_supervisor(self.stack.settings.run_dir, self.stack.settings.log_dir,
                                   self.stack.state().supervisor, request)
        except control.ControlError as exc:
            raise ActionFailed(str(exc)) from exc

    async def _wait_for(self, name: str, timeout: float,
                        outcome: Callable[[ComponentState], bool | None],
                        too_late: str) -> None:
        """Wait until `outcome` says yes; else fail with `too_late` (a template naming
        the component, the seconds waited and the supervisor's log)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if outcome(self.stack.component(name)):
                return
            await asyncio.sleep(0.1)
        raise ActionFailed(Phrase(too_late, name=name, seconds=f"{timeout:g}",
                                  log=str(self.stack.settings.log_dir / "supervisor.log")))

    # --- signals ------------------------------------------------------------------------

    def _process(self, name: str) -> psutil.Process:
        component = self.stack.component(name)
        pid = component.pid
        if pid is None or not component.process_alive():
            raise ActionFailed(Phrase(N_("{name} has no running process now (it is "
                                         "{state})"), name=name, state=component.state))
        try:
            return psutil.Process(pid)
        except psutil.Error as exc:
            raise ActionFailed(Phrase(N_("{name} (pid {pid}) is gone: {error}"),
                                      name=name, pid=pid, error=str(exc))) from exc

    @staticmethod
    def _not_allowed(name: str, pid: int) -> ActionFailed:
        return ActionFailed(Phrase(N_("not allowed to signal {name} (pid {pid}) — run "
                                      "kansoku as the user who started the stack"),
                                   name=name, pid=pid))

    def kill(self, name: str) -> Words:
        process = self._process(name)
        try:
            process.send_signal(signal.SIGKILL)
        except psutil.AccessDenied as exc:
            raise self._not_allowed(name, process.pid) from exc
        except psutil.NoSuchProcess:
            return Phrase(N_("pid {pid} had already exited"), pid=process.pid)
        return Phrase(N_("pid {pid} killed; the supervisor restarts it"), pid=process.pid)

    async def pause(self, name: str, seconds: float) -> Words:
        parent = self._process(name)
        # The parent first, so it starts nothing new; then everything it started (a
        # PostgreSQL backend keeps serving its connection unless it is frozen too).
        processes = [parent]
        with contextlib.suppress(psutil.Error):
            processes += parent.children(recursive=True)
        frozen: list[psutil.Process] = []
        try:
            for process in processes:
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.suspend()
                    frozen.append(process)
        except psutil.AccessDenied as exc:
            self._resume(frozen)
            raise self._not_allowed(name, parent.pid) from exc
        self.changes.paused[name] = frozen
        await asyncio.sleep(seconds)
        self.resume(name)
        if len(frozen) == 1:
            return Phrase(N_("1 process frozen, then resumed"))
        return Phrase(N_("{count} processes frozen, then resumed"), count=len(frozen))

    def resume(self, name: str) -> None:
        self._resume(self.changes.paused.pop(name, []))

    @staticmethod
    def _resume(processes: list[psutil.Process]) -> None:
        # Children before the parent: the reverse of the order they were frozen in.
        for process in reversed(processes):
            with contextlib.suppress(psutil.Error):
                process.resume()

    # --- putting the stack back ---------------------------------------------------------

    async def undo(self) -> list[Words]:
        """Put back whatever is still changed: resume frozen processes, set flags back
        to their variant before the experiment, start components still stopped. Each
        is tried even if another fails; returns what was done (or failed), in words."""
        done: list[Words] = []
        for name in list(self.changes.paused):
            self.resume(name)
            done.append(Phrase(N_("resumed {name}"), name=name))
        for name, variant in list(self.changes.flags.items()):
            try:
                self.set_flag(name, variant)
                done.append(Phrase(N_("set {name} back to {variant}"), name=name,
                                   variant=variant))
            except ActionFailed as exc:
                done.append(Phrase(N_("could not set {name} back to {variant}: {error}"),
                                   name=name, variant=variant, error=exc.words))
        for name in sorted(self.changes.stopped):
            try:
                await self.start(name)
                done.append(Phrase(N_("started {name}"), name=name))
            except (ActionFailed, StackError) as exc:
                done.append(Phrase(N_("could not start {name}: {error}"), name=name,
                                   error=exc.words))
        return done
