"""Fixtures shared by the stack tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.stack.test_up import RunningStack
from tests.support import run_cli, stack_environment


@pytest.fixture(scope="package")
def web_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """One running stack for the browser journeys (customer and admin), started once."""
    data_dir = tmp_path_factory.mktemp("journeys") / "data"
    env = stack_environment(data_dir)
    result = run_cli("up", "--detach", env=env)
    assert result.returncode == 0, f"kansoku up failed:\n{result.stdout}\n{result.stderr}"
    try:
        yield RunningStack(env, data_dir)
    finally:
        run_cli("down", env=env)
