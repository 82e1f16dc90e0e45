"""Services forked from one template process: each a process of its own (pid, session,
log, exit code, name), sharing the template's memory; a template that would fork
unsafely refuses; building a service's app after the template's imports imports
nothing more."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from kansoku.stack.prefork import PRELOAD, ForkedProcess, Forker, ForkUnavailable
from tests.support import eventually

#: The test's stand-in for `kansoku serve NAME` (see tests.support.prefork_probe).
PROBE = "tests.support:prefork_probe"
ROOT = Path(__file__).resolve().parents[2]


def _forker(tmp_path: Path, preload: list[str]) -> Forker:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return Forker(env, tmp_path / "template.log", preload=preload, entry=PROBE)


@pytest.fixture
async def forker(tmp_path: Path) -> AsyncIterator[Forker]:
    # A light preload: what matters here is the forking, not the services' imports.
    forker = _forker(tmp_path, ["json", "email.message"])
    forker.start()
    await forker.ready()
    try:
        yield forker
    finally:
        await forker.close()


async def _said(log: Path) -> dict[str, Any]:
    async def spoke() -> bool:
        return log.exists() and log.read_text().strip() != ""
    await eventually(spoke, 30, f"a line in {log}")
    said: dict[str, Any] = json.loads(log.read_text().splitlines()[0])
    return said


async def test_each_child_is_a_process_of_its_own(forker: Forker, tmp_path: Path) -> None:
    children: list[tuple[ForkedProcess, dict[str, Any]]] = []
    for name in ("catalog", "orders"):
        child = await forker.fork(name, ["serve", name], tmp_path / f"{name}.log",
                                  signal.SIGTERM)
        children.append((child, await _said(tmp_path / f"{name}.log")))
    assert forker.process is not None
    for child, said in children:
        assert said["pid"] == child.pid
        assert said["ppid"] == forker.process.pid  # the template's child…
        assert said["sid"] == child.pid  # …in a session of its own
        assert said["argv"] == ["kansoku", "serve", said["service"]]
        assert said["name"] == f"kansoku-{said['service']}"
        # The template's objects stay frozen; the child's own are collected.
        assert said["gc_enabled"] and said["frozen"] > 0
    # Every child draws its own random numbers (trace ids come from them).
    assert children[0][1]["random"] != children[1][1]["random"]
    for child, _ in children:
        child.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(child.wait(), 10) == 7  # its own exit code
        assert child.returncode == 7
        with pytest.raises(ProcessLookupError):
            child.send_signal(signal.SIGTERM)  # ended: never another process's pid


async def test_children_end_when_the_template_dies(forker: Forker, tmp_path: Path) -> None:
    child = await forker.fork("cart", ["serve", "cart"], tmp_path / "cart.log",
                              signal.SIGTERM)
    await _said(tmp_path / "cart.log")
    assert forker.process is not None
    forker.process.kill()
    # Its parent-death signal, SIGTERM, ends it (the probe exits 7 on it); the code
    # itself is lost with the template, which would have reaped it.
    assert await asyncio.wait_for(child.wait(), 10) == -signal.SIGTERM
    assert not psutil.pid_exists(child.pid) or \
        psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE
    with pytest.raises(ForkUnavailable):
        await forker.fork("cart", ["serve", "cart"], tmp_path / "again.log",
                          signal.SIGTERM)


async def test_a_template_with_a_thread_refuses_to_fork(tmp_path: Path) -> None:
    """pyarrow starts its allocator's thread when imported: forking then could copy a
    lock another thread holds, so the template says no and services start on their own."""
    forker = _forker(tmp_path, ["pyarrow"])
    forker.start()
    try:
        with pytest.raises(ForkUnavailable, match="threads"):
            await forker.ready()
    finally:
        await forker.close()


@pytest.mark.parametrize("service", ["catalog", "gateway"])
def test_building_an_app_after_the_preload_imports_no_more_packages(service: str) -> None:
    """What a service imports when its app is built (the database driver, the exporters'
    HTTP stack) is in the template's preload: else every child imports it again, on its
    own pages."""
    code = (
        "import importlib, os, sys\n"
        f"for module in {list(PRELOAD)!r}: importlib.import_module(module)\n"
        "before = set(sys.modules)\n"
        f"from kansoku.services.{service}.app import create_app\n"
        "create_app()\n"
        "print(*sorted({m.split('.')[0] for m in set(sys.modules) - before}))\n"
        "os._exit(0)\n")
    env = {**os.environ, "KANSOKU_DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none",
           "KANSOKU_REDIS_URL": "redis://127.0.0.1:9/0", "KANSOKU_NATS_URL": "nats://127.0.0.1:9",
           # Building the app exports nothing yet; nothing listens there.
           "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}
    printed = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True, timeout=120).stdout.split()
    assert printed == []
