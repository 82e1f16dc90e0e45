"""Web pages in a real browser: Debian's Chromium, driven by Playwright.

The browser is `/usr/bin/chromium` from Debian's `chromium` package, which `scripts/test`
installs with apt; Playwright never downloads one of its own. The fixtures that use this
module (`browser` and `page`, in tests/conftest.py) skip when Chromium is missing, and fail
under CI, where `scripts/test` must have installed it.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI
from playwright.async_api import Browser, ConsoleMessage, Error, Page, Playwright, Route

from tests.support import serve_in_thread

CHROMIUM = Path("/usr/bin/chromium")

#: Headless, as root, with no GPU, and no calls home: this machine's network is closed, and
#: without the background-networking flags Chromium keeps trying to reach Google's hosts.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)

INSTALL_HINT = ("run scripts/test, which installs it, or "
                "'sudo apt-get update && sudo apt-get install -y --no-install-recommends chromium'")

#: Where screenshots go: test-artifacts/screenshots/<test name>.png at the repository's root.
SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"


def missing_chromium() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if not os.access(CHROMIUM, os.X_OK):
        return f"Chromium is not installed at {CHROMIUM}: {INSTALL_HINT}"
    return None


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


async def launch(playwright: Playwright) -> Browser:
    return await playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=list(CHROMIUM_FLAGS),
    )


#: How Chromium reports, on the console, a resource that answered 4xx/5xx or did not load.
FAILED_LOAD = "Failed to load resource: "


@dataclass
class BrowserPage:
    """A Playwright page that records what went wrong in it.

    `page_errors` are uncaught JavaScript exceptions; `console_errors` are the other
    console messages of type error. `failed_loads` are the resources that answered an
    error status or did not load ("<url>: <reason>"), less Chromium's own request for
    /favicon.ico; a page that is itself an error page (a 503) shows there too.
    """

    page: Page
    test_name: str
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    failed_loads: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.on("console", self._on_console)
        self.page.on("pageerror", self._on_page_error)

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        url = message.location.get("url") or "?"
        if message.text.startswith(FAILED_LOAD):
            if urlsplit(url).path != "/favicon.ico":
                self.failed_loads.append(f"{url}: {message.text.removeprefix(FAILED_LOAD)}")
            return
        self.console_errors.append(
            f"{message.text} ({url}:{message.location.get('lineNumber', 0)})"
        )

    def _on_page_error(self, error: Error) -> None:
        self.page_errors.append(f"{error.name}: {error.message}")

    @property
    def errors(self) -> list[str]:
        """The JavaScript exceptions and console errors so far (not `failed_loads`)."""
        return [*self.page_errors, *self.console_errors]

    async def screenshot(self, name: str | None = None, *, full_page: bool = True) -> Path:
        """Save a screenshot as test-artifacts/screenshots/<name or test name>.png."""
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name or self.test_name).strip("_") or "page"
        path = SCREENSHOTS / f"{stem}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        await self.page.screenshot(path=str(path), full_page=full_page)
        return path


@asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[str]:
    """Serve `app` over real HTTP, with its lifespan as `kansoku serve` runs it, for a
    browser to visit. Yields the base URL."""
    with serve_in_thread(app, lifespan="on") as url:
        yield url


def path_of(page: Page) -> str:
    """The path of the page's current URL, without host or query."""
    return re.sub(r"^https?://[^/]+", "", page.url).split("?", 1)[0]


class Visits:
    """The paths a journey arrived at, in order: what its RUM check looks for."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.paths: list[str] = []

    async def arrived(self, pattern: str) -> str:
        """Wait for a URL matching `pattern` to have loaded; record and return its path."""
        await self.page.wait_for_url(re.compile(pattern))
        await self.page.wait_for_load_state("load")
        self.paths.append(path_of(self.page))
        return self.paths[-1]


async def only_from(page: Page, origin: str) -> list[str]:
    """Let `page` reach `origin` (`http://127.0.0.1:8000`) and nothing else, as on a
    machine with no network; returns the list, filled as they happen, of the URLs it
    tried to reach elsewhere (each refused as a failed connection)."""
    refused: list[str] = []

    async def route(request: Route) -> None:
        url = request.request.url
        if url.startswith((f"{origin}/", "data:", "blob:")) or url == origin:
            await request.continue_()
        else:
            refused.append(url)
            await request.abort("internetdisconnected")

    await page.route("**/*", route)
    return refused
