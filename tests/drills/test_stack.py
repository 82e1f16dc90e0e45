"""Drills against a real stack (`kansoku up --detach`): `start` stops the picked service
and runs the load in the background, the solver finds the answer through the explorer's
API alone, `fix` refuses while the service is stopped and holds once the learner starts
it again and the chaos probes pass, `end` stops the load and keeps the score in the
stack's own PostgreSQL. The solver also answers a flag drill and a quiet day."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from kansoku.drills import model, solver
from kansoku.drills.stack import STILL_BROKEN
from tests.support import eventually, read_state, run_cli, stack_environment

pytestmark = pytest.mark.stack

DRILL = "service-down"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    data_dir = tmp_path_factory.mktemp("drills") / "data"
    env = {**stack_environment(data_dir), "COLUMNS": "200", "KANSOKU_DRILL_USER": "kenji"}
    result = run_cli("up", "--detach", env=env, timeout=300)
    assert result.returncode == 0, f"kansoku up failed:\n{result.stdout}\n{result.stderr}"
    try:
        yield env
    finally:
        run_cli("down", env=env)


def drill(env: dict[str, str], *args: str) -> Any:
    result = run_cli("drill", *args, "--json", env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def component(env: dict[str, str], name: str) -> dict[str, Any]:
    state = read_state(Path(env["KANSOKU_DATA_DIR"]) / "run" / "state.json")
    assert state is not None
    found: dict[str, Any] = next(c for c in state["components"] if c["name"] == name)
    return found


def explorer_url(env: dict[str, str]) -> str:
    return f"http://127.0.0.1:{env['KANSOKU_EXPLORER_PORT']}"


async def solved(env: dict[str, str], since: datetime, *, expect_fault: bool = True
                 ) -> solver.Finding:
    """What the solver finds through the stack's explorer once the load has run a
    while: a fault (`expect_fault`), or — after 30 traces have arrived — nothing."""
    findings: list[solver.Finding] = []
    async with httpx.AsyncClient(base_url=explorer_url(env)) as explorer:

        async def ready() -> bool:
            if not expect_fault:
                answer = await explorer.get("/api/traces", params={
                    "start": int(since.timestamp() * 1e6), "limit": 30})
                if len(answer.json()["data"]) < 30:
                    return False
            findings.append(await solver.solve(explorer, since))
            return findings[-1].service is not None or not expect_fault

        await eventually(ready, 90, "the solver to find the drill's answer")
    return findings[-1]


def answer(env: dict[str, str], finding: solver.Finding) -> Any:
    if finding.service is None:
        return drill(env, "answer", "--nothing-wrong")
    return drill(env, "answer", "--service", finding.service, "--cause", finding.cause,
                 "--trace", str(finding.trace_id))


async def test_a_stopped_service_drill_with_its_load(stack: dict[str, str]) -> None:
    seed = next(seed for seed in range(100)
                if model.load(DRILL).fault(seed) == model.StopFault(stop="inventory"))
    started = await asyncio.to_thread(drill, stack, "start", DRILL, "--seed", str(seed))
    inventory = component(stack, "inventory")
    assert inventory["held"] and inventory["state"] == "stopped"
    load = psutil.Process(started["load_pid"])
    assert load.is_running() and "load" in load.cmdline()

    # The solver finds the outage through the explorer alone; its answer is right.
    finding = await solved(stack, datetime.now(UTC) - timedelta(seconds=2))
    assert (finding.service, finding.cause) == ("inventory", "outage")
    answered = await asyncio.to_thread(answer, stack, finding)
    assert answered["outcome"] == "right", answered

    assert await asyncio.to_thread(drill, stack, "fix") == {"recovered": False,
                                                            "detail": str(STILL_BROKEN)}
    # The learner's fix: start the service again.
    restarted = await asyncio.to_thread(run_cli, "start", "inventory", env=stack,
                                        timeout=120)
    assert restarted.returncode == 0, restarted.stderr

    async def fixed() -> bool:
        checked = await asyncio.to_thread(drill, stack, "fix")
        return bool(checked["recovered"])

    await eventually(fixed, 90, "the fix to hold")

    ended = await asyncio.to_thread(drill, stack, "end")
    assert ended["problems"] == [] and ended["fault"] == "inventory stopped"
    # The debrief read the stack's explorer: its alerts, and the fix checks beside them.
    assert ended["alerts_note"] is None
    assert [m["what"] for m in ended["debrief"] if m["who"] == "you"][-1] == "fix: held"
    assert ended["score"]["mitigate_seconds"] > 0 and ended["score"]["points"] == 100
    assert not load.is_running() or load.status() == psutil.STATUS_ZOMBIE
    (kept,) = await asyncio.to_thread(drill, stack, "history")
    assert (kept["user_name"], kept["drill_id"], kept["seed"]) == ("kenji", DRILL, seed)


#: Every drill but service-down (above), run with seed 0. CI runs two of them — a flag
#: drill and a quiet day — and the rest with KANSOKU_ALL_DRILLS=1 (about 3 minutes
#: more): the solver's "silent service" heuristic has once named orders for
#: `slow-images` on a loaded machine (issue 23's notes).
SOLVED = [name for name in model.shipped() if name != DRILL]
IN_CI = {"checkout-fails", "quiet-day"}
ALL_DRILLS = os.environ.get("KANSOKU_ALL_DRILLS") == "1"


@pytest.mark.parametrize("name", [
    name if name in IN_CI or ALL_DRILLS else pytest.param(name, marks=pytest.mark.skip(
        reason="set KANSOKU_ALL_DRILLS=1 to solve every drill (about 3 minutes)"))
    for name in SOLVED])
async def test_the_solver_answers_from_the_explorer_alone(stack: dict[str, str], name: str
                                                          ) -> None:
    seed = 0
    fault = model.load(name).fault(seed)
    since = datetime.now(UTC)
    await asyncio.to_thread(drill, stack, "start", name, "--seed", str(seed))
    try:
        finding = await solved(stack, since, expect_fault=fault is not None)
        answered = await asyncio.to_thread(answer, stack, finding)
        assert answered["outcome"] == "right", (finding, answered)
    finally:
        ended = await asyncio.to_thread(drill, stack, "end")
    assert ended["problems"] == [] and ended["score"]["points"] == 100
