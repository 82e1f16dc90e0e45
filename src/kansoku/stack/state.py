"""The stack's state file: what the supervisor is doing, read by `status`, `up` and `down`.

The supervisor rewrites `<data dir>/run/state.json` atomically on every change; readers
never see half a file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import psutil


def write_state(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state, indent=2))
    os.replace(temporary, path)


def read_state(path: Path) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return state


def process_alive(pid: int, started: float | None = None) -> bool:
    """Whether `pid` runs (a zombie does not), and, given `started`, is the same process
    that started then rather than a later one that reuses the pid."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(process.create_time() - started) < 1
    except psutil.Error:
        return False


def supervisor_alive(state: dict[str, Any] | None) -> bool:
    """Whether the supervisor that wrote `state` still runs."""
    supervisor = (state or {}).get("supervisor", {})
    pid = supervisor.get("pid")
    return bool(pid) and process_alive(pid, supervisor.get("process_started"))
