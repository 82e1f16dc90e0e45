"""The supervisor's restart policy, on a component that crashes and then cannot start,
and a component the user stops (held: not restarted) and starts again."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import textwrap
from pathlib import Path
from typing import Any

import psutil
import pytest

from kansoku.stack import control
from kansoku.stack.settings import StackSettings
from kansoku.stack.supervisor import Component, Supervisor, http_probe, service_environment
from tests.support import eventually, free_ports, port_is_free, read_state

#: Serves /health/ready, then exits after 2 s (time enough for the first readiness probe
#: on a busy machine). Once its marker file exists it exits at once with an error: the
#: first start works, every restart fails.
FLAKY = textwrap.dedent("""
    import http.server, os, pathlib, sys, threading
    marker = pathlib.Path(sys.argv[2])
    if marker.exists():
        sys.exit("cannot start: simulated broken disk")
    marker.write_text("started once")

    class Ready(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Ready)
    threading.Timer(2, lambda: os._exit(3)).start()
    server.serve_forever()
""")


async def test_crashes_are_restarted_with_growing_backoff_and_failures_keep_retrying(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (port,) = free_ports(1)
    settings = StackSettings(data_dir=tmp_path, ready_timeout=5)
    flaky = Component(
        "flaky", "service",
        [sys.executable, "-c", FLAKY, str(port), str(tmp_path / "marker")],
        f"http://127.0.0.1:{port}", http_probe(f"http://127.0.0.1:{port}/"),
        tmp_path / "flaky.log",
    )
    supervisor = Supervisor(settings, [[flaky]], migrate=None)
    with caplog.at_level(logging.INFO, logger="kansoku.supervisor"):
        running = asyncio.create_task(supervisor.run())

        async def restarted_three_times() -> bool:
            return flaky.restarts >= 3

        await eventually(restarted_three_times, 15, "three restarts")
        supervisor.stopping.set()
        assert await asyncio.wait_for(running, 20) == 0

    messages = [record.getMessage() for record in caplog.records]
    delays = [message.split("restarting in ")[1].split("s")[0]
              for message in messages if "restarting in" in message]
    assert delays[:3] == ["0.5", "1.0", "2.0"]
    assert any("restart of flaky failed" in message and "simulated broken disk" in message
               for message in messages)
    state = read_state(settings.state_file)
    assert state is not None
    assert state["supervisor"]["state"] == "stopped"
    assert state["components"][0]["restarts"] >= 3


#: Serves /health/ready until it is stopped.
STEADY = textwrap.dedent("""
    import http.server, sys

    class Ready(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Ready).serve_forever()
""")


async def test_a_component_the_user_stops_stays_stopped_until_started(tmp_path: Path) -> None:
    """The path `kansoku stop/start NAME` takes: a request file, then SIGUSR1 to the
    supervisor (this process, here); the answer is in the state file."""
    (port,) = free_ports(1)
    settings = StackSettings(data_dir=tmp_path, ready_timeout=5)
    steady = Component(
        "steady", "service", [sys.executable, "-c", STEADY, str(port)],
        f"http://127.0.0.1:{port}", http_probe(f"http://127.0.0.1:{port}/"),
        tmp_path / "steady.log",
    )
    supervisor = Supervisor(settings, [[steady]], migrate=None)
    running = asyncio.create_task(supervisor.run())

    def component_state() -> dict[str, Any]:
        state = read_state(settings.state_file)
        assert state is not None
        entry: dict[str, Any] = state["components"][0]
        return entry

    async def phase_is_running() -> bool:
        return supervisor.phase == "running"

    def ask(action: control.Action) -> None:
        control.write_request(settings.run_dir, control.Request(action, "steady"))
        os.kill(os.getpid(), signal.SIGUSR1)

    try:
        await eventually(phase_is_running, 15, "the supervisor running")
        first_pid = component_state()["pid"]

        ask("stop")

        async def held_and_stopped() -> bool:
            entry = component_state()
            return bool(entry["held"]) and entry["state"] == "stopped"

        await eventually(held_and_stopped, 10, "the component stopped")
        assert not psutil.pid_exists(first_pid) or psutil.Process(
            first_pid).status() == psutil.STATUS_ZOMBIE
        # Longer than the first restart delays (0.5 s, 1 s): nothing brings it back.
        await asyncio.sleep(2.5)
        entry = component_state()
        assert (entry["state"], entry["health"], entry["pid"], entry["restarts"]) == (
            "stopped", "down", None, 0)
        assert port_is_free(port)
        assert list(control.requests_dir(settings.run_dir).iterdir()) == []

        ask("start")

        async def running_again() -> bool:
            entry = component_state()
            return not entry["held"] and bool(entry["state"] == "running")

        await eventually(running_again, 10, "the component running again")
        await steady.probe()
        second_pid = component_state()["pid"]
        assert second_pid not in (None, first_pid)

        # Once started again, a crash is restarted as before.
        os.kill(second_pid, signal.SIGKILL)

        async def restarted() -> bool:
            entry = component_state()
            return bool(entry["restarts"] == 1 and entry["state"] == "running")

        await eventually(restarted, 10, "the crash restarted")
    finally:
        supervisor.stopping.set()
        assert await asyncio.wait_for(running, 20) == 0
    state = read_state(settings.state_file)
    assert state is not None and state["supervisor"]["state"] == "stopped"


def test_requests_are_taken_oldest_first_and_junk_is_dropped(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    control.write_request(run_dir, control.Request("stop", "payments"))
    control.write_request(run_dir, control.Request("start", "payments"))
    (control.requests_dir(run_dir) / "0-junk.json").write_text("{not json")
    (control.requests_dir(run_dir) / "1-odd.json").write_text('{"action": "explode"}')
    (control.requests_dir(run_dir) / "2-half.tmp").write_text('{"action": "st')
    taken = control.take_requests(run_dir)
    assert taken == [control.Request("stop", "payments"), control.Request("start", "payments")]
    # Only the half-written one remains: its writer renames it when complete.
    assert [path.name for path in control.requests_dir(run_dir).iterdir()] == ["2-half.tmp"]


def test_services_report_to_the_explorers_own_vendor_intakes(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The services on X-Ray or New Relic are pointed at the intakes this stack's explorer
    listens on — moved ports included, so a second stack on the machine keeps its own
    data — unless the user pointed the vendor somewhere else."""
    for name in ("AWS_XRAY_DAEMON_ADDRESS", "AWS_EMF_AGENT_ENDPOINT", "NEW_RELIC_HOST",
                 "NEW_RELIC_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KANSOKU_EXPLORER_XRAY_PORT", "32000")
    monkeypatch.setenv("KANSOKU_EXPLORER_EMF_PORT", "35888")
    monkeypatch.setenv("KANSOKU_EXPLORER_NEWRELIC_PORT", "38443")
    def settings() -> StackSettings:  # external infrastructure: no embedded servers
        return StackSettings(data_dir=tmp_path, database_url="postgresql://db/kansoku",
                             nats_url="nats://bus:4222", redis_url="redis://cache:6379/0")
    env = service_environment(settings(), [], "secret")
    assert (env["AWS_XRAY_DAEMON_ADDRESS"], env["AWS_EMF_AGENT_ENDPOINT"],
            env["NEW_RELIC_HOST"], env["NEW_RELIC_PORT"]) == (
        "127.0.0.1:32000", "udp://127.0.0.1:35888", "127.0.0.1", "38443")
    # The user's own choice stands: New Relic itself is a host and its own port.
    monkeypatch.setenv("NEW_RELIC_HOST", "collector.eu01.nr-data.net")
    monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", "10.0.0.5:2000")
    env = service_environment(settings(), [], "secret")
    assert "NEW_RELIC_HOST" not in env and "NEW_RELIC_PORT" not in env
    assert "AWS_XRAY_DAEMON_ADDRESS" not in env
    # An intake turned off (empty): the vendor's default address, nothing set.
    monkeypatch.setenv("KANSOKU_EXPLORER_EMF_PORT", "")
    assert "AWS_EMF_AGENT_ENDPOINT" not in service_environment(settings(), [], "secret")
