"""The catalog's settings (environment prefix KANSOKU_CATALOG_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from kansoku.kit.settings import ServiceSettings, shared
from kansoku.topology import SERVICES_BY_NAME


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="KANSOKU_CATALOG_", extra="ignore")

    port: int = SERVICES_BY_NAME["catalog"].default_port
    #: Connections the catalog keeps open to PostgreSQL.
    pool_size: int = 10
    #: How long product reads stay cached in Valkey (a change invalidates them at once).
    cache_seconds: float = 60.0
    #: The largest image upload accepted, in bytes, and in pixels (width x height).
    max_image_bytes: int = Field(5 * 1024 * 1024, gt=0,
                                 validation_alias=shared("max_image_bytes"))
    max_image_pixels: int = Field(40_000_000, gt=0)
