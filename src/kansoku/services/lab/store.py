"""Every SQL statement of the lab, the problems and their fixed twins side by side.

The lab reads the shop's tables where their services keep them — `catalog.products`,
`catalog.categories`, `orders.orders`, `orders.order_items` — and never writes there.
Its own schema (`lab`, the connection's search path) holds one table, `favourites`,
for the constraint-violation scenario. The statements are written out as SQL, not
built with the ORM, so what a trace shows as `db.statement` is what you read here.

Functions take the request's session and return plain rows (dicts), so a problem and
its twin can be compared result for result.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

Row = dict[str, Any]

# --- counting what really reaches PostgreSQL --------------------------------------------


@dataclass
class QueryCount:
    """Statements executed on one connection while `counting_queries` was listening."""

    value: int = 0


@asynccontextmanager
async def counting_queries(session: AsyncSession, count: QueryCount) -> AsyncIterator[None]:
    """Add to `count` every statement the session's connection sends while the block
    runs.

    The count comes from SQLAlchemy's `before_cursor_execute` event on this request's
    own connection — the hook the SQLAlchemy instrumentation makes its spans from — so
    it counts what was executed, however it was issued, and nothing another request ran.
    """
    connection: Connection | None = (await session.connection()).sync_connection
    assert connection is not None, "a connection of this session, just checked out"

    def on_execute(*_: Any) -> None:
        count.value += 1

    event.listen(connection, "before_cursor_execute", on_execute)
    try:
        yield
    finally:
        event.remove(connection, "before_cursor_execute", on_execute)


def limit_statement_time(engine: AsyncEngine, seconds: float) -> None:
    """Set PostgreSQL's `statement_timeout` on every connection the engine opens.

    Set once per connection, when it is made, rather than per request: a `SET LOCAL`
    before each scenario would be one more statement in every count and trace.
    """
    milliseconds = max(1, round(seconds * 1000))

    def on_connect(dbapi_connection: Any, _: Any) -> None:
        # asyncpg's own connection, below SQLAlchemy: no cursor events, so neither
        # counted nor traced.
        dbapi_connection.run_async(
            lambda raw: raw.execute(f"SET statement_timeout = {milliseconds}"))

    event.listen(engine.sync_engine, "connect", on_connect)


async def _rows(session: AsyncSession, statement: str, **parameters: Any) -> list[Row]:
    result = await session.execute(text(statement), parameters)
    return [dict(row) for row in result.mappings()]


# --- N+1: products with their order counts ---------------------------------------------

_PRODUCTS = """
SELECT p.id, p.name, p.price, p.currency, c.slug AS category
FROM catalog.products AS p
JOIN catalog.categories AS c ON c.id = p.category_id
{where}
ORDER BY p.id
LIMIT :limit
"""
_IN_CATEGORY = "WHERE c.slug = :category"


def _products_statement(template: str, category: str | None) -> str:
    return template.format(where=_IN_CATEGORY if category is not None else "")


async def products_page(session: AsyncSession, *, limit: int, category: str | None
                        ) -> list[Row]:
    """The first `limit` products (of a category), by id."""
    return await _rows(session, _products_statement(_PRODUCTS, category), limit=limit,
                       category=category)


async def orders_of_product(session: AsyncSession, product_id: int) -> int:
    """How many orders contain the product: the query the N+1 runs once per product."""
    count = await session.scalar(
        text("SELECT count(DISTINCT order_id) FROM orders.order_items "
             "WHERE product_id = :product_id"),
        {"product_id": product_id})
    return int(count or 0)


_PRODUCTS_WITH_ORDER_COUNTS = """
WITH page AS (
    SELECT p.id, p.name, p.price, p.currency, c.slug AS category
    FROM catalog.products AS p
    JOIN catalog.categories AS c ON c.id = p.category_id
    {where}
    ORDER BY p.id
    LIMIT :limit
)
SELECT page.id, page.name, page.price, page.currency, page.category,
       count(DISTINCT items.order_id) AS order_count
FROM page
LEFT JOIN orders.order_items AS items ON items.product_id = page.id
GROUP BY page.id, page.name, page.price, page.currency, page.category
ORDER BY page.id
"""


async def products_with_order_counts(session: AsyncSession, *, limit: int,
                                     category: str | None) -> list[Row]:
    """The fix: the same page of products and their order counts in one statement —
    the page is chosen first, then only its products' order items are counted."""
    return await _rows(session, _products_statement(_PRODUCTS_WITH_ORDER_COUNTS, category),
                       limit=limit, category=category)


# --- slow query: a category's products, cheapest first ---------------------------------

_PAUSED = """
WITH pause AS MATERIALIZED (SELECT pg_sleep(:seconds))
SELECT p.id, p.name, p.price, p.currency, c.slug AS category
FROM pause
CROSS JOIN catalog.products AS p
JOIN catalog.categories AS c ON c.id = p.category_id
{where}
ORDER BY p.price, p.id
LIMIT :limit
"""


async def cheapest_products_paused(session: AsyncSession, *, seconds: float, limit: int,
                                   category: str | None) -> list[Row]:
    """The answer of `cheapest_products`, after PostgreSQL slept `seconds` inside the same
    statement: the stand-in for a query whose plan reads far more than it returns, so the
    statement's own span is the slow one."""
    return await _rows(session, _products_statement(_PAUSED, category), seconds=seconds,
                       limit=limit, category=category)


# The story: this query once joined each product's look-alikes and its bundle partners.
# Those features went, their join conditions with them, the tables stayed — and DISTINCT
# was added to hide the duplicates. Each of the category's products is now paired with
# every product twice over: 25 products of a 200-product catalog make a million rows to
# sort and fold back into 25.
_CARTESIAN = """
SELECT DISTINCT p.id, p.name, p.price, p.currency, c.slug AS category
FROM catalog.products AS p,
     catalog.categories AS c,
     catalog.products AS lookalike,
     catalog.products AS bundle_partner
WHERE p.category_id = c.id AND c.slug = :category
ORDER BY p.price, p.id
LIMIT :limit
"""


async def cheapest_products_cartesian(session: AsyncSession, *, limit: int, category: str
                                      ) -> list[Row]:
    """The same answer as `cheapest_products` for a category, from a cartesian product."""
    return await _rows(session, _CARTESIAN, limit=limit, category=category)


_CHEAPEST = """
SELECT p.id, p.name, p.price, p.currency, c.slug AS category
FROM catalog.products AS p
JOIN catalog.categories AS c ON c.id = p.category_id
{where}
ORDER BY p.price, p.id
LIMIT :limit
"""


async def cheapest_products(session: AsyncSession, *, limit: int, category: str | None
                            ) -> list[Row]:
    """The fix: each table once, joined on keys; the category found by its unique slug
    and its products by `products_category_id_idx`; at most `limit` rows."""
    return await _rows(session, _products_statement(_CHEAPEST, category), limit=limit,
                       category=category)


# --- database error: two intents, each broken one way ----------------------------------

async def order_summary_from_missing_table(session: AsyncSession, user_id: str
                                           ) -> list[Row]:
    """Reads a summary table a migration was meant to create and never did: PostgreSQL
    answers `relation "order_summaries" does not exist` (SQLSTATE 42P01)."""
    return await _rows(session, "SELECT currency, order_count, total_spent "
                                "FROM order_summaries WHERE user_id = :user_id",
                       user_id=user_id)


async def order_summary(session: AsyncSession, user_id: str) -> list[Row]:
    """The fix: the summary computed from the orders themselves (found by the indexed
    `orders.user_id`), paid orders per currency."""
    return await _rows(session, """
SELECT currency, count(*) AS order_count, sum(total) AS total_spent
FROM orders.orders
WHERE user_id = :user_id AND status = 'paid'
GROUP BY currency
ORDER BY currency
""", user_id=user_id)


async def first_category(session: AsyncSession) -> str | None:
    """The slug of the first category: the cartesian variant's when the caller names none."""
    found = await session.scalar(text("SELECT slug FROM catalog.categories ORDER BY id LIMIT 1"))
    return str(found) if found is not None else None


async def first_product_id(session: AsyncSession, category: str | None) -> int | None:
    """The product a favourite is saved for when the caller names none."""
    statement = ("SELECT p.id FROM catalog.products AS p "
                 "JOIN catalog.categories AS c ON c.id = p.category_id "
                 "WHERE c.slug = :category ORDER BY p.id LIMIT 1" if category is not None
                 else "SELECT id FROM catalog.products ORDER BY id LIMIT 1")
    found = await session.scalar(text(statement), {"category": category})
    return int(found) if found is not None else None


async def insert_favourite(session: AsyncSession, user_id: str, product_id: int) -> None:
    """A plain INSERT: a second one for the same (user, product) breaks the primary key
    (SQLSTATE 23505, unique violation)."""
    await session.execute(
        text("INSERT INTO favourites (user_id, product_id) VALUES (:user_id, :product_id)"),
        {"user_id": user_id, "product_id": product_id})


async def save_favourite(session: AsyncSession, user_id: str, product_id: int) -> None:
    """The fix: saving twice is saving once (`ON CONFLICT DO NOTHING`)."""
    await session.execute(
        text("INSERT INTO favourites (user_id, product_id) VALUES (:user_id, :product_id) "
             "ON CONFLICT (user_id, product_id) DO NOTHING"),
        {"user_id": user_id, "product_id": product_id})


async def favourites(session: AsyncSession, user_id: str, product_ids: Sequence[int]
                     ) -> list[Row]:
    """The user's favourites among `product_ids`, with when each was saved."""
    return await _rows(session, """
SELECT product_id, created_at AS saved_at
FROM favourites
WHERE user_id = :user_id AND product_id = ANY(:product_ids)
ORDER BY product_id
""", user_id=user_id, product_ids=list(product_ids))
