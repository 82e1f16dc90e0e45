"""The catalog: products (with their stock), categories and pictures; the admin's
product changes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Query, Request, Response, UploadFile

from kansoku.contracts.calls import Download, Json
from kansoku.kit.auth import AdminUser
from kansoku.kit.errors import Problem
from kansoku.kit.fields import DbId, Offset, Text
from kansoku.kit.flags import Faults
from kansoku.kit.i18n import _
from kansoku.kit.openapi import PROBLEM
from kansoku.services.gateway.api.common import ApiCaller
from kansoku.services.gateway.api.schemas import (
    Category,
    NewProduct,
    Product,
    ProductChange,
    ProductDetail,
    ProductPage,
)
from kansoku.services.gateway.faults import deliver_image_slowly
from kansoku.services.gateway.state import GatewayDep

router = APIRouter()

#: Pictures the public API answers with: bytes, or a problem.
PICTURE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}, "image/gif": {},
                      "image/svg+xml": {}}},
    304: {"description": "Not modified (If-None-Match)"}, 404: PROBLEM}


def passed_on(download: Download) -> Response:
    """A service's file answered as it came, with its content and caching headers."""
    return Response(download.content, status_code=download.status_code,
                    headers=download.headers)


@router.get("/products", response_model=ProductPage, tags=["catalog"])
async def products(
    gateway: GatewayDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[Offset, Query()] = 0,
    category: Annotated[Text | None, Query(max_length=64, description="Category slug")] = None,
    q: Annotated[Text | None, Query(max_length=100, description="Search words")] = None,
    sort: Annotated[Literal["id", "name", "price", "-price", "newest"], Query()] = "id",
) -> Json:
    """A page of products: filter by category, search, sort; `total` counts them all."""
    return await gateway.clients.catalog.products(limit=limit, offset=offset,
                                                  category=category, search=q, sort=sort)


@router.get("/products/{product_id}", response_model=ProductDetail, tags=["catalog"],
            responses={404: PROBLEM})
async def product(product_id: DbId, gateway: GatewayDep) -> Json:
    """One product, with the units available now and a stock status."""
    return await gateway.shop.product(product_id)


@router.post("/products", status_code=201, response_model=ProductDetail, tags=["admin"],
             responses={403: PROBLEM, 409: PROBLEM, 422: PROBLEM})
async def create_product(new: NewProduct, admin: AdminUser, caller: ApiCaller,
                         gateway: GatewayDep) -> Json:
    """Add a product with its starting stock (admin)."""
    return await gateway.shop.create_product(
        caller, new.model_dump(mode="json", exclude={"inventory"}), new.inventory)


@router.put("/products/{product_id}", response_model=Product, tags=["admin"],
            responses={403: PROBLEM, 404: PROBLEM, 409: PROBLEM, 422: PROBLEM})
async def replace_product(product_id: DbId, change: ProductChange, admin: AdminUser,
                          caller: ApiCaller, gateway: GatewayDep) -> Json:
    """Replace a product's details (admin)."""
    return await gateway.clients.catalog.replace_product(
        caller, product_id, change.model_dump(mode="json", exclude_unset=True))


@router.delete("/products/{product_id}", status_code=204, tags=["admin"],
               responses={403: PROBLEM, 404: PROBLEM})
async def delete_product(product_id: DbId, admin: AdminUser, caller: ApiCaller,
                         gateway: GatewayDep) -> None:
    """Remove a product (admin)."""
    await gateway.clients.catalog.delete_product(caller, product_id)


@router.get("/products/{product_id}/image", tags=["catalog"], response_class=Response,
            responses=PICTURE)
async def product_image(product_id: DbId, request: Request, faults: Faults,
                        gateway: GatewayDep) -> Response:
    """The product's image: an admin's upload, or its generated picture (SVG). The `v`
    in `image_url` only tells caches that the image changed."""
    await deliver_image_slowly(faults)
    return passed_on(await gateway.clients.catalog.image(
        product_id, if_none_match=request.headers.get("if-none-match")))


@router.get("/products/{product_id}/thumbnail", tags=["catalog"], response_class=Response,
            responses=PICTURE)
async def product_thumbnail(product_id: DbId, request: Request, faults: Faults,
                            gateway: GatewayDep) -> Response:
    """The small version of the image; 404 `thumbnail-pending` (with Retry-After) in the
    seconds after an upload, while the worker makes it."""
    await deliver_image_slowly(faults)
    return passed_on(await gateway.clients.catalog.thumbnail(
        product_id, if_none_match=request.headers.get("if-none-match")))


@router.post("/products/{product_id}/image", response_model=Product, tags=["admin"],
             responses={403: PROBLEM, 404: PROBLEM, 413: PROBLEM, 422: PROBLEM})
async def upload_product_image(
    product_id: DbId, admin: AdminUser, caller: ApiCaller, gateway: GatewayDep,
    image: Annotated[UploadFile, File(description="A PNG, JPEG, WebP or GIF image")],
) -> Json:
    """Upload the product's image as the multipart form field `image` (admin), e.g.
    `curl -F image=@photo.jpg`. The worker makes its thumbnail a moment later."""
    limit = gateway.settings.max_image_bytes
    # One byte more than allowed is enough for the catalog to say it is too large.
    data = await image.read(limit + 1)
    if len(data) > limit:
        raise Problem(413, "image-too-large",
                      _("The image is larger than {kib} KiB: send a smaller file.").format(
                          kib=f"{limit // 1024:,}"))
    return await gateway.clients.catalog.upload_image(
        caller, product_id, data, image.content_type or "application/octet-stream")


@router.get("/categories", response_model=list[Category], tags=["catalog"])
async def categories(gateway: GatewayDep) -> list[Json]:
    """Every category."""
    return await gateway.clients.catalog.categories()
