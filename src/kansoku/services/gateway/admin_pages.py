"""The admin's web pages (admin role only), server-rendered from `templates/admin/`."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/admin", include_in_schema=False)
