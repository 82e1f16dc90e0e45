"""The public API's contract (`/api/v1`): what it accepts and returns.

These models are the documented, versioned surface; the services behind the gateway
have their own internal models and may change them without breaking callers.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, EmailStr, Field


class Registration(BaseModel):
    name: str = Field(min_length=1, max_length=200, examples=["John Doe"])
    email: EmailStr = Field(examples=["john.doe@example.com"])
    #: repr=False: a password never shows up in a log line or a debugger's repr.
    password: str = Field(min_length=8, max_length=200, repr=False,
                          examples=["securepassword"])


class Credentials(BaseModel):
    email: EmailStr = Field(examples=["alice@example.com"])
    password: str = Field(min_length=1, max_length=200, repr=False,
                          examples=["alice-pass-1234"])


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=200, repr=False)


class ProfileChange(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=200)
    password: str | None = Field(None, min_length=8, max_length=200, repr=False)


class User(BaseModel):
    id: uuid.UUID
    name: str
    email: str
    role: str
    created_at: datetime


class Tokens(BaseModel):
    access_token: str
    token_type: str = Field(examples=["bearer"])
    expires_in: int = Field(description="Seconds until the access token expires")
    refresh_token: str


class Category(BaseModel):
    id: int
    slug: str
    name: str


class Product(BaseModel):
    id: int
    sku: str
    name: str
    description: str
    price: Decimal = Field(description='Decimal as a string, e.g. "1299.99"')
    currency: str
    category: Category


class ProductDetail(Product):
    stock: int | None = Field(description="Units available now (null if unknown)")
    stock_status: Literal["in_stock", "low", "out", "unknown"]


class NewProduct(BaseModel):
    """A product as an admin creates it (seed 004's shape)."""

    name: str = Field(min_length=1, max_length=200, examples=["Premium Laptop"])
    description: str = Field("", max_length=5000)
    price: Decimal = Field(gt=0, max_digits=12, decimal_places=2, examples=["1299.99"])
    currency: str = Field("USD", pattern=r"^[A-Z]{3}$")
    inventory: int = Field(0, ge=0, le=1_000_000, description="Units in stock to start with")
    category: str | None = Field(None, max_length=64, description="Category slug")
    sku: str | None = Field(None, min_length=1, max_length=32)


class ProductChange(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=5000)
    price: Decimal = Field(gt=0, max_digits=12, decimal_places=2)
    currency: str = Field("USD", pattern=r"^[A-Z]{3}$")
    category: str | None = Field(None, max_length=64)
    sku: str | None = Field(None, min_length=1, max_length=32)


class StockLevel(BaseModel):
    product_id: int
    on_hand: int
    reserved: int
    available: int
    low_stock_threshold: int
    status: Literal["in_stock", "low", "out"]
    low_stock: bool


class StockPage(BaseModel):
    items: list[StockLevel]
    total: int
    limit: int
    offset: int


class StockChange(BaseModel):
    delta: int = Field(ge=-1_000_000, le=1_000_000, description="Units to add or remove")
    reason: str = Field(min_length=1, max_length=200, examples=["restock from supplier"])


class ProductPage(BaseModel):
    items: list[Product]
    total: int
    limit: int
    offset: int
