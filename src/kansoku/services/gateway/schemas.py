"""The public API's contract (`/api/v1`): what it accepts and returns.

These models are the documented, versioned surface; the services behind the gateway
have their own internal models and may change them without breaking callers.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

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


class ProductPage(BaseModel):
    items: list[Product]
    total: int
    limit: int
    offset: int
