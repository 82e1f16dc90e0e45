"""Real-user monitoring: the intake for what the pages' script measures in the browser."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

router = APIRouter(include_in_schema=False)


def install(app: FastAPI) -> None:
    """Prepare what the intake needs on `app.state` (called once from `create_app`)."""
