"""`kansoku alerts …`: the alert rules and SLOs (see docs/alerts.md)."""

from __future__ import annotations

import typer

app = typer.Typer(help="The alert rules and SLOs.", no_args_is_help=True)
