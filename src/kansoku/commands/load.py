"""`kansoku load`: drive the shop with Locust (see docs/load.md)."""

from __future__ import annotations

import typer

app = typer.Typer()
