"""The orders service's settings (environment prefix KANSOKU_ORDERS_)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from kansoku.kit.settings import ServiceSettings
from kansoku.topology import SERVICES_BY_NAME


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="KANSOKU_ORDERS_", extra="ignore")

    port: int = SERVICES_BY_NAME["orders"].default_port
