"""Whether the browser synthetic journey (`storefront`) can run here, and installing what
it needs with one command: `kansoku install-browser`.

The journey drives Debian's Chromium (`/usr/bin/chromium`) with Playwright, which is an
optional dependency (`kansoku[browser]`): `scripts/up` and `pip install kansoku` bring
neither. Without them the synthetics skip the journey — and it is the only monitor that
loads the pages' images, where imageSlowLoad shows — so `kansoku up` and `kansoku status`
say so, with the command that turns it on.

Light on purpose (no Playwright, no OpenTelemetry, and the synthetics' settings only when
`browser_synthetic` reads them): `kansoku status` imports it, and the stack's state file
keeps a `BrowserSynthetic` (stack/state.py).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

#: The one command that turns the browser synthetic on.
INSTALL_COMMAND: Final = "kansoku install-browser"
#: The journey that needs a browser.
BROWSER_JOURNEY: Final = "storefront"
#: Debian's Chromium: what `kansoku install-browser` installs, and where it puts it.
DEBIAN_CHROMIUM: Final = Path("/usr/bin/chromium")
#: kansoku's optional dependencies for the browser journey (`kansoku[browser]`).
BROWSER_EXTRA: Final = "browser"


def playwright_installed() -> bool:
    """Whether Playwright can be imported — also when it was installed after this process
    started (the synthetics check again every round)."""
    importlib.invalidate_caches()
    return importlib.util.find_spec("playwright") is not None


def missing_browser(chromium: Path) -> str | None:
    """Why the browser journey cannot run here, or None when it can."""
    if not os.access(chromium, os.X_OK):
        return f"Chromium is not installed at {chromium}"
    if not playwright_installed():
        return "Playwright is not installed"
    return None


@dataclass(frozen=True)
class BrowserSynthetic:
    """Whether the synthetic monitors run the browser journey; when not, why, and the
    command that turns it on (None when the fix is a setting, not an install)."""

    on: bool
    reason: str | None = None
    command: str | None = None

    def notice(self) -> str | None:
        """The line `kansoku up` and `status` print when it is off."""
        if self.on:
            return None
        fix = f" Turn it on: {self.command}" if self.command else ""
        return (f"Browser synthetic off: {self.reason}, so no monitor loads the pages in a "
                f"browser (imageSlowLoad shows only there).{fix}")


def browser_synthetic() -> BrowserSynthetic:
    """Whether the synthetics of a stack started from this environment run the browser
    journey (their settings: `KANSOKU_SYNTHETICS_JOURNEYS`, `…_CHROMIUM_PATH`)."""
    # pydantic-settings, imported when asked: more than the rest of `kansoku status`.
    from pydantic import ValidationError

    from kansoku.loadgen.settings import Settings

    try:
        settings = Settings()
    except ValidationError as exc:
        return BrowserSynthetic(False, f"the synthetics' settings are not valid "
                                       f"({exc.errors()[0]['msg']})")
    if BROWSER_JOURNEY not in settings.journey_names():
        return BrowserSynthetic(False, "KANSOKU_SYNTHETICS_JOURNEYS leaves out "
                                       f"{BROWSER_JOURNEY}")
    reason = missing_browser(settings.chromium_path)
    return BrowserSynthetic(reason is None, reason, INSTALL_COMMAND if reason else None)


# --- installing -----------------------------------------------------------------------

class InstallFailed(Exception):
    """A step of the install did not work; the message names it and what to do."""


def browser_requirements() -> list[str]:
    """What `kansoku[browser]` adds (Playwright), as kansoku's own metadata says."""
    import importlib.metadata

    found = []
    for requirement in importlib.metadata.requires("kansoku") or []:
        name, _, marker = requirement.partition(";")
        if marker.replace(" ", "").replace("'", '"') == f'extra=="{BROWSER_EXTRA}"':
            found.append(name.strip())
    return found


def _run(command: Sequence[str], what: str, hint: str) -> None:
    """Run `command`, quietly; on failure, `InstallFailed` with its last words."""
    done = subprocess.run(command, capture_output=True, text=True, check=False,
                          env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    if done.returncode != 0:
        last = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise InstallFailed(f"{what} failed ({last[0][:300]}): {hint}")


def install_playwright() -> None:
    """Playwright into this Python environment (pip; it never downloads a browser)."""
    requirements = browser_requirements()
    command = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check",
               *requirements]
    _run(command, "installing Playwright", f"run {shlex.join(command)} to see why")


def install_chromium(chromium: Path) -> None:
    """Debian's `chromium` package, with apt-get as root or through sudo."""
    if chromium != DEBIAN_CHROMIUM:
        raise InstallFailed(f"KANSOKU_SYNTHETICS_CHROMIUM_PATH names {chromium}, which is not "
                            "a program: install Chromium there, or unset the variable to "
                            f"use Debian's ({DEBIAN_CHROMIUM})")
    apt = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"]
    shown = f"sudo apt-get update && sudo {' '.join(apt)}"
    if shutil.which("apt-get") is None:
        raise InstallFailed("there is no apt-get here to install Chromium with: install "
                            "Chromium another way and set KANSOKU_SYNTHETICS_CHROMIUM_PATH "
                            "to it")
    if os.geteuid() == 0:
        as_root: list[str] = []
    elif shutil.which("sudo") is not None:
        as_root = ["sudo"]
    else:
        raise InstallFailed(f"installing Chromium needs root: run '{shown}'")
    _run([*as_root, "apt-get", "update", "-q"], "apt-get update", f"run '{shown}'")
    _run([*as_root, *apt], "installing Chromium", f"run '{shown}'")
