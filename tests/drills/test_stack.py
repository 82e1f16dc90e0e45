"""A drill against a real stack (`kansoku up --detach`): `start` stops the picked service
and runs the load in the background, `fix` refuses while the service is stopped and
holds once the learner starts it again and the chaos probes pass, `end` stops the load
and keeps the score in the stack's own PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from kansoku.drills import model
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


async def test_a_stopped_service_drill_with_its_load(stack: dict[str, str]) -> None:
    seed = next(seed for seed in range(100)
                if model.load(DRILL).fault(seed) == model.StopFault(stop="inventory"))
    started = await asyncio.to_thread(drill, stack, "start", DRILL, "--seed", str(seed))
    inventory = component(stack, "inventory")
    assert inventory["held"] and inventory["state"] == "stopped"
    load = psutil.Process(started["load_pid"])
    assert load.is_running() and "load" in load.cmdline()

    assert await asyncio.to_thread(drill, stack, "fix") == {"recovered": False,
                                                            "detail": STILL_BROKEN}
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
    assert ended["score"]["mitigate_seconds"] > 0 and ended["score"]["points"] == 0
    assert not load.is_running() or load.status() == psutil.STATUS_ZOMBIE
    (kept,) = await asyncio.to_thread(drill, stack, "history")
    assert (kept["user_name"], kept["drill_id"], kept["seed"]) == ("kenji", DRILL, seed)
