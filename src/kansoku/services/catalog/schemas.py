"""What the catalog's API accepts and returns."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field


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
