"""`kansoku flags list|set|reset`: the fault flags (see docs/faults.md)."""

from __future__ import annotations

import typer

app = typer.Typer(help="List, set and reset the fault flags.", no_args_is_help=True)
