"""The stack's state file, `<data dir>/run/state.json`: what the supervisor is doing and
how each component is — how every command learns about the stack.

The supervisor rewrites the file atomically on every change (`write_state`); readers
never see half a file. `StackState` is the file parsed. `running_stack(settings)` is the
one answer to "is a stack running from this data directory, ready to be used?": its
state, or a `StackNotRunning` whose message is the line to print (how to start it, to
wait for it, or to read the file).

The state classes are frozen dataclasses read with the standard library (`StackState.read`
checks every field's type, as a model would): `kansoku status` reads the file at every
run, and pydantic's import and models would cost it more than the reading.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self

from kansoku.kit.i18n import _
from kansoku.loadgen.browser_setup import BrowserSynthetic

if TYPE_CHECKING:
    from kansoku.stack.paths import StackPaths
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


class NotAStateFile(ValueError):
    """What is in the file is not what the supervisor writes."""


#: The types a field may be written with, by their name in the field's annotation (a
#: whole number is a float too; True is no number).
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,), "int": (int,), "float": (int, float), "bool": (bool,)}


def _scalar(annotation: str, value: object) -> object:
    """`value` if it is what `annotation` ("int", "float | None" …) allows, else
    `NotAStateFile`; a whole number given for a float is made one."""
    kinds = [kind.strip() for kind in annotation.split("|")]
    if value is None:
        if "None" in kinds:
            return None
        raise NotAStateFile(f"null where {annotation} belongs")
    for kind in kinds:
        allowed = _JSON_TYPES.get(kind)
        if allowed is None:
            continue
        if isinstance(value, allowed) and (kind == "bool" or not isinstance(value, bool)):
            if kind == "float":
                assert isinstance(value, int | float)
                return float(value)
            return value
    raise NotAStateFile(f"{value!r} where {annotation} belongs")


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Entry:
    @classmethod
    def from_json(cls, value: object) -> Self:
        """The entry `value` (a JSON object) describes. Every field must be there unless
        it has a default; keys it does not know are dropped, so a state file from a newer
        kansoku still reads. `NotAStateFile` when it is not such an entry."""
        if not isinstance(value, dict):
            raise NotAStateFile(f"{cls.__name__}: not an object")
        found: dict[str, object] = {}
        for field in dataclasses.fields(cls):
            if field.name in value:
                found[field.name] = cls._field_from_json(field, value[field.name])
            elif field.default is dataclasses.MISSING:
                raise NotAStateFile(f"{cls.__name__}: no {field.name}")
        return cls(**found)

    @classmethod
    def _field_from_json(cls, field: dataclasses.Field[Any], value: object) -> object:
        assert isinstance(field.type, str)  # `from __future__ import annotations`
        return _scalar(field.type, value)


@dataclasses.dataclass(frozen=True, kw_only=True)
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


@dataclasses.dataclass(frozen=True, kw_only=True)
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


@dataclasses.dataclass(frozen=True, kw_only=True)
class StackState(_Entry):
    """The state file, parsed."""

    supervisor: SupervisorState
    components: list[ComponentState]
    #: Whether the stack's synthetics run the browser journey, as the supervisor found
    #: when it started them (its environment is theirs); None from an older kansoku.
    browser_synthetic: BrowserSynthetic | None = None

    @classmethod
    def _field_from_json(cls, field: dataclasses.Field[Any], value: object) -> object:
        match field.name:
            case "supervisor":
                return SupervisorState.from_json(value)
            case "components":
                if not isinstance(value, list):
                    raise NotAStateFile("components: not a list")
                return [ComponentState.from_json(component) for component in value]
            case "browser_synthetic":
                return _browser_synthetic(value)
        raise AssertionError(f"StackState has no field {field.name}")

    @classmethod
    def read(cls, path: Path) -> StackState | None:
        """The file at `path`; None when there is none (or it is not a state file: the
        supervisor writes it whole, so that is a leftover, not a stack). An `OSError`
        other than a missing file (permissions) is raised."""
        try:
            return cls.from_json(json.loads(path.read_bytes()))
        except (FileNotFoundError, ValueError):  # NotAStateFile, and JSON's errors
            return None

    def supervisor_alive(self) -> bool:
        return self.supervisor.alive()

    def component(self, name: str) -> ComponentState | None:
        return next((component for component in self.components
                     if component.name == name), None)

    def component_names(self) -> list[str]:
        return [component.name for component in self.components]


def _browser_synthetic(value: object) -> BrowserSynthetic | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise NotAStateFile("browser_synthetic: not an object")
    on, reason, command = value.get("on"), value.get("reason"), value.get("command")
    # Files written before the reason's template was kept have neither.
    template, values = value.get("reason_template"), value.get("reason_values") or {}
    if not (isinstance(on, bool) and isinstance(reason, str | None)
            and isinstance(command, str | None) and isinstance(template, str | None)
            and isinstance(values, dict)
            and all(isinstance(item, str) for item in values.values())):
        raise NotAStateFile(f"browser_synthetic: {value!r}")
    return BrowserSynthetic(on, reason, command, template, values)


#: Why `running_stack` found no stack to use.
NotRunningReason = Literal["unreadable", "not-running", "starting", "stopping"]


class StackNotRunning(Exception):
    """No stack is ready to be used from this data directory. The message is one line
    naming the fix; `reason` says which case it is, for a caller that adds a hint."""

    def __init__(self, message: str, reason: NotRunningReason) -> None:
        super().__init__(message)
        self.reason: NotRunningReason = reason


def read_stack_state(settings: StackSettings | StackPaths) -> StackState | None:
    """The state file of this data directory, whatever the stack is doing (None when
    there is none); `StackNotRunning` ("unreadable") when the file cannot be read.
    (`StackPaths` is the data directory without the settings: `kansoku status`.)"""
    try:
        return StackState.read(settings.state_file)
    except OSError as exc:
        raise StackNotRunning(
            _("cannot read {path} ({error}) — check its permissions, or run kansoku as the "
              "user who started the stack").format(path=settings.state_file,
                                                   error=exc.strerror),
            "unreadable") from exc


def running_stack(settings: StackSettings | StackPaths) -> StackState:
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
