"""The cart service's settings (environment prefix KANSOKU_CART_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from kansoku.kit.settings import ServiceSettings
from kansoku.topology import SERVICES_BY_NAME


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="KANSOKU_CART_", extra="ignore")

    port: int = SERVICES_BY_NAME["cart"].default_port
    #: A cart with items that sees no change and no checkout for this long is abandoned.
    abandon_after_seconds: float = Field(1800.0, gt=0)
    #: How often the service looks for newly abandoned carts.
    abandon_sweep_seconds: float = Field(30.0, gt=0)
