"""The supervisor's restart policy, on a component that crashes and then cannot start."""

from __future__ import annotations

import asyncio
import logging
import sys
import textwrap
from pathlib import Path

import pytest

from kansoku.stack.settings import StackSettings
from kansoku.stack.state import read_state
from kansoku.stack.supervisor import Component, Supervisor, http_probe
from tests.support import eventually, free_ports

#: Serves /health/ready, then exits after 0.5 s. Once its marker file exists it exits
#: at once with an error: the first start works, every restart fails.
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
    threading.Timer(0.5, lambda: os._exit(3)).start()
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
