"""The catalog's HTTP routes (internal: the gateway's public API fronts them)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from kansoku.kit.auth import AdminUser, Principal, allow
from kansoku.kit.db import DbSession
from kansoku.kit.errors import Problem
from kansoku.kit.fields import INT32_MAX, DbId, Offset, Text, id_list_pattern
from kansoku.kit.flags import Faults
from kansoku.kit.i18n import _
from kansoku.kit.openapi import PROBLEM
from kansoku.services.catalog import service
from kansoku.services.catalog.schemas import (
    CategoryOut,
    ProductIn,
    ProductOut,
    ProductPage,
    ProductSort,
)
from kansoku.services.catalog.service import MAX_THUMBNAIL_BYTES

#: Pictures may be cached a while; their URLs change with every upload anyway.
_PICTURE_CACHE_CONTROL = "public, max-age=300"
#: Images are only ever shown, never run: no script, even inside an SVG opened directly.
_PICTURE_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
                    "X-Content-Type-Options": "nosniff"}

#: How far past its own limit an upload may go before the request's body limit
#: (`kit.middleware`) stops it: `read_body` answers anything in between, naming the file.
UPLOAD_SLACK_BYTES = 64 * 1024

#: A picture, or why not (304: the caller's copy is current).
_PICTURE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/*": {}}}, 304: {"description": "Not modified (If-None-Match)"},
    404: PROBLEM}
#: An upload is the raw image as the body; refused when it is not one, or too large.
_UPLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {404: PROBLEM, 413: PROBLEM}
_RAW_IMAGE_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    media_type: {"schema": {"type": "string", "format": "binary"}}
    for media_type in ("image/png", "image/jpeg", "image/webp", "image/gif")}}}

#: The worker stores the thumbnails it makes; an admin may replace one.
WorkerOrAdmin = Annotated[Principal, allow(services=["worker"], admin=True)]

router = APIRouter(tags=["catalog"])


async def _invalidate_after_commit(request: Request, session: AsyncSession) -> None:
    """Drop cached reads once the change is committed: invalidating before the commit
    would let a read in between cache the old data again."""
    await session.commit()
    await request.app.state.cache.invalidate()


@router.get("/products")
async def list_products(
    session: DbSession,
    request: Request,
    faults: Faults,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[Offset, Query()] = 0,
    category: Annotated[Text | None, Query(max_length=64)] = None,
    q: Annotated[Text | None, Query(max_length=100, description="Words in name or text")] = None,
    sort: Annotated[ProductSort, Query()] = "id",
    ids: Annotated[str | None, Query(max_length=1100, pattern=id_list_pattern(100),
                                     description="Only these ids, comma-separated (at "
                                     "most 100)")] = None,
) -> ProductPage:
    """A page of products, optionally of one category (by slug), matching a search, or
    with the given ids (what carts and orders use to price their lines in one call)."""
    # The pattern took only ids, so each part is one.
    id_list = [int(part) for part in ids.split(",")] if ids else None
    page = await service.browse_products(session, request.app.state.cache, limit=limit,
                                         offset=offset, category=category, search=q,
                                         sort=sort, ids=id_list, faults=faults)
    return page.localized()


@router.get("/products/{product_id}", responses={404: PROBLEM})
async def get_product(product_id: DbId, session: DbSession, request: Request) -> ProductOut:
    """One product with its category (name and description in the language the request
    asks for with Accept-Language, when the product has them in it)."""
    return (await service.product_detail(session, request.app.state.cache, product_id)
            ).localized()


@router.post("/products", status_code=201, responses={409: PROBLEM})
async def create_product(data: ProductIn, admin: AdminUser, session: DbSession,
                         request: Request) -> ProductOut:
    """Add a product (admin)."""
    created = await service.create_product(session, data)
    await _invalidate_after_commit(request, session)
    return created


@router.put("/products/{product_id}", responses={404: PROBLEM, 409: PROBLEM})
async def replace_product(product_id: DbId, data: ProductIn, admin: AdminUser,
                          session: DbSession, request: Request) -> ProductOut:
    """Replace a product's details (admin)."""
    replaced = await service.replace_product(session, product_id, data)
    await _invalidate_after_commit(request, session)
    return replaced


@router.delete("/products/{product_id}", status_code=204, responses={404: PROBLEM})
async def delete_product(product_id: DbId, admin: AdminUser, session: DbSession,
                         request: Request) -> None:
    """Remove a product (admin)."""
    await service.delete_product(session, product_id)
    await _invalidate_after_commit(request, session)


@router.get("/categories")
async def list_categories(session: DbSession) -> list[CategoryOut]:
    """Every category, by name (in the language the request asks for)."""
    return [category.localized() for category in await service.categories(session)]


async def read_body(request: Request, limit: int, what: str) -> bytes:
    """The raw request body, refused with 413 as soon as it grows past `limit` bytes
    (a declared Content-Length over the limit is refused before reading anything)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(what, limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(what, limit)
    if not body:
        if what == "image":
            raise Problem(422, "validation-error", _("Send the image as the request body."),
                          field=what)
        # Only the worker sends thumbnails: a program reads this one.
        raise Problem(422, "validation-error", "Send the thumbnail as the request body.",
                      field=what)
    return bytes(body)


def _too_large(what: str, limit: int) -> Problem:
    kib = f"{limit // 1024:,}"
    if what == "image":
        return Problem(413, "image-too-large", _("The image is larger than {kib} KiB: send "
                                                 "a smaller file.").format(kib=kib))
    # Only the worker sends thumbnails: a program reads this one.
    return Problem(413, "thumbnail-too-large",
                   f"The thumbnail is larger than {kib} KiB: send a smaller file.")


async def _picture_response(request: Request, session: AsyncSession, product_id: int, *,
                            thumbnail: bool, version: int | None) -> Response:
    picture = await service.picture(session, request.app.state.cache, product_id,
                                    thumbnail=thumbnail, version=version)
    headers = {"ETag": picture.etag, "Cache-Control": _PICTURE_CACHE_CONTROL,
               **_PICTURE_HEADERS}
    if picture.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(picture.data, media_type=picture.content_type, headers=headers)


@router.get("/products/{product_id}/image", response_class=Response,
            responses=_PICTURE_RESPONSES)
async def get_image(product_id: DbId, session: DbSession, request: Request,
                    version: Annotated[int | None, Query(ge=0, le=INT32_MAX)] = None
                    ) -> Response:
    """The product's image: the uploaded one, or its generated picture (SVG). With
    `version`, exactly that upload or 404."""
    return await _picture_response(request, session, product_id, thumbnail=False,
                                   version=version)


@router.get("/products/{product_id}/thumbnail", response_class=Response,
            responses=_PICTURE_RESPONSES)
async def get_thumbnail(product_id: DbId, session: DbSession, request: Request,
                        version: Annotated[int | None, Query(ge=0, le=INT32_MAX)] = None
                        ) -> Response:
    """The small version of the image; 404 `thumbnail-pending` while the worker is
    making it."""
    return await _picture_response(request, session, product_id, thumbnail=True,
                                   version=version)


@router.put("/products/{product_id}/image", responses=_UPLOAD_RESPONSES,
            openapi_extra=_RAW_IMAGE_BODY)
async def upload_image(product_id: DbId, admin: AdminUser, session: DbSession,
                       request: Request) -> ProductOut:
    """Replace the product's image with the request body (PNG, JPEG, WebP or GIF) (admin).
    The worker makes the thumbnail afterwards."""
    settings = request.app.state.settings
    data = await read_body(request, settings.max_image_bytes, "image")
    uploaded = await service.upload_image(session, product_id, data,
                                          max_pixels=settings.max_image_pixels)
    await _invalidate_after_commit(request, session)
    return uploaded


@router.put("/products/{product_id}/thumbnail", status_code=204,
            responses={**_UPLOAD_RESPONSES, 409: PROBLEM}, openapi_extra=_RAW_IMAGE_BODY)
async def store_thumbnail(product_id: DbId, caller: WorkerOrAdmin, session: DbSession,
                          request: Request, version: Annotated[DbId, Query()]) -> None:
    """Keep the thumbnail of image `version` (the worker, with its service token)."""
    data = await read_body(request, MAX_THUMBNAIL_BYTES, "thumbnail")
    await service.store_thumbnail(session, product_id, version, data)
    await _invalidate_after_commit(request, session)
