"""The gateway's logic: gather what a page needs, and relay public API calls to the
service that owns them."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from typing import Any

import httpx
from fastapi import Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from kansoku.kit.errors import DependencyUnavailable
from kansoku.kit.http import ServiceClient
from kansoku.services.gateway.schemas import NewProduct

logger = logging.getLogger(__name__)


async def featured_products(catalog: ServiceClient, *, limit: int = 24) -> dict[str, Any]:
    """The first page of the catalog, for the home page."""
    response = await catalog.get("/products", params={"limit": limit})
    if response.status_code != 200:
        raise DependencyUnavailable("catalog", f"it answered HTTP {response.status_code}")
    page: dict[str, Any] = response.json()
    return page


async def product_with_stock(catalog: ServiceClient, inventory: ServiceClient,
                             product_id: int) -> Response:
    """A product and how many can be bought now. Without inventory the product is still
    shown, its stock "unknown": a page without a number beats no page."""
    product_answer, stock_answer = await asyncio.gather(
        catalog.get(f"/products/{product_id}"),
        inventory.get(f"/stock/{product_id}"),
        return_exceptions=True,
    )
    if isinstance(product_answer, BaseException):
        raise product_answer
    if product_answer.status_code != 200:
        return as_response(product_answer)
    product: dict[str, Any] = product_answer.json()
    if isinstance(stock_answer, BaseException) or stock_answer.status_code != 200:
        logger.warning("stock of product %s unknown: inventory did not answer", product_id)
        product.update(stock=None, stock_status="unknown")
    else:
        stock = stock_answer.json()
        product.update(stock=stock["available"], stock_status=stock["status"])
    return JSONResponse(product)


async def create_product(catalog: ServiceClient, inventory: ServiceClient, request: Request,
                         new: NewProduct) -> Response:
    """Create the product in the catalog, then its starting stock in inventory. If the
    stock cannot be set, the product is removed again: no product half-created."""
    headers = _forwarded(request)
    created = await catalog.request("POST", "/products", headers=headers, json=new.model_dump(
        mode="json", exclude={"inventory"}))
    if created.status_code != 201:
        return as_response(created)
    product: dict[str, Any] = created.json()
    try:
        stocked = await inventory.request(
            "POST", f"/inventory/{product['id']}/adjust", headers=headers,
            json={"delta": new.inventory, "reason": "initial stock"})
        if stocked.status_code != 200:
            raise DependencyUnavailable("inventory", f"it answered HTTP {stocked.status_code}")
    except DependencyUnavailable:
        await catalog.request("DELETE", f"/products/{product['id']}", headers=headers)
        raise
    stock = stocked.json()
    product.update(stock=stock["available"], stock_status=stock["status"])
    return JSONResponse(product, status_code=201)


async def priced_cart(cart: ServiceClient, catalog: ServiceClient, request: Request
                      ) -> Response:
    """The caller's cart, each line with the product's name and today's price."""
    answer = await cart.get("/cart", headers=_forwarded(request))
    if answer.status_code != 200:
        return as_response(answer)
    lines = answer.json()["items"]
    products: dict[int, dict[str, Any]] = {}
    if lines:
        listed = await catalog.get("/products", params={
            "ids": ",".join(str(line["product_id"]) for line in lines), "limit": 100})
        if listed.status_code != 200:
            raise DependencyUnavailable("catalog", f"it answered HTTP {listed.status_code}")
        products = {product["id"]: product for product in listed.json()["items"]}
    items, total = [], Decimal("0")
    for line in lines:
        product = products.get(line["product_id"])
        if product is None:  # removed from the catalog since it was added
            continue
        price = Decimal(product["price"])
        items.append({"product_id": line["product_id"], "name": product["name"],
                      "unit_price": str(price), "quantity": line["quantity"],
                      "line_total": str(price * line["quantity"])})
        total += price * line["quantity"]
    currency = next(iter(products.values()))["currency"] if products else None
    return JSONResponse({"items": items, "total": str(total), "currency": currency})


async def add_to_cart(cart: ServiceClient, catalog: ServiceClient, request: Request,
                      line: BaseModel) -> Response:
    """Add to the cart a product that exists (404 if it does not)."""
    product_id = line.model_dump()["product_id"]
    known = await catalog.get(f"/products/{product_id}")
    if known.status_code != 200:
        return as_response(known)
    await relay(cart, "POST", "/cart/items", request, body=line)
    return await priced_cart(cart, catalog, request)


def _forwarded(request: Request) -> dict[str, str]:
    """The caller's token goes along, for the service to check itself."""
    authorization = request.headers.get("authorization")
    return {"Authorization": authorization} if authorization else {}


def as_response(response: httpx.Response) -> Response:
    if response.status_code == 204:
        return Response(status_code=204)
    return JSONResponse(response.json(), status_code=response.status_code,
                        media_type=response.headers.get("content-type", "application/json"))


async def relay(
    client: ServiceClient,
    method: str,
    path: str,
    request: Request,
    *,
    body: BaseModel | None = None,
    params: dict[str, Any] | None = None,
) -> Response:
    """Send a public API call on to the service that owns it and answer with what it
    said: its status and JSON, problems included (they already carry the request id,
    which the client forwarded). The caller's token goes along, for the service to
    check itself."""
    headers = _forwarded(request)
    if key := request.headers.get("idempotency-key"):
        headers["Idempotency-Key"] = key
    response = await client.request(
        method, path, headers=headers,
        json=body.model_dump(mode="json", exclude_unset=True) if body is not None else None,
        params={key: value for key, value in (params or {}).items() if value is not None},
    )
    return as_response(response)


#: What a passed-through (non-JSON) answer keeps of the service's response headers.
_PASSED_HEADERS = ("content-type", "content-disposition", "etag", "cache-control",
                   "content-security-policy", "x-content-type-options", "retry-after")


async def pass_through(client: ServiceClient, request: Request, path: str, *,
                       forward_token: bool = False) -> Response:
    """Answer with another service's non-JSON response as it is — an image, a CSV
    download — keeping its content and caching headers. A browser's If-None-Match goes
    along, so an unchanged picture costs a 304; problems come back as problems."""
    headers = _forwarded(request) if forward_token else {}
    if etag := request.headers.get("if-none-match"):
        headers["If-None-Match"] = etag
    answer = await client.get(path, headers=headers)
    if answer.headers.get("content-type", "").startswith("application/problem+json"):
        return as_response(answer)
    return Response(answer.content if answer.status_code == 200 else None,
                    status_code=answer.status_code,
                    headers={name: answer.headers[name] for name in _PASSED_HEADERS
                             if name in answer.headers})


async def upload_picture(catalog: ServiceClient, request: Request, product_id: int,
                         data: bytes, content_type: str) -> Response:
    """Send an uploaded image on to the catalog, which checks and keeps it."""
    headers = {**_forwarded(request), "Content-Type": content_type}
    answer = await catalog.request("PUT", f"/products/{product_id}/image", headers=headers,
                                   content=data)
    return as_response(answer)
