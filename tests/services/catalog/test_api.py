"""The catalog on a real PostgreSQL, migrated and seeded the way `kansoku migrate` does."""

from __future__ import annotations

from decimal import Decimal

import asyncpg
import httpx

from kansoku.services.catalog import demo
from tests.services.catalog.conftest import ADMIN, TOKENS


def test_demo_catalog_has_200_products_in_8_categories() -> None:
    categories, products = demo.demo_catalog()
    assert len(categories) == 8
    assert len(products) == 200
    assert len({product.sku for product in products}) == 200
    assert all(isinstance(product.price, Decimal) and product.price > 0 for product in products)


async def test_list_pages_through_products(catalog: httpx.AsyncClient) -> None:
    first = (await catalog.get("/products", params={"limit": 5})).json()
    second = (await catalog.get("/products", params={"limit": 5, "offset": 5})).json()
    assert first["total"] == 200
    assert len(first["items"]) == 5
    assert {p["id"] for p in first["items"]}.isdisjoint({p["id"] for p in second["items"]})
    product = first["items"][0]
    assert product["name"] == "Orion Refractor"
    assert product["price"] == "192.99"  # Decimal as a string, never a float
    assert product["category"]["slug"] == "telescopes"


async def test_filter_by_category(catalog: httpx.AsyncClient) -> None:
    page = (await catalog.get("/products", params={"category": "books", "limit": 100})).json()
    assert page["total"] == 25
    assert {p["category"]["slug"] for p in page["items"]} == {"books"}


async def test_product_detail_and_missing_product(catalog: httpx.AsyncClient) -> None:
    found = await catalog.get("/products/1")
    missing = await catalog.get("/products/99999")
    assert found.status_code == 200 and found.json()["id"] == 1
    assert missing.status_code == 404
    assert missing.json()["detail"] == "There is no product with id 99999."


async def test_bad_paging_names_the_field(catalog: httpx.AsyncClient) -> None:
    response = await catalog.get("/products", params={"limit": 1000})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "limit"


async def test_seeded_ids_leave_the_sequences_usable(postgres_url: str,
                                                   catalog: httpx.AsyncClient) -> None:
    """Rows added after the demo data get fresh ids, not a duplicate-key error."""
    connection = await asyncpg.connect(postgres_url)
    try:
        await connection.execute("SET search_path TO catalog")
        new_category = await connection.fetchval(
            "INSERT INTO categories (slug, name) VALUES ('gifts', 'Gifts') RETURNING id")
        new_product = await connection.fetchval(
            "INSERT INTO products (sku, name, price, category_id) "
            "VALUES ('GIF-1', 'Gift Card', 25, $1) RETURNING id", new_category)
        await connection.execute("DELETE FROM products WHERE id = $1", new_product)
        await connection.execute("DELETE FROM categories WHERE id = $1", new_category)
    finally:
        await connection.close()
    assert new_category > 8 and new_product > 200


async def test_categories(catalog: httpx.AsyncClient) -> None:
    categories = (await catalog.get("/categories")).json()
    assert len(categories) == 8
    assert [c["name"] for c in categories] == sorted(c["name"] for c in categories)


async def test_ready_checks_postgresql(catalog: httpx.AsyncClient) -> None:
    # (NATS is not connected here: the app runs without its lifespan in these tests.)
    ready = await catalog.get("/health/ready")
    assert ready.json()["checks"]["postgresql"]["status"] == "up"


async def test_admins_create_replace_and_delete_products(catalog: httpx.AsyncClient) -> None:
    new = {"name": "Premium Laptop", "description": "For professionals", "price": "1299.99",
           "currency": "USD"}
    refused = await catalog.post("/products", json=new, headers=TOKENS.headers())
    created = await catalog.post("/products", json=new, headers=ADMIN)
    assert refused.status_code == 403
    assert created.status_code == 201, created.text
    product = created.json()
    assert product["price"] == "1299.99"
    assert product["category"]["slug"] == "uncategorized"
    assert product["sku"].startswith("KS-")

    replaced = await catalog.put(f"/products/{product['id']}", headers=ADMIN, json={
        **new, "price": "999.00", "category": "accessories", "sku": product["sku"]})
    assert replaced.status_code == 200
    assert replaced.json()["price"] == "999.00"
    assert replaced.json()["category"]["slug"] == "accessories"

    unknown = await catalog.post("/products", headers=ADMIN, json={**new, "category": "nope"})
    assert unknown.status_code == 422 and unknown.json()["field"] == "category"
    assert "telescopes" in unknown.json()["detail"]
    duplicate = await catalog.post("/products", headers=ADMIN,
                                   json={**new, "sku": product["sku"]})
    assert duplicate.status_code == 409
    free = await catalog.post("/products", headers=ADMIN, json={**new, "price": "-1"})
    assert free.status_code == 422 and free.json()["errors"][0]["field"] == "price"

    assert (await catalog.delete(f"/products/{product['id']}", headers=ADMIN)
            ).status_code == 204
    assert (await catalog.get(f"/products/{product['id']}")).status_code == 404
    assert (await catalog.delete(f"/products/{product['id']}", headers=ADMIN)
            ).status_code == 404


async def test_search_and_sort(catalog: httpx.AsyncClient) -> None:
    found = (await catalog.get("/products", params={"q": "dobsonian", "sort": "price"})).json()
    assert found["total"] == 5
    prices = [float(p["price"]) for p in found["items"]]
    assert prices == sorted(prices)
    literal = (await catalog.get("/products", params={"q": "100%"})).json()
    assert literal["total"] == 0, "% is searched for literally, not as a wildcard"


async def test_changes_are_visible_at_once_despite_the_cache(catalog: httpx.AsyncClient
                                                             ) -> None:
    new = {"name": "Cached Lens", "price": "10.00", "currency": "USD"}
    product = (await catalog.post("/products", json=new, headers=ADMIN)).json()
    assert (await catalog.get(f"/products/{product['id']}")).json()["price"] == "10.00"
    await catalog.put(f"/products/{product['id']}", headers=ADMIN,
                      json={**new, "price": "12.00"})
    assert (await catalog.get(f"/products/{product['id']}")).json()["price"] == "12.00"
    await catalog.delete(f"/products/{product['id']}", headers=ADMIN)
    assert (await catalog.get(f"/products/{product['id']}")).status_code == 404
