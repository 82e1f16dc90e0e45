"""What the gateway knows of the shop: one read model for the public API and the pages.

Each service owns one piece — the catalog its products, inventory their stock, the cart
its lines, orders the sales — but an answer often needs pieces of several: a product
with its stock, a cart priced at today's prices, the admin's product list with stock
levels, the dashboard. `Shop` puts them together, once, for both the public API
(`api/`) and the web pages (`web/`).

A part whose service is away is left out and said so rather than failing the whole: a
product page without its stock badge beats no page. Everything else follows the
clients' convention (`clients.py`): data, `Refused`, or `DependencyUnavailable`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from kansoku.contracts.calls import Caller, Json, Refused
from kansoku.kit import i18n
from kansoku.kit.errors import DependencyUnavailable
from kansoku.kit.i18n import _
from kansoku.services.gateway.clients import Clients, RecentFailures

logger = logging.getLogger(__name__)

#: How long the gateway keeps the list of categories (they change only with a release
#: of the demo data): one call to the catalog fewer for most pages.
CATEGORIES_SECONDS: Final = 300.0
#: What the stock of a product is when inventory did not say.
UNKNOWN_STOCK: Final = "unknown"


def with_stock(product: Json, level: Json | None) -> Json:
    """The product with `stock` (units available now, None if unknown), `stock_status`
    and `low_stock_threshold`."""
    if level is None:
        return {**product, "stock": None, "stock_status": UNKNOWN_STOCK}
    return {**product, "stock": level["available"], "stock_status": level["status"],
            "low_stock_threshold": level.get("low_stock_threshold")}


@dataclass(frozen=True)
class PricedLine:
    """A cart line at today's price."""

    product_id: int
    name: str
    unit_price: Decimal
    quantity: int
    line_total: Decimal
    thumbnail_url: str


@dataclass(frozen=True)
class PricedCart:
    """A cart at today's prices; `currency` is None while it is empty."""

    items: list[PricedLine]
    total: Decimal
    currency: str | None

    @property
    def count(self) -> int:
        """Units in the cart, all lines together."""
        return sum(item.quantity for item in self.items)


@dataclass
class Dashboard:
    """What the admin dashboard shows. A part whose service did not answer is None,
    and `missing` says so in words; the rest of the page is still shown."""

    sales: Json | None = None
    low_stock: Json | None = None
    dead_letters: list[Json] | None = None
    failures: RecentFailures | None = None
    missing: list[str] = dataclasses.field(default_factory=list)


class CategoryCache:
    """The catalog's categories, kept for `seconds` in this process, in each language
    (the catalog names them in the reader's)."""

    def __init__(self, clients: Clients, *, seconds: float = CATEGORIES_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._clients = clients
        self._seconds = seconds
        self._clock = clock
        self._kept: dict[i18n.Language, tuple[list[Json], float]] = {}
        self._lock = asyncio.Lock()

    async def get(self) -> list[Json]:
        language = i18n.current_language()
        categories, until = self._kept.get(language, ([], float("-inf")))
        if self._clock() < until:
            return categories
        async with self._lock:
            categories, until = self._kept.get(language, ([], float("-inf")))
            if self._clock() >= until:
                categories = await self._clients.catalog.categories()
                self._kept[language] = (categories, self._clock() + self._seconds)
        return categories


class Shop:
    """The read model: answers that take more than one service."""

    def __init__(self, clients: Clients, categories: CategoryCache | None = None) -> None:
        self.clients = clients
        self.categories = categories or CategoryCache(clients)

    # --- products ---------------------------------------------------------------------

    async def stock_levels(self, product_ids: list[int]) -> dict[int, Json]:
        """Stock of these products by id. Inventory away (or refusing): none known."""
        if not product_ids:
            return {}
        try:
            return await self.clients.inventory.stock_levels(product_ids)
        except (DependencyUnavailable, Refused) as exc:
            logger.warning("stock of %d products unknown: %s", len(product_ids), exc)
            return {}

    async def product(self, product_id: int) -> Json:
        """One product with its stock (see `with_stock`); `Refused` 404 when there is no
        such product. Catalog and inventory are asked at once."""
        found, levels = await asyncio.gather(self.clients.catalog.product(product_id),
                                             self.stock_levels([product_id]))
        return with_stock(found, levels.get(product_id))

    async def browse(self, *, limit: int, offset: int = 0, category: str | None = None,
                     search: str | None = None, sort: str | None = None) -> Json:
        """A page of products, each with its stock, and how many match in all."""
        page = await self.clients.catalog.products(limit=limit, offset=offset,
                                                   category=category, search=search,
                                                   sort=sort)
        levels = await self.stock_levels([product["id"] for product in page["items"]])
        return {**page, "items": [with_stock(product, levels.get(product["id"]))
                                  for product in page["items"]]}

    async def create_product(self, caller: Caller, product: Json, units: int) -> Json:
        """Create the product in the catalog, then its starting stock in inventory; the
        product with its stock. If the stock cannot be set, the product is removed
        again: no product half-created. `Refused` when the catalog says no."""
        created = await self.clients.catalog.create_product(caller, product)
        try:
            level = await self.clients.inventory.adjust(caller, created["id"], units,
                                                        "initial stock")
        except (DependencyUnavailable, Refused) as exc:
            await self.clients.catalog.delete_product(caller, created["id"])
            if isinstance(exc, Refused):
                raise DependencyUnavailable("inventory",
                                            f"it answered HTTP {exc.status}") from exc
            raise
        return with_stock(created, level)

    # --- the cart -----------------------------------------------------------------------

    async def priced_cart(self, caller: Caller) -> PricedCart:
        """The caller's cart, each line with the product's name, picture and today's
        price, and the total. A line whose product left the catalog is not shown."""
        lines = await self.clients.cart.lines(caller)
        products = await self.clients.catalog.products_by_id(
            [line["product_id"] for line in lines])
        items, total = [], Decimal("0")
        for line in lines:
            found = products.get(line["product_id"])
            if found is None:
                continue
            price = Decimal(found["price"])
            items.append(PricedLine(
                product_id=found["id"], name=found["name"], unit_price=price,
                quantity=line["quantity"], line_total=price * line["quantity"],
                thumbnail_url=found.get("thumbnail_url") or found["image_url"]))
            total += price * line["quantity"]
        currency = next(iter(products.values()))["currency"] if products else None
        return PricedCart(items, total, currency)

    async def cart_quantity(self, caller: Caller, product_id: int) -> int:
        """How many of a product the caller's cart holds already."""
        lines = await self.clients.cart.lines(caller)
        return sum(line["quantity"] for line in lines if line["product_id"] == product_id)

    async def add_to_cart(self, caller: Caller, product_id: int, quantity: int
                          ) -> PricedCart:
        """Add units of a product that exists (`Refused` 404 if it does not); the cart
        after."""
        await self.clients.catalog.product(product_id)
        await self.clients.cart.add(caller, product_id, quantity)
        return await self.priced_cart(caller)

    async def empty_cart(self, caller: Caller) -> None:
        """Empty the cart once its order is paid. Failing here loses nothing that
        matters: the order is placed and paid, the customer can empty it by hand."""
        try:
            await self.clients.cart.empty(caller)
        except (DependencyUnavailable, Refused) as exc:
            logger.warning("an order was paid, but its cart could not be emptied: %s", exc)

    # --- the back office ----------------------------------------------------------------

    async def products_with_stock(self, *, limit: int, offset: int, search: str | None,
                                  category: str | None) -> Json:
        """A page of the catalog, newest first, for the admin's product list: each
        product with its stock level (`stock`: None when inventory does not answer)."""
        page = await self.clients.catalog.products(
            limit=limit, offset=offset, search=search or None, category=category or None,
            sort="newest")
        stock = await self.stock_levels([product["id"] for product in page["items"]])
        return {**page, "items": [{**product, "stock": stock.get(product["id"])}
                                  for product in page["items"]]}

    async def stock_overview(self, caller: Caller, *, limit: int, offset: int,
                             low_only: bool) -> Json:
        """A page of stock levels, each with its product (None: no longer in the
        catalog)."""
        page = await self.clients.inventory.overview(caller, limit=limit, offset=offset,
                                                     low_only=low_only)
        products = await self.clients.catalog.products_by_id(
            [row["product_id"] for row in page["items"]])
        return {**page, "items": [{**row, "product": products.get(row["product_id"])}
                                  for row in page["items"]]}

    async def dashboard(self, caller: Caller) -> Dashboard:
        """Gather the dashboard's parts at once: today's orders and revenue, products
        low on stock, dead letters, and the recent failed traces."""
        sales, low, dead, failures = await asyncio.gather(
            self.clients.orders.sales_summary(caller),
            self.stock_overview(caller, limit=10, offset=0, low_only=True),
            self.clients.worker.dead_letters(caller, limit=100),
            self.clients.explorer.recent_failures(),
            return_exceptions=True)
        board = Dashboard(failures=failures if isinstance(failures, RecentFailures) else None)
        parts: tuple[tuple[str, Any, str], ...] = (
            ("sales", sales, _("Today's orders cannot be shown right now: {reason}")),
            ("low_stock", low, _("Low-stock products cannot be shown right now: {reason}")),
            ("dead_letters", dead, _("Dead letters cannot be shown right now: {reason}")))
        for name, part, missing in parts:
            if isinstance(part, DependencyUnavailable | Refused):
                logger.warning("the dashboard shows no %s: %s", name, part)
                board.missing.append(missing.format(reason=part.detail))
            elif isinstance(part, BaseException):
                raise part
            else:
                setattr(board, name, part)
        return board
