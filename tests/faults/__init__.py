"""Tests of `kansoku.faults` (the catalogue, the flags file, the effects), and `switch`,
which the services' fault tests use to turn a flag on and wait until the service sees it.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from kansoku.faults import flagfile
from tests.support import eventually


async def switch(app: FastAPI, flags_file: Path, name: str, variant: str) -> None:
    """Set flag `name` to `variant` in `flags_file`, and wait (at most 3 s: the provider
    polls every 0.5 s) until `app`'s fault flags show it."""
    flagfile.set_variant(flags_file, name, variant)

    async def seen() -> bool:
        return bool(app.state.flags.variant(name) == variant)
    await eventually(seen, 3, f"{name}={variant} seen by the service")
