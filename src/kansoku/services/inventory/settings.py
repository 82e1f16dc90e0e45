"""The inventory service's settings (environment prefix KANSOKU_INVENTORY_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from kansoku.kit.settings import ServiceSettings
from kansoku.topology import SERVICES_BY_NAME


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="KANSOKU_INVENTORY_", extra="ignore")

    port: int = SERVICES_BY_NAME["inventory"].default_port
    #: How often unpaid reservations past their expiry are released.
    expiry_sweep_seconds: float = Field(1.0, gt=0)
