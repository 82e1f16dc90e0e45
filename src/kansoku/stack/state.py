"""The stack's state file, `<data dir>/run/state.json`: what the supervisor is doing and
how each component is — how every command learns about the stack.

The supervisor rewrites the file atomically on every change (`write_state`); readers
never see half a file. `StackState` is the file parsed. `running_stack(settings)` is the
one answer to "is a stack running from this data directory, ready to be used?": its
state, or a `StackNotRunning` whose message is the line to print (how to start it, to
wait for it, or to read the file).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from kansoku.kit.i18n import _

if TYPE_CHECKING:
    from kansoku.stack.settings import StackSettings


def write_state(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state, indent=2))
    os.replace(temporary, path)


def process_alive(pid: int, started: float | None = None) -> bool:
    """Whether `pid` runs (a zombie does not), and, given `started`, is the same process
    that started then rather than a later one that reuses the pid."""
    import psutil  # here: `kansoku --help` imports this module and never asks

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(process.create_time() - started) < 1
    except psutil.Error:
        return False


class _Entry(BaseModel):
    # Extra keys are dropped: a state file from a newer kansoku still reads.
    model_config = ConfigDict(frozen=True, extra="ignore")


class ComponentState(_Entry):
    """One component as the supervisor last described it (fields in the file's order,
    which `kansoku status --json` keeps)."""

    name: str
    #: "infrastructure", "service", "monitor" …
    kind: str
    #: Where it listens, without credentials.
    url: str
    #: The running process, or None while it is not running.
    pid: int | None
    #: The OS's start time of that process, so a recycled pid is never taken for it.
    process_started: float | None
    #: pending, preparing, starting, running, restarting, stopping, stopped, failed.
    state: str
    #: unknown, healthy, unhealthy, down — as the supervisor last probed it.
    health: str
    #: Exits the supervisor answered with a restart.
    restarts: int
    #: Stopped by `kansoku stop NAME`: not restarted until `kansoku start NAME`.
    held: bool
    last_exit: int | None
    #: Its log file.
    log: str

    @property
    def stopped_by_user(self) -> bool:
        """Stopped with `kansoku stop NAME` and staying stopped."""
        return self.held and self.state == "stopped"

    def process_alive(self) -> bool:
        """Whether the process the state file names still runs (and is that process)."""
        return self.pid is not None and process_alive(self.pid, self.process_started)


class SupervisorState(_Entry):
    """The supervisor: its process and its phase."""

    pid: int
    process_started: float | None
    #: starting, running, failed, stopping, stopped.
    state: str
    #: What start-up is doing now, in words, for the progress display.
    step: str = ""
    #: Why start-up failed.
    error: str | None = None
    data_dir: str
    updated_at: float
    #: The process the services are forked from (`stack/prefork.py`), while it runs.
    template_pid: int | None = None
    template_started: float | None = None

    def alive(self) -> bool:
        """Whether the supervisor that wrote the file still runs."""
        return bool(self.pid) and process_alive(self.pid, self.process_started)


class StackState(_Entry):
    """The state file, parsed."""

    supervisor: SupervisorState
    components: list[ComponentState]

    @classmethod
    def read(cls, path: Path) -> StackState | None:
        """The file at `path`; None when there is none (or it is not a state file: the
        supervisor writes it whole, so that is a leftover, not a stack). An `OSError`
        other than a missing file (permissions) is raised."""
        try:
            return cls.model_validate_json(path.read_bytes())
        except (FileNotFoundError, ValidationError):
            return None

    def supervisor_alive(self) -> bool:
        return self.supervisor.alive()

    def component(self, name: str) -> ComponentState | None:
        return next((component for component in self.components
                     if component.name == name), None)

    def component_names(self) -> list[str]:
        return [component.name for component in self.components]


#: Why `running_stack` found no stack to use.
NotRunningReason = Literal["unreadable", "not-running", "starting", "stopping"]


class StackNotRunning(Exception):
    """No stack is ready to be used from this data directory. The message is one line
    naming the fix; `reason` says which case it is, for a caller that adds a hint."""

    def __init__(self, message: str, reason: NotRunningReason) -> None:
        super().__init__(message)
        self.reason: NotRunningReason = reason


def read_stack_state(settings: StackSettings) -> StackState | None:
    """The state file of this data directory, whatever the stack is doing (None when
    there is none); `StackNotRunning` ("unreadable") when the file cannot be read."""
    try:
        return StackState.read(settings.state_file)
    except OSError as exc:
        raise StackNotRunning(
            _("cannot read {path} ({error}) — check its permissions, or run kansoku as the "
              "user who started the stack").format(path=settings.state_file,
                                                   error=exc.strerror),
            "unreadable") from exc


def running_stack(settings: StackSettings) -> StackState:
    """The state of the stack running from this data directory and ready to be used;
    `StackNotRunning` when there is none, it is still starting, or it is stopping."""
    state = read_stack_state(settings)
    if state is None or not state.supervisor_alive():
        raise StackNotRunning(
            _("kansoku is not running (data directory {path}) — start it with 'kansoku up "
              "--detach'").format(path=settings.data_dir), "not-running")
    phase = state.supervisor.state
    if phase == "starting":
        raise StackNotRunning(_("kansoku is still starting — try again when 'kansoku "
                                "status' says running"), "starting")
    if phase != "running":
        # stopping, or stopped/failed with the supervisor about to exit
        raise StackNotRunning(
            _("kansoku is stopping (data directory {path}) — start it again with 'kansoku up "
              "--detach' once it has stopped").format(path=settings.data_dir), "stopping")
    return state
