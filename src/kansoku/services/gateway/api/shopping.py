"""Shopping: your cart (priced at today's prices), your orders, and paying them."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Header, Query

from kansoku.contracts.calls import Json
from kansoku.kit.auth import CurrentUser
from kansoku.kit.fields import DbId, Offset
from kansoku.kit.openapi import PROBLEM
from kansoku.services.gateway.api.common import ApiCaller
from kansoku.services.gateway.api.schemas import (
    Cart,
    CartLineIn,
    NewOrder,
    NewPayment,
    Order,
    OrderPage,
    Payment,
    QuantityChange,
)
from kansoku.services.gateway.shop import PricedCart
from kansoku.services.gateway.state import GatewayDep

router = APIRouter(tags=["shopping"])


# --- the cart -------------------------------------------------------------------------

@router.get("/cart", response_model=Cart, responses={401: PROBLEM})
async def get_cart(user: CurrentUser, caller: ApiCaller, gateway: GatewayDep) -> PricedCart:
    """Your cart, priced."""
    return await gateway.shop.priced_cart(caller)


@router.post("/cart/items", response_model=Cart,
             responses={401: PROBLEM, 404: PROBLEM, 422: PROBLEM})
async def add_to_cart(line: CartLineIn, user: CurrentUser, caller: ApiCaller,
                      gateway: GatewayDep) -> PricedCart:
    """Add units of a product to your cart."""
    return await gateway.shop.add_to_cart(caller, line.product_id, line.quantity)


@router.patch("/cart/items/{product_id}", response_model=Cart,
              responses={401: PROBLEM, 404: PROBLEM, 422: PROBLEM})
async def change_cart_line(product_id: DbId, change: QuantityChange, user: CurrentUser,
                           caller: ApiCaller, gateway: GatewayDep) -> PricedCart:
    """Set how many of a product your cart holds (0 removes it)."""
    await gateway.clients.cart.set_quantity(caller, product_id, change.quantity)
    return await gateway.shop.priced_cart(caller)


@router.delete("/cart/items/{product_id}", response_model=Cart,
               responses={401: PROBLEM, 404: PROBLEM})
async def remove_from_cart(product_id: DbId, user: CurrentUser, caller: ApiCaller,
                           gateway: GatewayDep) -> PricedCart:
    """Remove a product from your cart."""
    await gateway.clients.cart.remove(caller, product_id)
    return await gateway.shop.priced_cart(caller)


# --- orders and payments --------------------------------------------------------------

@router.post("/orders", status_code=201, response_model=Order,
             responses={401: PROBLEM, 404: PROBLEM, 409: PROBLEM, 422: PROBLEM,
                        503: PROBLEM})
async def place_order(
    order: NewOrder, user: CurrentUser, caller: ApiCaller, gateway: GatewayDep,
    idempotency_key: Annotated[str | None, Header(
        max_length=100, description="Send the same key again and get the same order back, "
        "never a second one")] = None,
) -> Json:
    """Place an order (the given items, or your cart) and reserve its stock; then pay it
    with `POST /api/v1/payments`. 409 when something is out of stock."""
    return await gateway.clients.orders.place(
        caller, order.model_dump(mode="json", exclude_unset=True),
        idempotency_key=idempotency_key)


@router.get("/orders", response_model=OrderPage, responses={401: PROBLEM})
async def list_orders(
    user: CurrentUser, caller: ApiCaller, gateway: GatewayDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[Offset, Query()] = 0,
) -> Json:
    """Your orders, newest first."""
    return await gateway.clients.orders.page(caller, limit=limit, offset=offset)


@router.get("/orders/{order_id}", response_model=Order, responses={401: PROBLEM,
                                                                   404: PROBLEM})
async def get_order(order_id: uuid.UUID, user: CurrentUser, caller: ApiCaller,
                    gateway: GatewayDep) -> Json:
    """One of your orders."""
    return await gateway.clients.orders.order(caller, order_id)


@router.post("/payments", status_code=201, response_model=Payment,
             responses={401: PROBLEM, 402: PROBLEM, 404: PROBLEM, 409: PROBLEM,
                        422: PROBLEM, 503: PROBLEM})
async def pay(payment: Annotated[NewPayment, Body()], user: CurrentUser,
              caller: ApiCaller, gateway: GatewayDep) -> Json:
    """Pay an order. Declined: 402 with the reason, and the order is cancelled. Test
    cards: 4111 1111 1111 1111 pays; 4000 0000 0000 7775 (insufficient funds),
    4000 0000 0000 8880 (stolen card) and 4000 0000 0000 6660 (processing error) decline."""
    return await gateway.clients.orders.pay(
        caller, payment.order_id, payment.model_dump(mode="json", exclude={"order_id"}))
