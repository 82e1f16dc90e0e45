"""The catalog's logic: what the routes ask for, in the shop's words."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from opentelemetry import metrics, trace
from sqlalchemy.ext.asyncio import AsyncSession

from kansoku.kit import semconv
from kansoku.kit.cache import Cache
from kansoku.kit.errors import Problem
from kansoku.kit.flags import FaultFlags
from kansoku.kit.i18n import _
from kansoku.services.catalog import images, store
from kansoku.services.catalog.models import Category, Product, ProductImage
from kansoku.services.catalog.schemas import CategoryOut, ProductIn, ProductOut, ProductPage

_meter = metrics.get_meter("kansoku.catalog")
_products_listed = _meter.create_counter(
    semconv.METRIC_CATALOG_PRODUCTS_LISTED, unit="{product}",
    description="Products returned by catalog listings",
)


_views = _meter.create_counter(semconv.METRIC_PRODUCT_VIEWS, unit="{view}",
                               description="Product detail reads")
_searches = _meter.create_counter(semconv.METRIC_SEARCHES, unit="{search}",
                                  description="Product searches, by whether they found any")
_uploads = _meter.create_counter(semconv.METRIC_IMAGES_UPLOADED, unit="{image}",
                                 description="Product images uploaded")

#: The event an upload writes to the outbox; the worker makes the thumbnail from it.
IMAGE_UPLOADED = "product.image_uploaded"
#: Thumbnails are small: at most this many bytes and pixels.
MAX_THUMBNAIL_BYTES = 1024 * 1024
MAX_THUMBNAIL_PIXELS = 1024 * 1024


def _cache_key(kind: str, **params: Any) -> str:
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:24]
    return f"{kind}:{digest}"


#: How much longer the product list statement takes with catalogSlowQuery on.
SLOW_QUERY_SECONDS = 2.0


async def browse_products(
    session: AsyncSession, cache: Cache, *, limit: int, offset: int, category: str | None,
    search: str | None = None, sort: str = "id", ids: list[int] | None = None,
    faults: FaultFlags | None = None,
) -> ProductPage:
    """A page of products, cached. With catalogSlowQuery or catalogNPlusOne on, the
    page is loaded from the database on every request, the faulty way."""
    slow = faults.active("catalogSlowQuery") if faults else None
    n_plus_one = faults.active("catalogNPlusOne") if faults else None
    filters: dict[str, Any] = {"limit": limit, "offset": offset, "category": category,
                               "search": search, "sort": sort, "ids": ids}

    async def load() -> dict[str, Any]:
        if n_plus_one:
            products = await store.list_products_one_by_one(session, **filters)
        else:
            products = await store.list_products(
                session, **filters, delay_seconds=SLOW_QUERY_SECONDS if slow else 0.0)
        total = await store.count_products(session, category=category, search=search,
                                           ids=ids)
        return ProductPage(items=[ProductOut.model_validate(product) for product in products],
                           total=total, limit=limit, offset=offset).model_dump(mode="json")

    if slow or n_plus_one:
        # A cached page would hide the fault after the first request.
        for fault in (slow, n_plus_one):
            if fault:
                fault.mark()
        page = ProductPage.model_validate(await load())
    else:
        page = ProductPage.model_validate(
            await cache.get_or_load(_cache_key("list", **filters), load))
    _products_listed.add(len(page.items))
    if search:
        _searches.add(1, {"found": bool(page.total)})
    return page


async def product_detail(session: AsyncSession, cache: Cache, product_id: int, *,
                         count_view: bool = True) -> ProductOut:
    async def load() -> dict[str, Any] | None:
        product = await store.get_product(session, product_id)
        return ProductOut.model_validate(product).model_dump(mode="json") if product else None

    found = await cache.get_or_load(f"product:{product_id}", load)
    if found is None:
        raise _not_found(product_id)
    if count_view:
        _views.add(1)
    return ProductOut.model_validate(found)


UNCATEGORIZED = ("uncategorized", "Uncategorized")


async def _category_for(session: AsyncSession, slug: str | None) -> Category:
    if slug is None:
        return await store.add_category(session, *UNCATEGORIZED)
    category = await store.category_by_slug(session, slug)
    if category is None:
        known = ", ".join(c.slug for c in await store.list_categories(session))
        raise Problem(422, "unknown-category",
                      _("There is no category '{slug}'. Choose one of: {known}.").format(
                          slug=slug, known=known), field="category")
    return category


def _japanese(text: str | None) -> str | None:
    """A Japanese text as stored: None when there is none (English is shown then)."""
    return text.strip() or None if text else None


async def create_product(session: AsyncSession, data: ProductIn) -> ProductOut:
    category = await _category_for(session, data.category)
    sku = data.sku or f"KS-{uuid.uuid4().hex[:8].upper()}"
    if await store.sku_taken(session, sku):
        raise Problem(409, "sku-taken",
                      _("Another product has the SKU {sku}.").format(sku=sku), field="sku")
    product = await store.add_product(session, Product(
        sku=sku, name=data.name.strip(), description=data.description, price=data.price,
        currency=data.currency, category=category, name_ja=_japanese(data.name_ja),
        description_ja=_japanese(data.description_ja)))
    return ProductOut.model_validate(product)


async def replace_product(session: AsyncSession, product_id: int, data: ProductIn
                          ) -> ProductOut:
    product = await store.get_product(session, product_id)
    if product is None:
        raise _not_found(product_id)
    if data.sku and await store.sku_taken(session, data.sku, other_than=product_id):
        raise Problem(409, "sku-taken",
                      _("Another product has the SKU {sku}.").format(sku=data.sku), field="sku")
    product.category = await _category_for(session, data.category)
    product.name, product.description = data.name.strip(), data.description
    product.name_ja = _japanese(data.name_ja)
    product.description_ja = _japanese(data.description_ja)
    product.price, product.currency = data.price, data.currency
    product.sku = data.sku or product.sku
    await session.flush()
    return ProductOut.model_validate(product)


async def delete_product(session: AsyncSession, product_id: int) -> None:
    if not await store.delete_product(session, product_id):
        raise _not_found(product_id)


async def categories(session: AsyncSession) -> list[CategoryOut]:
    rows = await store.list_categories(session)
    return [CategoryOut.model_validate(category) for category in rows]


def _not_found(product_id: int) -> Problem:
    return Problem(404, "product-not-found",
                   _("There is no product with id {product_id}.").format(product_id=product_id))


async def _checked(data: bytes, max_pixels: int, field: str) -> images.ImageFacts:
    try:
        # Decoding is CPU work: keep it off the event loop.
        return await asyncio.to_thread(images.inspect, data, max_pixels=max_pixels)
    except images.BadImage as exc:
        raise Problem(422, "bad-image", str(exc), field=field) from exc


async def upload_image(session: AsyncSession, product_id: int, data: bytes, *,
                       max_pixels: int) -> ProductOut:
    """Make `data` the product's image and announce it (`product.image_uploaded`, in the
    same transaction) so the worker makes its thumbnail."""
    trace.get_current_span().set_attribute(semconv.PRODUCT_ID, product_id)
    facts = await _checked(data, max_pixels, "image")
    product = await store.product_for_update(session, product_id)
    if product is None:
        raise _not_found(product_id)
    version = (product.image_version or 0) + 1
    await store.save_image(session, ProductImage(
        product_id=product_id, version=version, content_type=facts.content_type,
        width=facts.width, height=facts.height, data=data))
    product.image_version, product.thumbnail_ready = version, False
    await store.add_event(session, IMAGE_UPLOADED, {
        "product_id": product_id, "version": version, "content_type": facts.content_type,
        "width": facts.width, "height": facts.height, "size": len(data)})
    await session.flush()
    _uploads.add(1)
    return ProductOut.model_validate(product)


async def store_thumbnail(session: AsyncSession, product_id: int, version: int,
                          data: bytes) -> None:
    """Keep the worker's thumbnail of image `version`. 409 if a newer image has been
    uploaded since (its own thumbnail is on the way)."""
    facts = await _checked(data, MAX_THUMBNAIL_PIXELS, "thumbnail")
    if await store.save_thumbnail(session, product_id, version, data, facts.content_type):
        return
    if await store.get_product(session, product_id) is None:
        raise _not_found(product_id)
    raise Problem(409, "stale-thumbnail", f"Image version {version} of product "
                  f"{product_id} is no longer the current one; this thumbnail is not needed.")


@dataclass(frozen=True)
class Picture:
    """Bytes to send for an image request, and what identifies them for caches."""

    content_type: str
    data: bytes
    etag: str


async def picture(session: AsyncSession, cache: Cache, product_id: int, *,
                  thumbnail: bool, version: int | None = None) -> Picture:
    """The product's image or thumbnail: the upload, or the generated picture while
    there is none. `version` asks for one exact upload (404 if it is not current)."""
    product = await product_detail(session, cache, product_id, count_view=False)
    kind = "thumbnail" if thumbnail else "image"
    current = product.image_version or 0
    if version is not None and version != current:
        raise Problem(404, "image-version-gone", f"Image version {version} of product "
                      f"{product_id} is not the current one (that is {current}).")
    if product.image_version is None:
        svg = images.generated_picture(product.id, product.name, product.category.slug)
        digest = hashlib.sha256(svg).hexdigest()[:16]
        return Picture(images.SVG_TYPE, svg, f'"{product_id}-0-{digest}"')
    stored = await store.image_bytes(session, product_id, thumbnail=thumbnail)
    if stored is None or stored[0] != product.image_version:
        raise Problem(404, "thumbnail-pending", f"The thumbnail of product {product_id} is "
                      "still being made; try again in a moment.", headers={"Retry-After": "2"})
    stored_version, content_type, data = stored
    return Picture(content_type, data, f'"{product_id}-{stored_version}-{kind}"')
