"""`kansoku up` in the foreground: Ctrl-C stops everything cleanly."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from tests.support import STACK_PORT_VARIABLES, port_is_free, run_cli, stack_environment

pytestmark = pytest.mark.stack


#: What `up` and `status` say when the synthetics cannot run their browser journey.
BROWSER_OFF = ("Browser synthetic off: Chromium is not installed at /nonexistent/chromium, "
               "so no monitor loads the pages in a browser (imageSlowLoad shows only there). "
               "Turn it on: kansoku install-browser")


def test_ctrl_c_stops_everything(tmp_path: Path) -> None:
    """… and `up` and `status` say plainly that the browser synthetic is off (as where
    Chromium is missing), with the command that turns it on."""
    env = {**stack_environment(tmp_path / "data"),
           "KANSOKU_SYNTHETICS_CHROMIUM_PATH": "/nonexistent/chromium"}
    up = subprocess.Popen([sys.executable, "-m", "kansoku", "up"], env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert up.stdout is not None
    lines: queue.Queue[str] = queue.Queue()

    def read_output() -> None:
        for line in up.stdout or []:
            lines.put(line)

    reader = threading.Thread(target=read_output, daemon=True)
    reader.start()
    printed: list[str] = []
    try:
        while "Press Ctrl-C" not in "".join(printed):
            printed.append(lines.get(timeout=90))
    except queue.Empty:
        up.kill()
        run_cli("down", env=env)
        pytest.fail(f"kansoku up did not say it was ready: {printed}")

    state_file = tmp_path / "data" / "run" / "state.json"
    pids = [c["pid"] for c in json.loads(state_file.read_text())["components"]]
    status = run_cli("status", env=env, timeout=30)
    assert status.returncode == 0 and BROWSER_OFF in status.stdout.splitlines(), status.stdout
    as_json = json.loads(run_cli("status", "--json", env=env, timeout=30).stdout)
    assert as_json["browser_synthetic"] == {
        "on": False, "reason": "Chromium is not installed at /nonexistent/chromium",
        "command": "kansoku install-browser"}
    up.send_signal(signal.SIGINT)
    assert up.wait(60) == 0, up.stderr.read() if up.stderr else ""
    reader.join(5)
    while not lines.empty():
        printed.append(lines.get())
    output = "".join(printed)
    assert "kansoku is ready" in output
    assert BROWSER_OFF in output.splitlines(), output
    assert "kansoku stopped." in output
    assert [pid for pid in pids if psutil.pid_exists(pid)
            and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE] == []
    ports = [int(env[variable]) for variable in STACK_PORT_VARIABLES]
    assert [port for port in ports if not port_is_free(port)] == []
    final = json.loads(state_file.read_text())
    assert final["supervisor"]["state"] == "stopped"
    assert {c["state"] for c in final["components"]} == {"stopped"}
    if up.stderr:
        up.stderr.close()
    up.stdout.close()


def test_ctrl_c_while_starting_stops_what_was_started(tmp_path: Path) -> None:
    env = stack_environment(tmp_path / "data")
    up = subprocess.Popen([sys.executable, "-m", "kansoku", "up"], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state_file = tmp_path / "data" / "run" / "state.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        # Interrupt once the infrastructure runs but the services are not all up.
        if state_file.exists() and "postgresql" in state_file.read_text():
            state = json.loads(state_file.read_text())
            running = {c["name"] for c in state["components"] if c["state"] == "running"}
            if "postgresql" in running and state["supervisor"]["state"] == "starting":
                break
        time.sleep(0.05)
    else:
        up.kill()
        run_cli("down", env=env)
        pytest.fail("start-up never reached the point to interrupt")
    up.send_signal(signal.SIGINT)
    assert up.wait(60) == 0
    final = json.loads(state_file.read_text())
    assert final["supervisor"]["state"] == "stopped"
    assert final["supervisor"]["error"] is None
    assert all(c["pid"] is None for c in final["components"])
    ports = [int(env[variable]) for variable in STACK_PORT_VARIABLES]
    assert [port for port in ports if not port_is_free(port)] == []


def test_a_killed_supervisor_leaves_no_orphans(tmp_path: Path) -> None:
    """Even SIGKILL, which the supervisor cannot catch: Linux stops its children."""
    env = stack_environment(tmp_path / "data")
    result = run_cli("up", "--detach", env=env)
    assert result.returncode == 0, result.stderr
    state = json.loads((tmp_path / "data" / "run" / "state.json").read_text())
    pids = [c["pid"] for c in state["components"]]
    os.kill(state["supervisor"]["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 30
    alive = pids
    try:
        while alive and time.monotonic() < deadline:
            time.sleep(0.5)
            alive = [pid for pid in pids if psutil.pid_exists(pid)
                     and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
        assert alive == [], [psutil.Process(pid).cmdline()[:2] for pid in alive]
    finally:
        run_cli("down", env=env)
