"""The gateway's logic: gather what a page needs, and relay public API calls to the
service that owns them."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from kansoku.kit.errors import DependencyUnavailable
from kansoku.kit.http import ServiceClient


async def featured_products(catalog: ServiceClient, *, limit: int = 24) -> dict[str, Any]:
    """The first page of the catalog, for the home page."""
    response = await catalog.get("/products", params={"limit": limit})
    if response.status_code != 200:
        raise DependencyUnavailable("catalog", f"it answered HTTP {response.status_code}")
    page: dict[str, Any] = response.json()
    return page


async def relay(
    client: ServiceClient,
    method: str,
    path: str,
    request: Request,
    *,
    body: BaseModel | None = None,
    params: dict[str, Any] | None = None,
) -> JSONResponse:
    """Send a public API call on to the service that owns it and answer with what it
    said: its status and JSON, problems included (they already carry the request id,
    which the client forwarded). The caller's token goes along, for the service to
    check itself."""
    headers = {}
    if authorization := request.headers.get("authorization"):
        headers["Authorization"] = authorization
    response = await client.request(
        method, path, headers=headers,
        json=body.model_dump(mode="json", exclude_unset=True) if body is not None else None,
        params={key: value for key, value in (params or {}).items() if value is not None},
    )
    return JSONResponse(response.json(), status_code=response.status_code,
                        media_type=response.headers.get("content-type", "application/json"))
