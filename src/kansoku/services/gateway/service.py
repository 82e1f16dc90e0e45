"""The gateway's logic: gather what a page needs from the services behind it."""

from __future__ import annotations

from typing import Any

from kansoku.kit.errors import DependencyUnavailable
from kansoku.kit.http import ServiceClient


async def featured_products(catalog: ServiceClient, *, limit: int = 24) -> dict[str, Any]:
    """The first page of the catalog, for the home page."""
    response = await catalog.get("/products", params={"limit": limit})
    if response.status_code != 200:
        raise DependencyUnavailable("catalog", f"it answered HTTP {response.status_code}")
    page: dict[str, Any] = response.json()
    return page
