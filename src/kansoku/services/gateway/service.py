"""The gateway's logic: gather what a page needs, and relay public API calls to the
service that owns them."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import httpx
from fastapi import Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from kansoku.kit.errors import DependencyUnavailable, Problem
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
    try:
        product = await add_product(catalog, inventory, _forwarded(request), new)
    except Refused as refused:
        return as_response(refused.response)
    stock = product.pop("stock_level")
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


# --- the admin pages ------------------------------------------------------------------
#
# The admin pages call the services with the web session's token (`headers`), not a
# request's Authorization header, and want data, not responses: a service's "no" (4xx)
# becomes `Refused`, which a page shows next to the field it names; a service that is
# away raises `DependencyUnavailable` (from the client), which becomes the 503 page.


class Refused(Problem):
    """Another service said no (4xx) to what an admin page asked. `detail` is its
    sentence for a person; `field` the form field it is about, when it names one. A
    page shows it next to that field; one it is not caught by becomes the problem page
    with the service's status and sentence (a product deleted meanwhile: 404)."""

    def __init__(self, response: httpx.Response, code: str, detail: str,
                 field: str | None = None) -> None:
        super().__init__(response.status_code, code, detail)
        self.response, self.field = response, field

    @classmethod
    def from_response(cls, response: httpx.Response) -> Refused:
        try:
            body: dict[str, Any] = response.json()
        except ValueError:
            body = {}
        field = body.get("field")
        errors = body.get("errors") or []
        if field is None and errors:  # a validation error: name its first field
            field = errors[0].get("field")
        return cls(response, str(body.get("type", "error")).rsplit("/", 1)[-1],
                   str(body.get("detail") or f"The request was refused (HTTP "
                                              f"{response.status_code})."),
                   str(field) if field else None)


async def call(client: ServiceClient, method: str, path: str, headers: dict[str, str], *,
               json: Any = None, params: dict[str, Any] | None = None,
               content: bytes | None = None) -> Any:
    """One call to a service for an admin page: its JSON (None for 204), or `Refused`."""
    answer = await client.request(
        method, path, headers=headers, json=json, content=content,
        params={key: value for key, value in (params or {}).items() if value is not None})
    if answer.status_code >= 400:
        raise Refused.from_response(answer)
    return None if answer.status_code == 204 else answer.json()


async def products_by_id(catalog: ServiceClient, product_ids: list[int]
                         ) -> dict[int, dict[str, Any]]:
    """The catalog's products with these ids (at most 100), by id; missing ones absent."""
    if not product_ids:
        return {}
    page = await call(catalog, "GET", "/products", {}, params={
        "ids": ",".join(map(str, product_ids)), "limit": 100})
    return {product["id"]: product for product in page["items"]}


async def stock_by_id(inventory: ServiceClient, product_ids: list[int]
                      ) -> dict[int, dict[str, Any]]:
    """Stock levels of these products (at most 100), by product id."""
    if not product_ids:
        return {}
    levels = await call(inventory, "GET", "/stock", {},
                        params={"product_ids": ",".join(map(str, product_ids))})
    return {level["product_id"]: level for level in levels}


async def products_with_stock(catalog: ServiceClient, inventory: ServiceClient, *,
                              limit: int, offset: int, search: str | None,
                              category: str | None) -> dict[str, Any]:
    """A page of the catalog for the admin's product list, each product with its stock
    level (None when inventory does not answer: the list is still worth showing)."""
    page: dict[str, Any] = await call(catalog, "GET", "/products", {}, params={
        "limit": limit, "offset": offset, "q": search or None, "category": category or None,
        "sort": "newest"})
    try:
        stock = await stock_by_id(inventory, [product["id"] for product in page["items"]])
    except DependencyUnavailable:
        logger.warning("inventory did not answer: the product list shows no stock")
        stock = {}
    for product in page["items"]:
        product["stock"] = stock.get(product["id"])
    return page


async def stock_overview(inventory: ServiceClient, catalog: ServiceClient,
                         headers: dict[str, str], *, limit: int, offset: int,
                         low_only: bool) -> dict[str, Any]:
    """A page of stock levels, each with its product (None: no longer in the catalog)."""
    page: dict[str, Any] = await call(inventory, "GET", "/inventory", headers, params={
        "limit": limit, "offset": offset, "low_only": str(low_only).lower()})
    products = await products_by_id(catalog, [row["product_id"] for row in page["items"]])
    for row in page["items"]:
        row["product"] = products.get(row["product_id"])
    return page


async def add_product(catalog: ServiceClient, inventory: ServiceClient,
                      headers: dict[str, str], new: NewProduct) -> dict[str, Any]:
    """Create a product in the catalog, then its starting stock in inventory (its level
    in `stock_level`). If the stock cannot be set, the product is removed again: no
    product half-created. Raises `Refused` when the catalog says no."""
    created = await catalog.request("POST", "/products", headers=headers,
                                    json=new.model_dump(mode="json", exclude={"inventory"}))
    if created.status_code != 201:
        raise Refused.from_response(created)
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
    product["stock_level"] = stocked.json()
    return product


#: What the start of each image format the catalog takes looks like. Checked before a
#: product is created with its image, so a wrong file is refused with the form still
#: filled in; the catalog decodes and checks the image fully when it is sent.
_IMAGE_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"),
                     (b"GIF87a", "image/gif"), (b"GIF89a", "image/gif"))


def image_type(data: bytes) -> str | None:
    """The image's media type by its first bytes (PNG, JPEG, GIF or WebP), or None."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return next((kind for signature, kind in _IMAGE_SIGNATURES
                 if data.startswith(signature)), None)


# --- the admin dashboard --------------------------------------------------------------


@dataclass(frozen=True)
class FailedTrace:
    """A recent trace with an error, as the dashboard lists it."""

    trace_id: str
    url: str
    started_at: datetime
    service: str
    operation: str
    duration_ms: float
    message: str


@dataclass(frozen=True)
class RecentFailures:
    """Traces with errors found in the explorer; `unavailable` says why there are none
    to show when the explorer could not be asked (then `traces` is empty)."""

    traces: list[FailedTrace]
    search_url: str
    unavailable: str | None = None


def _tag(span: dict[str, Any], key: str) -> Any:
    return next((tag.get("value") for tag in span.get("tags", []) if tag.get("key") == key),
                None)


def _failed_trace(explorer_url: str, trace: dict[str, Any]) -> FailedTrace:
    """One Jaeger-shaped trace as a dashboard line: its root, and what went wrong."""
    spans: list[dict[str, Any]] = trace["spans"]
    root = min(spans, key=lambda span: (bool(span.get("references")), span["startTime"]))
    failed_spans = [span for span in spans if _tag(span, "error") in (True, "true")]
    # Where it went wrong first: a failed span none of whose children failed (its
    # parents usually only report the failure they were handed).
    failed_parents = {reference["spanID"] for span in failed_spans
                      for reference in span.get("references") or []}
    origins = [span for span in failed_spans if span["spanID"] not in failed_parents]
    failed = min(origins or [root], key=lambda span: span["startTime"])
    processes = trace.get("processes", {})
    message = (_tag(failed, "otel.status_description") or _tag(failed, "exception.message")
               or f"{failed['operationName']} failed")
    return FailedTrace(
        trace_id=trace["traceID"], url=f"{explorer_url}/traces/{trace['traceID']}",
        started_at=datetime.fromtimestamp(root["startTime"] / 1e6, UTC),
        service=processes.get(failed.get("processID"), {}).get("serviceName", "?"),
        operation=root["operationName"], duration_ms=root["duration"] / 1000,
        message=str(message)[:300])


async def recent_failures(explorer_url: str, *, service: str = "gateway",
                          lookback: str = "1h", limit: int = 10, timeout: float = 1.5,
                          transport: httpx.AsyncBaseTransport | None = None
                          ) -> RecentFailures:
    """The newest traces through `service` with an error, from the explorer's Jaeger
    query API. The explorer (or, in a distributed setup, another backend) may be
    away: then the answer says so instead of failing the page. A short timeout keeps a
    slow backend from slowing the dashboard."""
    explorer_url = explorer_url.rstrip("/")
    search_url = f"{explorer_url}/traces?{urlencode({'service': service, 'error': 'true'})}"
    params: dict[str, str | int] = {"service": service, "tags": json.dumps({"error": "true"}),
              "lookback": lookback, "limit": limit}
    try:
        async with httpx.AsyncClient(timeout=timeout, transport=transport) as client:
            answer = await client.get(f"{explorer_url}/api/traces", params=params)
        answer.raise_for_status()
        found = answer.json()["data"]
        traces = [_failed_trace(explorer_url, trace) for trace in found if trace.get("spans")]
    except httpx.HTTPStatusError as exc:
        return RecentFailures([], search_url, f"the explorer answered HTTP "
                                              f"{exc.response.status_code}")
    except httpx.HTTPError as exc:
        return RecentFailures([], search_url, f"the explorer at {explorer_url} did not "
                                              f"answer ({type(exc).__name__})")
    except (ValueError, KeyError, TypeError) as exc:
        return RecentFailures([], search_url, f"the explorer's answer was not understood "
                                              f"({type(exc).__name__})")
    traces.sort(key=lambda failed: failed.started_at, reverse=True)
    return RecentFailures(traces, search_url)


@dataclass
class Dashboard:
    """What the admin dashboard shows. A part whose service did not answer is None,
    and `missing` says so in words; the rest of the page is still shown."""

    sales: dict[str, Any] | None = None
    low_stock: dict[str, Any] | None = None
    dead_letters: list[dict[str, Any]] | None = None
    failures: RecentFailures | None = None
    missing: list[str] = dataclasses.field(default_factory=list)


async def dashboard(orders: ServiceClient, inventory: ServiceClient, catalog: ServiceClient,
                    worker: ServiceClient, explorer_url: str, headers: dict[str, str]
                    ) -> Dashboard:
    """Gather the dashboard's parts at once: today's orders and revenue, products low
    on stock, dead letters, and recent failed traces."""
    sales, low, dead, failures = await asyncio.gather(
        call(orders, "GET", "/sales/summary", headers),
        stock_overview(inventory, catalog, headers, limit=10, offset=0, low_only=True),
        call(worker, "GET", "/dead-letters", headers, params={"limit": 100}),
        recent_failures(explorer_url),
        return_exceptions=True)
    board = Dashboard(failures=failures if isinstance(failures, RecentFailures) else None)
    for name, part, what in (("sales", sales, "today's orders"),
                             ("low_stock", low, "low-stock products"),
                             ("dead_letters", dead, "dead letters")):
        if isinstance(part, DependencyUnavailable | Refused):
            logger.warning("the dashboard shows no %s: %s", what, part)
            board.missing.append(f"{what[0].upper()}{what[1:]} cannot be shown right now: "
                                 f"{part.detail}")
        elif isinstance(part, BaseException):
            raise part
        else:
            setattr(board, name, part)
    return board
