"""The worker's settings (environment prefix KANSOKU_WORKER_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from kansoku.kit.settings import ServiceSettings, shared
from kansoku.topology import DEFAULT_SMTP_PORT, SERVICES_BY_NAME


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="KANSOKU_WORKER_", extra="ignore")

    port: int = SERVICES_BY_NAME["worker"].default_port
    #: An SMTP server to send through (smtp://host:port). Unset: the worker runs the
    #: embedded mailbox, a real SMTP server on `smtp_port` that keeps what it receives.
    smtp_url: str | None = Field(None, validation_alias=shared("smtp_url"))
    smtp_port: int = DEFAULT_SMTP_PORT
    mail_from: str = "shop@kansoku.example"
    #: Who gets operational mail (low-stock alerts).
    admin_email: str = Field("admin@example.com", validation_alias=shared("demo_admin_email"))
    #: Failed deliveries of one event before it goes to the dead letters.
    max_deliveries: int = Field(5, ge=1)
