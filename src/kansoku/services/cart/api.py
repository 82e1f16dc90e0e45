"""The cart's routes: always the caller's own cart (the token says whose)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from kansoku.kit.auth import CurrentUser
from kansoku.services.cart import service
from kansoku.services.cart.schemas import Cart, CartItem, QuantityChange

router = APIRouter(tags=["cart"])


@router.get("/cart")
async def get_cart(user: CurrentUser, request: Request) -> Cart:
    """Your cart."""
    return await service.cart(request.app.state.valkey, user.user_id)


@router.post("/cart/items")
async def add_item(item: CartItem, user: CurrentUser, request: Request) -> Cart:
    """Add units of a product (up to 99 a line)."""
    return await service.add(request.app.state.valkey, user.user_id, item)


@router.patch("/cart/items/{product_id}")
async def change_item(product_id: int, change: QuantityChange, user: CurrentUser,
                      request: Request) -> Cart:
    """Set a line's quantity (0 removes it)."""
    return await service.change(request.app.state.valkey, user.user_id, product_id,
                                change.quantity)


@router.delete("/cart/items/{product_id}")
async def remove_item(product_id: int, user: CurrentUser, request: Request) -> Cart:
    """Remove a product from your cart."""
    return await service.remove(request.app.state.valkey, user.user_id, product_id)


@router.delete("/cart", status_code=204)
async def clear_cart(user: CurrentUser, request: Request) -> None:
    """Empty your cart (checkout does this when the order is placed)."""
    await service.clear(request.app.state.valkey, user.user_id)
