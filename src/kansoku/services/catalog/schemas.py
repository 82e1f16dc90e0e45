"""What the catalog's API accepts and returns."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: How a product list can be sorted ("-price": most expensive first).
ProductSort = Literal["id", "name", "price", "-price", "newest"]


class CategoryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    slug: str
    name: str


class ProductOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    sku: str
    name: str
    description: str
    price: Decimal = Field(description="Decimal as a string, e.g. \"19.99\"")
    currency: str
    category: CategoryOut


class ProductPage(BaseModel):
    items: list[ProductOut]
    total: int
    limit: int
    offset: int
