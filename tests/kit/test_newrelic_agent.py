"""What the New Relic agent does as shipped, measured against the explorer's intake:
the first request after start is not traced (the agent connects in the background when
it sees it), which is why the kit waits for the connect at start-up
(kit/approaches/newrelic.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import eventually, explorer_with_intakes, free_ports

#: A Starlette app under uvicorn with the agent initialised as its documentation says,
#: from the kit's configuration, and nothing else: no wait for the connect.
PLAIN_AGENT = textwrap.dedent("""
    import os, sys, tempfile
    import newrelic.agent
    from kansoku.kit.approaches.newrelic import agent_config

    config = os.path.join(tempfile.mkdtemp(), "newrelic.ini")
    with open(config, "w") as file:
        file.write(agent_config("plain", os.environ))
    newrelic.agent.initialize(config)

    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def numbered(request):
        return PlainTextResponse(request.path_params["number"])

    app = Starlette(routes=[Route("/requests/{number}", numbered)])
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
""")


@pytest.fixture(scope="module")
def explorer() -> Iterator[tuple[str, Any]]:
    with explorer_with_intakes() as running:
        yield running


def _start(port: int, environment: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        return subprocess.Popen([sys.executable, "-c", PLAIN_AGENT, str(port)],
                                env=environment, stdout=output, stderr=subprocess.STDOUT)


@pytest.mark.skipif(not os.environ.get("KANSOKU_AGENT_TIMING_TESTS"), reason=(
    "set KANSOKU_AGENT_TIMING_TESTS=1: passes alone, but in two full CI runs the "
    "connected agent's spans were not harvested within 20 s, then 60 s; it depends on "
    "the environment the test process hands down (not yet understood; issue 22)"))
async def test_the_agent_as_shipped_does_not_trace_the_first_request(
        explorer: tuple[str, Any], tmp_path: Path) -> None:
    explorer_url, explorer_app = explorer
    (port,) = free_ports(1)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path),
                   "NEW_RELIC_HOST": "127.0.0.1",
                   "NEW_RELIC_PORT": str(explorer_app.state.settings.newrelic_port)}
    log = tmp_path / "plain.log"
    process = _start(port, environment, log)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            async def up() -> bool:
                assert process.poll() is None, log.read_text()[-3000:]
                try:
                    return (await http.get("/requests/0")).status_code == 200
                except httpx.TransportError:
                    return False

            # The first request that reaches the app: it starts the agent's connect.
            await eventually(up, 30, "the plain app answered")
            collector = explorer_app.state.intakes.newrelic.collector

            async def connected() -> bool:
                return bool(collector.calls.get("agent_settings", 0) > 0)

            await eventually(connected, 30, "the agent connected")
            for number in range(1, 4):
                assert (await http.get(f"/requests/{number}")).status_code == 200
        async with httpx.AsyncClient(base_url=explorer_url) as explorer_http:
            paths: set[str] = set()

            async def harvested() -> bool:
                answer = (await explorer_http.get("/api/traces", params={
                    "service": "plain", "minSpans": 1})).json()["data"]
                paths.update(tag["value"] for trace in answer for span in trace["spans"]
                             for tag in span["tags"] if tag["key"] == "url.path")
                return len(paths) >= 3

            await eventually(harvested, 60, "the traced requests harvested")
    finally:
        process.terminate()
        process.wait(15)
    # Measured: the requests after the connect are traced, the first is not.
    assert paths == {"/requests/1", "/requests/2", "/requests/3"}
