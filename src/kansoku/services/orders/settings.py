"""The orders service's settings (environment prefix KANSOKU_ORDERS_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from kansoku.kit.settings import ServiceSettings, shared
from kansoku.topology import SERVICES_BY_NAME, default_url


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="KANSOKU_ORDERS_", extra="ignore")

    port: int = SERVICES_BY_NAME["orders"].default_port
    catalog_url: str = Field(default_url("catalog"), validation_alias=shared("catalog_url"))
    inventory_url: str = Field(default_url("inventory"),
                               validation_alias=shared("inventory_url"))
    cart_url: str = Field(default_url("cart"), validation_alias=shared("cart_url"))
    payments_url: str = Field(default_url("payments"), validation_alias=shared("payments_url"))
    #: How long an unpaid order holds its stock.
    reservation_seconds: int = Field(900, gt=0)
    #: How often a `payment.succeeded` event is tried before it is a dead letter.
    max_deliveries: int = Field(20, ge=1)
