"""The worker service's settings (environment prefix KANSOKU_WORKER_)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from kansoku.kit.settings import ServiceSettings
from kansoku.topology import SERVICES_BY_NAME


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="KANSOKU_WORKER_", extra="ignore")

    port: int = SERVICES_BY_NAME["worker"].default_port
