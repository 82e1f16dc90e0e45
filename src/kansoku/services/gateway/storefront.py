"""What the storefront's pages ask of the services: products with their stock, the cart
priced, checkout (place the order, pay it), orders, accounts.

Each function calls the services as the public API does, with the web session's token
(`session.auth_headers()`), and gives back data for a page. A service's "no" (4xx)
becomes `service.Refused`, which the page shows in words next to the field it is about;
a service that is away raises `DependencyUnavailable`, which becomes the 503 page. A
token the services no longer accept logs the session out and sends the browser to the
login page.
"""

from __future__ import annotations

import asyncio
import logging
import time
from decimal import Decimal
from typing import Any, Final

from kansoku.kit.errors import DependencyUnavailable
from kansoku.kit.http import ServiceClient
from kansoku.services.gateway import service
from kansoku.services.gateway.service import Refused
from kansoku.services.gateway.sessions import LoginRequired, WebSession

logger = logging.getLogger(__name__)

#: How long the gateway keeps the list of categories (they change only with a release
#: of the demo data): one call to the catalog fewer for most pages.
CATEGORIES_SECONDS: Final = 300.0


async def ask(client: ServiceClient, method: str, path: str, session: WebSession, *,
              json: Any = None, params: dict[str, Any] | None = None,
              headers: dict[str, str] | None = None) -> Any:
    """One call for the session's user: the answer's JSON, or `Refused`. A 401 means the
    tokens no longer work (the account is gone, the keys changed): log out, log in."""
    try:
        return await service.call(client, method, path,
                                  {**session.auth_headers(), **(headers or {})},
                                  json=json, params=params)
    except Refused as refused:
        if refused.status == 401 and session.logged_in:
            session.forget_user()
            raise LoginRequired("/login") from refused
        raise


class CategoryList:
    """The catalog's categories, kept for `CATEGORIES_SECONDS` in this process."""

    def __init__(self, catalog: ServiceClient) -> None:
        self.catalog = catalog
        self._categories: list[dict[str, Any]] = []
        self._until = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> list[dict[str, Any]]:
        if time.monotonic() < self._until:
            return self._categories
        async with self._lock:
            if time.monotonic() >= self._until:
                answer = await self.catalog.get("/categories")
                if answer.status_code != 200:
                    raise DependencyUnavailable("catalog",
                                                f"it answered HTTP {answer.status_code}")
                self._categories = list(answer.json())
                self._until = time.monotonic() + CATEGORIES_SECONDS
        return self._categories


async def stock_levels(inventory: ServiceClient, product_ids: list[int]
                       ) -> dict[int, dict[str, Any]]:
    """Stock of these products by id. Inventory away: none known, and the page shows the
    products without their stock (a page without a badge beats no page)."""
    if not product_ids:
        return {}
    try:
        return await service.stock_by_id(inventory, product_ids)
    except (DependencyUnavailable, Refused) as exc:
        logger.warning("stock of %d products unknown: %s", len(product_ids), exc)
        return {}


def _with_stock(product: dict[str, Any], level: dict[str, Any] | None) -> dict[str, Any]:
    if level is None:
        return {**product, "stock": None, "stock_status": "unknown"}
    return {**product, "stock": level["available"], "stock_status": level["status"],
            "low_stock_threshold": level.get("low_stock_threshold")}


async def browse(catalog: ServiceClient, inventory: ServiceClient, *, category: str | None,
                 search: str | None, sort: str, limit: int, offset: int) -> dict[str, Any]:
    """A page of products (with their stock) and how many match in all."""
    page = await ask(catalog, "GET", "/products", _ANONYMOUS, params={
        "category": category, "q": search, "sort": sort, "limit": limit, "offset": offset})
    levels = await stock_levels(inventory, [product["id"] for product in page["items"]])
    items = [_with_stock(product, levels.get(product["id"])) for product in page["items"]]
    return {"items": items, "total": page["total"]}


async def product(catalog: ServiceClient, inventory: ServiceClient, product_id: int
                  ) -> dict[str, Any] | None:
    """One product with its stock; None when there is no such product."""
    found, levels = await asyncio.gather(
        catalog.get(f"/products/{product_id}"), stock_levels(inventory, [product_id]))
    if found.status_code == 404:
        return None
    if found.status_code != 200:
        raise Refused.from_response(found)
    return _with_stock(found.json(), levels.get(product_id))


async def priced_cart(cart: ServiceClient, catalog: ServiceClient, session: WebSession
                      ) -> dict[str, Any]:
    """The session's cart, each line with the product's name, picture and today's
    price, and the total."""
    lines = (await ask(cart, "GET", "/cart", session))["items"]
    products = await service.products_by_id(catalog, [line["product_id"] for line in lines])
    items, total = [], Decimal("0")
    for line in lines:
        found = products.get(line["product_id"])
        if found is None:  # removed from the catalog since it was added
            continue
        price = Decimal(found["price"])
        items.append({"product_id": found["id"], "name": found["name"], "unit_price": price,
                      "quantity": line["quantity"], "line_total": price * line["quantity"],
                      "thumbnail_url": found.get("thumbnail_url") or found["image_url"]})
        total += price * line["quantity"]
    currency = next(iter(products.values()))["currency"] if products else "USD"
    return {"items": items, "total": total, "currency": currency,
            "count": sum(item["quantity"] for item in items)}


async def cart_quantity(cart: ServiceClient, session: WebSession, product_id: int) -> int:
    """How many of a product the session's cart holds already."""
    lines = (await ask(cart, "GET", "/cart", session))["items"]
    return sum(line["quantity"] for line in lines if line["product_id"] == product_id)


async def add_to_cart(cart: ServiceClient, session: WebSession, product_id: int,
                      quantity: int) -> None:
    await ask(cart, "POST", "/cart/items", session,
              json={"product_id": product_id, "quantity": quantity})


async def set_quantity(cart: ServiceClient, session: WebSession, product_id: int,
                       quantity: int) -> None:
    """Set a cart line's quantity (0 removes it)."""
    await ask(cart, "PATCH", f"/cart/items/{product_id}", session, json={"quantity": quantity})


async def remove_from_cart(cart: ServiceClient, session: WebSession, product_id: int
                           ) -> None:
    await ask(cart, "DELETE", f"/cart/items/{product_id}", session)


async def empty_cart(cart: ServiceClient, session: WebSession) -> None:
    """Empty the cart once its order is paid. Failing here loses nothing that matters:
    the order is placed and paid, the customer can empty the cart by hand."""
    try:
        await ask(cart, "DELETE", "/cart", session)
    except (DependencyUnavailable, Refused) as exc:
        logger.warning("an order was paid, but its cart could not be emptied: %s", exc)


async def place_order(orders: ServiceClient, session: WebSession, items: list[dict[str, int]],
                      address: dict[str, str], idempotency_key: str) -> dict[str, Any]:
    """Place the order (step one of the checkout saga: its stock is reserved). The same
    key gives back the same order: a form sent twice never orders twice."""
    placed: dict[str, Any] = await ask(
        orders, "POST", "/orders", session, headers={"Idempotency-Key": idempotency_key},
        json={"items": items, "shipping_address": address})
    return placed


async def pay_order(orders: ServiceClient, session: WebSession, order_id: str,
                    card: dict[str, Any]) -> dict[str, Any]:
    """Pay the order by card (the saga's charge and commit). The card's number and CVV
    go to orders and payments in the body and nowhere else."""
    paid: dict[str, Any] = await ask(
        orders, "POST", f"/orders/{order_id}/payment", session,
        json={"payment_method": "credit_card", "payment_details": card})
    return paid


async def order_page(orders: ServiceClient, session: WebSession, *, limit: int, offset: int
                     ) -> dict[str, Any]:
    page: dict[str, Any] = await ask(orders, "GET", "/orders", session,
                                     params={"limit": limit, "offset": offset})
    return page


async def order(orders: ServiceClient, session: WebSession, order_id: str
                ) -> dict[str, Any] | None:
    """One of the session user's orders; None if they have no such order."""
    try:
        found: dict[str, Any] = await ask(orders, "GET", f"/orders/{order_id}", session)
    except Refused as refused:
        if refused.status in (404, 422):
            return None
        raise
    return found


async def register(identity: ServiceClient, name: str, email: str, password: str) -> None:
    """Create a customer account (identity checks the e-mail is free)."""
    await service.call(identity, "POST", "/users", {},
                       json={"name": name, "email": email, "password": password})


#: Calls that need no user (the catalog is public).
_ANONYMOUS: Final = WebSession(id="", csrf_token="")
