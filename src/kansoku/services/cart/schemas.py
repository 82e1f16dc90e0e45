"""What the cart service accepts and returns."""

from __future__ import annotations

from pydantic import BaseModel, Field

from kansoku.kit.fields import DbId, Whole

#: No line of a cart holds more than this many units.
MAX_QUANTITY = 99


class CartItem(BaseModel):
    product_id: DbId
    quantity: Whole = Field(ge=1, le=MAX_QUANTITY)


class QuantityChange(BaseModel):
    quantity: Whole = Field(ge=0, le=MAX_QUANTITY, description="0 removes the item")


class Cart(BaseModel):
    items: list[CartItem]
