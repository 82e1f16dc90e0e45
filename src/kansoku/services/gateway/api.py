"""The gateway's public REST API (`/api/v1`); the web pages are in `pages.py`
(storefront) and `admin_pages.py` (admin), browser telemetry intake in `rum.py`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Header, Query, Request, UploadFile
from fastapi.responses import Response

from kansoku.kit.auth import AdminUser, CurrentUser, bearer_token
from kansoku.kit.errors import Problem
from kansoku.kit.flags import Faults
from kansoku.services.gateway import faults, service
from kansoku.services.gateway.faults import deliver_image_slowly
from kansoku.services.gateway.schemas import (
    Cart,
    CartLineIn,
    Category,
    Credentials,
    DeadLetter,
    FaultFlag,
    FlagChange,
    Mail,
    NewOrder,
    NewPayment,
    NewProduct,
    Notification,
    Order,
    OrderPage,
    Payment,
    Product,
    ProductChange,
    ProductDetail,
    ProductPage,
    ProfileChange,
    QuantityChange,
    RefreshRequest,
    Registration,
    ReportSummary,
    SalesSummary,
    StockChange,
    StockLevel,
    StockPage,
    Tokens,
    User,
)


async def limit_requests(request: Request) -> None:
    """Count the request against its address's and (if logged in) its user's limits."""
    settings = request.app.state.settings
    limits = request.app.state.limits
    address = request.client.host if request.client else "unknown"
    await limits.check("address", address, settings.rate_limit_per_ip)
    token = bearer_token(request)
    if token:
        try:
            user = await request.app.state.tokens.verify(token)
        except Problem:
            return  # the route's own check answers 401
        await limits.check("user", user.user_id, settings.rate_limit_per_user)


public = APIRouter(prefix="/api/v1", dependencies=[Depends(limit_requests)],
                   responses={429: {"content": {"application/problem+json": {}}}})

#: Problems every route can answer, for the OpenAPI document.
PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}


# --- accounts -------------------------------------------------------------------------

@public.post("/users", status_code=201, response_model=User, tags=["accounts"],
             responses={409: PROBLEM, 422: PROBLEM})
async def register(registration: Registration, request: Request) -> Response:
    """Create a customer account."""
    return await service.relay(request.app.state.identity, "POST", "/users", request,
                               body=registration)


@public.post("/auth/login", response_model=Tokens, tags=["accounts"],
             responses={401: PROBLEM})
async def login(credentials: Credentials, request: Request) -> Response:
    """Exchange e-mail and password for an access token (send it as
    `Authorization: Bearer …`) and a refresh token."""
    return await service.relay(request.app.state.identity, "POST", "/auth/login", request,
                               body=credentials)


@public.post("/auth/refresh", response_model=Tokens, tags=["accounts"],
             responses={401: PROBLEM})
async def refresh(body: RefreshRequest, request: Request) -> Response:
    """Exchange a refresh token (each works once) for new tokens."""
    return await service.relay(request.app.state.identity, "POST", "/auth/refresh", request,
                               body=body)


@public.get("/users/me", response_model=User, tags=["accounts"], responses={401: PROBLEM})
async def me(user: CurrentUser, request: Request) -> Response:
    """Your profile."""
    return await service.relay(request.app.state.identity, "GET", "/users/me", request)


@public.patch("/users/me", response_model=User, tags=["accounts"],
              responses={401: PROBLEM, 422: PROBLEM})
async def change_me(change: ProfileChange, user: CurrentUser, request: Request
                    ) -> Response:
    """Change your name or password (a new password logs out your other sessions)."""
    return await service.relay(request.app.state.identity, "PATCH", "/users/me", request,
                               body=change)


# --- catalog --------------------------------------------------------------------------

@public.get("/products", response_model=ProductPage, tags=["catalog"])
async def products(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
    category: Annotated[str | None, Query(max_length=64, description="Category slug")] = None,
    q: Annotated[str | None, Query(max_length=100, description="Search words")] = None,
    sort: Annotated[Literal["id", "name", "price", "-price", "newest"], Query()] = "id",
) -> Response:
    """A page of products: filter by category, search, sort; `total` counts them all."""
    return await service.relay(
        request.app.state.catalog, "GET", "/products", request,
        params={"limit": limit, "offset": offset, "category": category, "q": q, "sort": sort})


@public.get("/products/{product_id}", response_model=ProductDetail, tags=["catalog"],
            responses={404: PROBLEM})
async def product(product_id: int, request: Request) -> Response:
    """One product, with the units available now and a stock status."""
    return await service.product_with_stock(request.app.state.catalog,
                                            request.app.state.inventory, product_id)


@public.post("/products", status_code=201, response_model=ProductDetail,
             tags=["admin"], responses={403: PROBLEM, 409: PROBLEM, 422: PROBLEM})
async def create_product(new: NewProduct, admin: AdminUser, request: Request) -> Response:
    """Add a product with its starting stock (admin)."""
    return await service.create_product(request.app.state.catalog,
                                        request.app.state.inventory, request, new)


@public.put("/products/{product_id}", response_model=Product, tags=["admin"],
            responses={403: PROBLEM, 404: PROBLEM, 422: PROBLEM})
async def replace_product(product_id: int, change: ProductChange, admin: AdminUser,
                          request: Request) -> Response:
    """Replace a product's details (admin)."""
    return await service.relay(request.app.state.catalog, "PUT", f"/products/{product_id}",
                               request, body=change)


@public.delete("/products/{product_id}", status_code=204, tags=["admin"],
               responses={403: PROBLEM, 404: PROBLEM})
async def delete_product(product_id: int, admin: AdminUser, request: Request) -> Response:
    """Remove a product (admin)."""
    return await service.relay(request.app.state.catalog, "DELETE",
                               f"/products/{product_id}", request)


#: Pictures the public API answers with: bytes, or a problem.
PICTURE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}, "image/gif": {},
                      "image/svg+xml": {}}},
    304: {"description": "Not modified (If-None-Match)"}, 404: PROBLEM}


@public.get("/products/{product_id}/image", tags=["catalog"], response_class=Response,
            responses=PICTURE)
async def product_image(product_id: int, request: Request, faults: Faults) -> Response:
    """The product's image: an admin's upload, or its generated picture (SVG). The `v`
    in `image_url` only tells caches that the image changed."""
    await deliver_image_slowly(faults)
    return await service.pass_through(request.app.state.catalog, request,
                                      f"/products/{product_id}/image")


@public.get("/products/{product_id}/thumbnail", tags=["catalog"], response_class=Response,
            responses=PICTURE)
async def product_thumbnail(product_id: int, request: Request, faults: Faults) -> Response:
    """The small version of the image; 404 `thumbnail-pending` (with Retry-After) in the
    seconds after an upload, while the worker makes it."""
    await deliver_image_slowly(faults)
    return await service.pass_through(request.app.state.catalog, request,
                                      f"/products/{product_id}/thumbnail")


@public.post("/products/{product_id}/image", response_model=Product, tags=["admin"],
             responses={403: PROBLEM, 404: PROBLEM, 413: PROBLEM, 422: PROBLEM})
async def upload_product_image(
    product_id: int, admin: AdminUser, request: Request,
    image: Annotated[UploadFile, File(description="A PNG, JPEG, WebP or GIF image")],
) -> Response:
    """Upload the product's image as the multipart form field `image` (admin), e.g.
    `curl -F image=@photo.jpg`. The worker makes its thumbnail a moment later."""
    limit = request.app.state.settings.max_image_bytes
    # One byte more than allowed is enough for the catalog to say it is too large.
    data = await image.read(limit + 1)
    if len(data) > limit:
        raise Problem(413, "image-too-large",
                      f"The image is larger than {limit // 1024:,} KiB: send a smaller file.")
    return await service.upload_picture(request.app.state.catalog, request, product_id, data,
                                        image.content_type or "application/octet-stream")


@public.get("/inventory", response_model=StockPage, tags=["admin"], responses={403: PROBLEM})
async def inventory(
    admin: AdminUser,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    low_only: bool = False,
) -> Response:
    """Stock levels, reserved units and the low-stock flag of every product (admin)."""
    return await service.relay(request.app.state.inventory, "GET", "/inventory", request,
                               params={"limit": limit, "offset": offset, "low_only": low_only})


@public.post("/inventory/{product_id}/adjust", response_model=StockLevel, tags=["admin"],
             responses={403: PROBLEM, 409: PROBLEM})
async def adjust_stock(product_id: int, change: StockChange, admin: AdminUser,
                       request: Request) -> Response:
    """Restock or remove units, with a reason (admin)."""
    return await service.relay(request.app.state.inventory, "POST",
                               f"/inventory/{product_id}/adjust", request, body=change)


@public.get("/categories", response_model=list[Category], tags=["catalog"])
async def categories(request: Request) -> Response:
    """Every category."""
    return await service.relay(request.app.state.catalog, "GET", "/categories", request)


# --- cart -----------------------------------------------------------------------------

@public.get("/cart", response_model=Cart, tags=["shopping"], responses={401: PROBLEM})
async def get_cart(user: CurrentUser, request: Request) -> Response:
    """Your cart, priced."""
    return await service.priced_cart(request.app.state.cart, request.app.state.catalog,
                                     request)


@public.post("/cart/items", response_model=Cart, tags=["shopping"],
             responses={401: PROBLEM, 404: PROBLEM, 422: PROBLEM})
async def add_to_cart(line: CartLineIn, user: CurrentUser, request: Request) -> Response:
    """Add units of a product to your cart."""
    return await service.add_to_cart(request.app.state.cart, request.app.state.catalog,
                                     request, line)


@public.patch("/cart/items/{product_id}", response_model=Cart, tags=["shopping"],
              responses={401: PROBLEM, 404: PROBLEM})
async def change_cart_line(product_id: int, change: QuantityChange, user: CurrentUser,
                           request: Request) -> Response:
    """Set how many of a product your cart holds (0 removes it)."""
    answer = await service.relay(request.app.state.cart, "PATCH", f"/cart/items/{product_id}",
                                 request, body=change)
    if answer.status_code != 200:
        return answer
    return await service.priced_cart(request.app.state.cart, request.app.state.catalog,
                                     request)


@public.delete("/cart/items/{product_id}", response_model=Cart, tags=["shopping"],
               responses={401: PROBLEM, 404: PROBLEM})
async def remove_from_cart(product_id: int, user: CurrentUser, request: Request) -> Response:
    """Remove a product from your cart."""
    answer = await service.relay(request.app.state.cart, "DELETE",
                                 f"/cart/items/{product_id}", request)
    if answer.status_code != 200:
        return answer
    return await service.priced_cart(request.app.state.cart, request.app.state.catalog,
                                     request)


# --- orders and payments --------------------------------------------------------------

@public.post("/orders", status_code=201, response_model=Order, tags=["shopping"],
             responses={401: PROBLEM, 409: PROBLEM, 422: PROBLEM, 503: PROBLEM})
async def place_order(
    order: NewOrder, user: CurrentUser, request: Request,
    idempotency_key: Annotated[str | None, Header(
        max_length=100, description="Send the same key again and get the same order back, "
        "never a second one")] = None,
) -> Response:
    """Place an order (the given items, or your cart) and reserve its stock; then pay it
    with `POST /api/v1/payments`. 409 when something is out of stock."""
    return await service.relay(request.app.state.orders, "POST", "/orders", request,
                               body=order)


@public.get("/orders", response_model=OrderPage, tags=["shopping"], responses={401: PROBLEM})
async def list_orders(
    user: CurrentUser, request: Request,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """Your orders, newest first."""
    return await service.relay(request.app.state.orders, "GET", "/orders", request,
                               params={"limit": limit, "offset": offset})


@public.get("/orders/{order_id}", response_model=Order, tags=["shopping"],
            responses={401: PROBLEM, 404: PROBLEM})
async def get_order(order_id: uuid.UUID, user: CurrentUser, request: Request) -> Response:
    """One of your orders."""
    return await service.relay(request.app.state.orders, "GET", f"/orders/{order_id}",
                               request)


@public.post("/payments", status_code=201, response_model=Payment, tags=["shopping"],
             responses={401: PROBLEM, 402: PROBLEM, 404: PROBLEM, 409: PROBLEM,
                        422: PROBLEM, 503: PROBLEM})
async def pay(payment: NewPayment, user: CurrentUser, request: Request) -> Response:
    """Pay an order. Declined: 402 with the reason, and the order is cancelled. Test
    cards: 4111 1111 1111 1111 pays; 4000 0000 0000 7775 (insufficient funds),
    4000 0000 0000 8880 (stolen card) and 4000 0000 0000 6660 (processing error) decline."""
    body = payment.model_dump(mode="json", exclude={"order_id"})
    answer = await request.app.state.orders.request(
        "POST", f"/orders/{payment.order_id}/payment", json=body,
        headers={"Authorization": request.headers["authorization"]})
    return service.as_response(answer)


# --- operations -----------------------------------------------------------------------

@public.get("/admin/mailbox", response_model=list[Mail], tags=["admin"],
            responses={403: PROBLEM})
async def mailbox(admin: AdminUser, request: Request,
                  limit: Annotated[int, Query(ge=1, le=500)] = 50) -> Response:
    """E-mails the shop sent (the embedded mailbox), newest first (admin)."""
    return await service.relay(request.app.state.worker, "GET", "/mailbox", request,
                               params={"limit": limit})


@public.get("/admin/dead-letters", response_model=list[DeadLetter], tags=["admin"],
            responses={403: PROBLEM, 503: PROBLEM})
async def dead_letters(admin: AdminUser, request: Request,
                       limit: Annotated[int, Query(ge=1, le=500)] = 100) -> Response:
    """Events that failed every delivery, with their error (admin)."""
    return await service.relay(request.app.state.worker, "GET", "/dead-letters", request,
                               params={"limit": limit})


@public.post("/admin/dead-letters/{sequence}/replay", tags=["admin"],
             responses={403: PROBLEM, 404: PROBLEM})
async def replay_dead_letter(sequence: int, admin: AdminUser, request: Request) -> Response:
    """Deliver a dead letter again (admin)."""
    return await service.relay(request.app.state.worker, "POST",
                               f"/dead-letters/{sequence}/replay", request)


@public.get("/admin/notifications", response_model=list[Notification], tags=["admin"],
            responses={403: PROBLEM, 422: PROBLEM})
async def notifications(
    admin: AdminUser, request: Request,
    channel: Annotated[Literal["sms", "push"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    """Text messages and push notifications the shop sent (simulated), newest first
    (admin)."""
    return await service.relay(request.app.state.worker, "GET", "/notifications", request,
                               params={"channel": channel, "limit": limit})


@public.get("/admin/reports", response_model=list[ReportSummary], tags=["admin"],
            responses={403: PROBLEM})
async def reports(admin: AdminUser, request: Request,
                  limit: Annotated[int, Query(ge=1, le=500)] = 50) -> Response:
    """Inventory reports (made every hour, and on request), newest first (admin)."""
    return await service.relay(request.app.state.worker, "GET", "/reports", request,
                               params={"limit": limit})


@public.post("/admin/reports/inventory", status_code=201, response_model=ReportSummary,
             tags=["admin"], responses={403: PROBLEM, 503: PROBLEM})
async def make_inventory_report(admin: AdminUser, request: Request) -> Response:
    """Make an inventory report now (admin)."""
    return await service.relay(request.app.state.worker, "POST", "/reports/inventory",
                               request)


@public.get("/admin/reports/{report_id}.{file_format}", tags=["admin"],
            response_class=Response,
            responses={200: {"content": {"text/csv": {}, "application/json": {}}},
                       403: PROBLEM, 404: PROBLEM})
async def download_report(report_id: uuid.UUID, file_format: Literal["csv", "json"],
                          admin: AdminUser, request: Request) -> Response:
    """Download a report as CSV (for a spreadsheet) or JSON (for a script) (admin)."""
    return await service.pass_through(request.app.state.worker, request,
                                      f"/reports/{report_id}.{file_format}",
                                      forward_token=True)


@public.get("/admin/sales", response_model=SalesSummary, tags=["admin"],
            responses={403: PROBLEM, 422: PROBLEM})
async def sales(
    admin: AdminUser, request: Request,
    since: Annotated[datetime | None, Query(
        description="ISO 8601; without a zone it is UTC. Default: midnight UTC today")] = None,
) -> Response:
    """Orders placed since `since` by status, the paid ones' revenue per currency, and
    the newest cancelled orders with their reason (admin)."""
    return await service.relay(request.app.state.orders, "GET", "/sales/summary", request,
                               params={"since": since.isoformat() if since else None})


@public.get("/admin/flags", response_model=list[FaultFlag], tags=["admin"],
            responses={403: PROBLEM, 503: PROBLEM})
async def fault_flags(admin: AdminUser, request: Request) -> list[FaultFlag]:
    """Every fault flag with its current variant, its variants, and what it does (admin).
    See docs/faults.md."""
    return faults.current(faults.flags_file(request))


@public.put("/admin/flags/{name}", response_model=FaultFlag, tags=["admin"],
            responses={403: PROBLEM, 404: PROBLEM, 422: PROBLEM, 503: PROBLEM})
async def set_fault_flag(name: str, change: FlagChange, admin: AdminUser, request: Request
                         ) -> FaultFlag:
    """Switch a fault flag to one of its variants (`off` turns it off); every service
    sees it within a second (admin). 404 names the flags, 422 the flag's variants."""
    return faults.switch(faults.flags_file(request), name, change.variant)


@public.post("/admin/flags/reset", response_model=list[FaultFlag], tags=["admin"],
             responses={403: PROBLEM, 503: PROBLEM})
async def reset_fault_flags(admin: AdminUser, request: Request) -> list[FaultFlag]:
    """Turn every fault flag off (admin)."""
    return faults.reset(faults.flags_file(request))
