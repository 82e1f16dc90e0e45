"""The identity service's settings (environment prefix KANSOKU_IDENTITY_)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from kansoku.kit.settings import ServiceSettings
from kansoku.topology import SERVICES_BY_NAME


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="KANSOKU_IDENTITY_", extra="ignore")

    port: int = SERVICES_BY_NAME["identity"].default_port
