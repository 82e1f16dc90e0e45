"""What the New Relic agent does as shipped, measured against the explorer's intake:
the first request after start is not traced (the agent connects in the background when
it sees it, and records nothing until its session is active), which is why the kit
waits for the connect at start-up (kit/approaches/newrelic.py)."""

from __future__ import annotations

import textwrap
from typing import Any

import httpx

from tests.support import ServiceProcesses, eventually, free_ports, intake_environment

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


async def test_the_agent_as_shipped_does_not_trace_the_first_request(
        intakes_explorer: tuple[str, Any], service_processes: ServiceProcesses) -> None:
    explorer_url, explorer_app = intakes_explorer
    (port,) = free_ports(1)
    service_processes.start("plain", PLAIN_AGENT, str(port),
                            environment=intake_environment(explorer_url, explorer_app))
    plain = f"http://127.0.0.1:{port}"
    # The first request that reaches the app: it starts the agent's connect.
    await service_processes.wait_until_answering("plain", f"{plain}/requests/0", 30)
    collector = explorer_app.state.intakes.newrelic.collector

    # Recording starts once the agent's session is active: after `connect` and after the
    # `agent_settings` it posts during it (requests in between are not traced either,
    # which made this test flaky while it waited for `agent_settings` alone). The
    # session's first harvest, 5 s on, lists the loaded modules: by then it records.
    async def harvesting() -> bool:
        return bool(collector.calls.get("update_loaded_modules", 0) > 0)

    await eventually(harvesting, 30, "the agent's first harvest")
    async with httpx.AsyncClient(base_url=plain, timeout=10) as http:
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
    # Measured: the requests after the connect are traced, the first is not.
    assert paths == {"/requests/1", "/requests/2", "/requests/3"}
