"""The lab through the gateway: `POST /api/v1/lab/{scenario}` (and `/fixed`) forwarded to
the lab service with the caller's user id, and the `/lab` page."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
