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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from kansoku.kit.i18n import N_, _

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


#: Why the browser journey cannot run: English templates, kept with their values and
#: said in the reader's language when shown (`BrowserSynthetic.notice`).
CHROMIUM_MISSING: Final = N_("Chromium is not installed at {path}")
PLAYWRIGHT_MISSING: Final = N_("Playwright is not installed")
JOURNEY_LEFT_OUT: Final = N_("KANSOKU_SYNTHETICS_JOURNEYS leaves out {journey}")
SETTINGS_NOT_VALID: Final = N_("the synthetics' settings are not valid ({error})")


def _why_not(chromium: Path) -> tuple[str, dict[str, str]] | None:
    """Why the browser journey cannot run here (a template and its values), or None."""
    if not os.access(chromium, os.X_OK):
        return CHROMIUM_MISSING, {"path": str(chromium)}
    if not playwright_installed():
        return PLAYWRIGHT_MISSING, {}
    return None


def missing_browser(chromium: Path) -> str | None:
    """Why the browser journey cannot run here (in English, for logs), or None when it
    can."""
    found = _why_not(chromium)
    return found[0].format(**found[1]) if found else None


@dataclass(frozen=True)
class BrowserSynthetic:
    """Whether the synthetic monitors run the browser journey; when not, why, and the
    command that turns it on (None when the fix is a setting, not an install).
    `reason` is English, as programs read it (`status --json`); `reason_template` and
    `reason_values` say it again in the reader's language."""

    on: bool
    reason: str | None = None
    command: str | None = None
    reason_template: str | None = None
    reason_values: dict[str, str] = field(default_factory=dict)

    @classmethod
    def off(cls, template: str, values: dict[str, str], command: str | None = None
            ) -> BrowserSynthetic:
        return cls(False, template.format(**values), command, template, values)

    def as_json(self) -> dict[str, object]:
        """What `status --json` says of it (the reason in English, for programs)."""
        return {"on": self.on, "reason": self.reason, "command": self.command}

    def notice(self) -> str | None:
        """The line `kansoku up` and `status` print when it is off, in the reader's
        language (a state file written before the template was kept: its English)."""
        if self.on:
            return None
        reason = (_(self.reason_template).format(**self.reason_values)
                  if self.reason_template else self.reason or "")
        line = _("Browser synthetic off: {reason}, so no monitor loads the pages in a "
                 "browser (imageSlowLoad shows only there).").format(reason=reason)
        if self.command:
            line += " " + _("Turn it on: {command}").format(command=self.command)
        return line


def browser_synthetic() -> BrowserSynthetic:
    """Whether the synthetics of a stack started from this environment run the browser
    journey (their settings: `KANSOKU_SYNTHETICS_JOURNEYS`, `…_CHROMIUM_PATH`)."""
    # pydantic-settings, imported when asked: more than the rest of `kansoku status`.
    from pydantic import ValidationError

    from kansoku.loadgen.settings import Settings

    try:
        settings = Settings()
    except ValidationError as exc:
        return BrowserSynthetic.off(SETTINGS_NOT_VALID, {"error": str(exc.errors()[0]["msg"])})
    if BROWSER_JOURNEY not in settings.journey_names():
        return BrowserSynthetic.off(JOURNEY_LEFT_OUT, {"journey": BROWSER_JOURNEY})
    found = _why_not(settings.chromium_path)
    if found is None:
        return BrowserSynthetic(True)
    return BrowserSynthetic.off(*found, command=INSTALL_COMMAND)


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
