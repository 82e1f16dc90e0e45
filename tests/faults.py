"""Switching a fault flag in a test and waiting until the service under test sees it."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from kansoku.kit import flags
from tests.support import eventually


async def switch(app: FastAPI, flags_file: Path, name: str, variant: str) -> None:
    """Set flag `name` to `variant` in `flags_file`, and wait (at most 3 s: the provider
    polls every 0.5 s) until `app`'s fault flags show it."""
    flags.set_variant(flags_file, name, variant)

    async def seen() -> bool:
        return bool(app.state.flags.variant(name) == variant)
    await eventually(seen, 3, f"{name}={variant} seen by the service")
