"""The payments service's settings (environment prefix KANSOKU_PAYMENTS_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from kansoku.kit.settings import ServiceSettings
from kansoku.topology import SERVICES_BY_NAME


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="KANSOKU_PAYMENTS_", extra="ignore")

    port: int = SERVICES_BY_NAME["payments"].default_port
    #: Tries of an `order.cancelled` event (whose handling may refund a charge) before it
    #: goes to the dead letters. Generous: money is at stake, and the delays grow with
    #: each try (1 s, 2 s, …), so 20 tries ride out a few minutes of database trouble.
    max_deliveries: int = Field(20, ge=1)
