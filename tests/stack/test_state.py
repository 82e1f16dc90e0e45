"""The state file read back as a `StackState`, and `running_stack`'s one answer to "is a
stack ready here?" — for each way it is not, the line the CLI prints. Real files in a
temporary data directory; the supervisor is a real child process, so liveness (pid and
start time) is checked as it is in use."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import psutil
import pytest
from typer.testing import CliRunner

from kansoku.cli import app
from kansoku.kit import i18n
from kansoku.stack.settings import StackSettings
from kansoku.stack.state import (
    StackNotRunning,
    StackState,
    process_alive,
    read_stack_state,
    running_stack,
    write_state,
)
from tests.support import idle_process


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    """A process that stands in for the supervisor (or a component) until it is killed."""
    with idle_process() as process:
        yield process


def started(process: subprocess.Popen[bytes]) -> float:
    created: float = psutil.Process(process.pid).create_time()
    return created


def component(name: str, **changes: Any) -> dict[str, Any]:
    entry = {"name": name, "kind": "service", "url": f"http://127.0.0.1:1/{name}",
             "pid": None, "process_started": None, "state": "running", "health": "healthy",
             "restarts": 0, "held": False, "last_exit": None, "log": f"/logs/{name}.log"}
    return {**entry, **changes}


def state_file(supervisor: subprocess.Popen[bytes] | None, phase: str = "running",
               components: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A state file as the supervisor writes it; `supervisor` None: one that has gone."""
    return {
        "supervisor": {"pid": supervisor.pid if supervisor else 2**22 + 1,
                       "process_started": started(supervisor) if supervisor else 1.0,
                       "state": phase, "step": "starting payments", "error": None,
                       "data_dir": "/data", "updated_at": 1.0},
        "components": components if components is not None else [
            component("postgresql", kind="infrastructure", url="postgresql://127.0.0.1:2"),
            component("payments"), component("gateway")],
    }


@pytest.fixture
def settings(tmp_path: Path) -> StackSettings:
    return StackSettings(data_dir=tmp_path)


def test_the_state_file_reads_back_typed(settings: StackSettings,
                                         child: subprocess.Popen[bytes]) -> None:
    write_state(settings.state_file, state_file(child, components=[
        component("payments", pid=child.pid, process_started=started(child), restarts=2),
        component("nats", kind="infrastructure", url="nats://127.0.0.1:3", state="stopped",
                  held=True, health="down", last_exit=0, future_field="ignored")]))
    state = StackState.read(settings.state_file)
    assert state is not None
    assert state.supervisor.pid == child.pid and state.supervisor.state == "running"
    assert state.supervisor.step == "starting payments" and state.supervisor.error is None
    assert state.supervisor_alive()
    assert state.component_names() == ["payments", "nats"]
    payments, nats = state.component("payments"), state.component("nats")
    assert payments is not None and nats is not None
    assert payments.url == "http://127.0.0.1:1/payments" and payments.restarts == 2
    assert payments.process_alive() and not payments.stopped_by_user
    assert nats.stopped_by_user and not nats.process_alive() and nats.last_exit == 0
    assert state.component("mongodb") is None
    # The fields in the file's order: `kansoku status --json` prints them so.
    assert list(asdict(nats)) == list(component("nats"))


def _with(state: dict[str, Any], part: str, **changes: Any) -> str:
    """`state` as JSON, with `changes` made to its supervisor or to its first component."""
    changed = json.loads(json.dumps(state))
    entry = changed["supervisor"] if part == "supervisor" else changed["components"][0]
    entry.update(changes)
    return json.dumps(changed)


@pytest.mark.parametrize("content", [
    "", "{not json", "[]", '{"supervisor": {}}', json.dumps({"components": []}),
    # What the supervisor never writes: a field of the wrong type, or missing.
    _with(state_file(None), "component", pid="12"),
    _with(state_file(None), "component", restarts=True),
    _with(state_file(None), "component", held=1),
    _with(state_file(None), "supervisor", updated_at="now"),
    _with(state_file(None), "supervisor", pid=None),
    json.dumps({**state_file(None), "components": {"payments": {}}}),
    json.dumps({**state_file(None), "browser_synthetic": {"on": "yes"}}),
    json.dumps({key: value for key, value in state_file(None).items()
                if key != "components"}),
])
def test_no_file_or_not_a_state_file_is_no_stack(settings: StackSettings,
                                                  content: str) -> None:
    assert StackState.read(settings.state_file) is None
    settings.state_file.parent.mkdir(parents=True)
    settings.state_file.write_text(content)
    assert StackState.read(settings.state_file) is None
    assert read_stack_state(settings) is None


def test_a_whole_number_is_a_float_and_a_missing_default_is_its_default(
        settings: StackSettings) -> None:
    settings.state_file.parent.mkdir(parents=True)
    settings.state_file.write_text(_with(state_file(None), "supervisor", updated_at=7))
    state = StackState.read(settings.state_file)
    assert state is not None
    assert state.supervisor.updated_at == 7.0 and isinstance(state.supervisor.updated_at, float)
    assert state.supervisor.template_pid is None and state.browser_synthetic is None


def test_a_state_file_that_cannot_be_read_names_the_fix(settings: StackSettings) -> None:
    settings.state_file.mkdir(parents=True)  # a directory: unreadable even for root
    with pytest.raises(StackNotRunning) as refused:
        running_stack(settings)
    assert refused.value.reason == "unreadable"
    assert str(refused.value) == (
        f"cannot read {settings.state_file} (Is a directory) — check its permissions, or "
        "run kansoku as the user who started the stack")


def test_no_stack_says_how_to_start_one(settings: StackSettings) -> None:
    expected = (f"kansoku is not running (data directory {settings.data_dir}) — start it "
                "with 'kansoku up --detach'")
    with pytest.raises(StackNotRunning) as refused:
        running_stack(settings)
    assert (refused.value.reason, str(refused.value)) == ("not-running", expected)
    # A state file whose supervisor has gone is no stack either.
    write_state(settings.state_file, state_file(None))
    with pytest.raises(StackNotRunning) as refused:
        running_stack(settings)
    assert (refused.value.reason, str(refused.value)) == ("not-running", expected)


@pytest.mark.parametrize(("phase", "reason", "message"), [
    ("starting", "starting",
     "kansoku is still starting — try again when 'kansoku status' says running"),
    ("stopping", "stopping", "kansoku is stopping (data directory {data_dir}) — start it "
                             "again with 'kansoku up --detach' once it has stopped"),
    ("failed", "stopping", "kansoku is stopping (data directory {data_dir}) — start it "
                           "again with 'kansoku up --detach' once it has stopped"),
])
def test_a_stack_not_ready_says_what_to_wait_for(settings: StackSettings,
                                                 child: subprocess.Popen[bytes], phase: str,
                                                 reason: str, message: str) -> None:
    write_state(settings.state_file, state_file(child, phase))
    with pytest.raises(StackNotRunning) as refused:
        running_stack(settings)
    assert refused.value.reason == reason
    assert str(refused.value) == message.format(data_dir=settings.data_dir)


def test_a_running_stack_is_its_state(settings: StackSettings,
                                      child: subprocess.Popen[bytes]) -> None:
    write_state(settings.state_file, state_file(child))
    state = running_stack(settings)
    assert state.supervisor.pid == child.pid
    assert state.component_names() == ["postgresql", "payments", "gateway"]


def test_liveness_is_the_pid_and_its_start_time(child: subprocess.Popen[bytes]) -> None:
    assert process_alive(child.pid) and process_alive(child.pid, started(child))
    # The same pid started at another time is another process (a recycled pid).
    assert not process_alive(child.pid, started(child) - 100)
    child.kill()
    deadline = time.monotonic() + 10
    while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the killed child never exited"
        time.sleep(0.01)
    assert not process_alive(child.pid)  # exited, not reaped yet: a zombie does not run
    child.wait()
    assert not process_alive(child.pid)


def test_the_cli_prints_the_one_line(settings: StackSettings,
                                     child: subprocess.Popen[bytes]) -> None:
    write_state(settings.state_file, state_file(child, "starting"))
    result = CliRunner().invoke(app, ["stop", "payments", "--data-dir",
                                      str(settings.data_dir)])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.strip() == ("error: kansoku is still starting — try again when "
                                     "'kansoku status' says running")


def test_status_of_a_stack_that_has_gone_lists_it_stopped(settings: StackSettings) -> None:
    write_state(settings.state_file, state_file(None, components=[
        component("payments", pid=4, process_started=9.0, held=True)]))
    result = CliRunner().invoke(app, ["status", "--json", "--data-dir",
                                      str(settings.data_dir)])
    assert result.exit_code == 0, result.stderr
    status = json.loads(result.stdout)
    # Whether this machine could run the browser journey (tests/stack/test_foreground.py).
    assert set(status.pop("browser_synthetic")) == {"on", "reason", "command"}
    assert status == {
        "state": "stopped", "data_dir": str(settings.data_dir),
        "components": [component("payments", process_started=9.0, state="stopped",
                                 health="down")]}


def test_status_of_a_running_stack_says_what_its_supervisor_found_for_the_browser(
        settings: StackSettings, child: subprocess.Popen[bytes]) -> None:
    """The synthetics run with the stack's environment, which the supervisor has: its
    finding is in the state file, and `status` says it whatever the shell it runs in."""
    found = {"on": False, "reason": "Playwright is not installed",
             "command": "kansoku install-browser"}
    write_state(settings.state_file, {**state_file(child, components=[
        component("payments", url="http://127.0.0.1:9")]), "browser_synthetic": found})
    result = CliRunner().invoke(app, ["status", "--json", "--data-dir",
                                      str(settings.data_dir)])
    assert result.exit_code == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["state"] == "running" and status["browser_synthetic"] == found
    assert [c["health"] for c in status["components"]] == ["down"]  # probed now
    table = CliRunner().invoke(app, ["status", "--data-dir", str(settings.data_dir)],
                               env={"COLUMNS": "200"})
    assert "Browser synthetic off: Playwright is not installed" in table.stdout


def test_status_says_the_states_in_the_command_lines_language(
        settings: StackSettings) -> None:
    write_state(settings.state_file, state_file(None, components=[
        component("payments", pid=4, process_started=9.0, held=True)]))
    try:
        result = CliRunner().invoke(app, ["--lang", "ja", "status", "--data-dir",
                                          str(settings.data_dir)], env={"COLUMNS": "200"})
    finally:
        i18n.set_language(i18n.DEFAULT_LANGUAGE)  # what `--lang ja` chose, for this test
    assert result.exit_code == 0, result.stderr
    title, *_, row = (line for line in result.stdout.splitlines()
                      if line.strip() and not line.startswith(("┏", "┡", "└")))
    assert title.strip() == "kansoku: 停止"
    assert [cell.strip() for cell in row.split("│")[1:4]] == ["payments", "停止", "応答なし"]
