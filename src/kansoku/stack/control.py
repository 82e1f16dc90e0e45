"""How `kansoku stop NAME` and `kansoku start NAME` reach a running supervisor.

The command writes a small request file into `<data dir>/run/requests/` and then sends
SIGUSR1 to the supervisor (whose pid and start time are in the state file). The signal
only says "look in the folder": the supervisor takes every request file there, oldest
first, so two signals that arrive as one lose nothing, and a request written while the
supervisor is busy is picked up on its next look. The answer is the state file, which
the command polls: the component's `state` becomes `stopped` (with `held: true`) or
`running` again.

A file is written under a temporary name and renamed, so the supervisor never reads
half a request.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from kansoku.kit.i18n import _
from kansoku.stack.state import SupervisorState

logger = logging.getLogger("kansoku.supervisor")

Action = Literal["stop", "start"]
ACTIONS: tuple[str, ...] = get_args(Action)


@dataclass(frozen=True)
class Request:
    """One user request: stop (and keep stopped) or start one component."""

    action: Action
    component: str


def requests_dir(run_dir: Path) -> Path:
    return run_dir / "requests"


def write_request(run_dir: Path, request: Request) -> Path:
    """Leave `request` for the supervisor; the caller then signals it."""
    folder = requests_dir(run_dir)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Nanoseconds first, so sorting the names is the order the requests were made in;
    # the pid keeps two commands in the same nanosecond apart.
    name = f"{time.time_ns():020d}-{os.getpid()}"
    temporary = folder / f"{name}.tmp"
    temporary.write_text(json.dumps({"action": request.action,
                                     "component": request.component}))
    path = folder / f"{name}.json"
    os.replace(temporary, path)
    return path


class ControlError(Exception):
    """A request could not be handed to the supervisor; the message says why and what
    to do about it."""


def ask_supervisor(run_dir: Path, log_dir: Path, supervisor: SupervisorState,
                   request: Request) -> None:
    """Leave `request` in the run directory, then wake `supervisor` (as the state file
    describes it) with SIGUSR1. Raises `ControlError` when either step fails."""
    try:
        write_request(run_dir, request)
    except OSError as exc:
        raise ControlError(_("cannot write to {path} ({error}) — run kansoku as the user "
                             "who started the stack").format(path=run_dir,
                                                             error=exc.strerror)) from exc
    gone = _("the supervisor stopped just now — see {log}").format(
        log=log_dir / "supervisor.log")
    # Checked again just before the signal: SIGUSR1 would end an unrelated process that
    # reused the pid, so the pid must still be the supervisor that wrote the state.
    if not supervisor.alive():
        raise ControlError(gone)
    try:
        os.kill(supervisor.pid, signal.SIGUSR1)
    except ProcessLookupError as exc:
        raise ControlError(gone) from exc
    except PermissionError as exc:
        raise ControlError(_("cannot signal the supervisor (pid {pid}) — run kansoku as "
                             "the user who started the stack").format(
            pid=supervisor.pid)) from exc


def take_requests(run_dir: Path) -> list[Request]:
    """Every complete request waiting, oldest first, each removed as it is read.
    A file that is not a valid request is logged and removed, never acted on."""
    folder = requests_dir(run_dir)
    try:
        paths = sorted(folder.glob("*.json"))
    except OSError:
        return []
    requests = []
    for path in paths:
        try:
            content = json.loads(path.read_text())
            path.unlink()
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as exc:
            logger.warning("ignoring the request %s: %s", path.name, exc)
            path.unlink(missing_ok=True)
            continue
        action, component = (content.get("action"), content.get("component")
                             ) if isinstance(content, dict) else (None, None)
        if action not in ACTIONS or not isinstance(component, str):
            logger.warning("ignoring the request %s: not a stop or start of a component",
                           path.name)
            continue
        requests.append(Request(action, component))
    return requests


def clear_requests(run_dir: Path) -> None:
    """Forget requests left by an earlier stack: a new stack must not act on them."""
    folder = requests_dir(run_dir)
    if folder.is_dir():
        for path in folder.iterdir():
            path.unlink(missing_ok=True)
