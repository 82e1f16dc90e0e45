"""The identity service's settings (environment prefix KANSOKU_IDENTITY_)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from kansoku.kit.settings import ServiceSettings, shared
from kansoku.topology import SERVICES_BY_NAME


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="KANSOKU_IDENTITY_", extra="ignore")

    port: int = SERVICES_BY_NAME["identity"].default_port
    #: Access tokens are short-lived: a stolen one is useful for minutes, not days.
    access_token_seconds: int = Field(900, gt=0)
    refresh_token_days: int = Field(30, gt=0)

    #: The demo accounts `kansoku up` creates (and prints).
    demo_customer_email: str = Field("alice@example.com",
                                     validation_alias=shared("demo_customer_email"))
    demo_customer_password: SecretStr = Field(
        SecretStr("alice-pass-1234"), validation_alias=shared("demo_customer_password"))
    demo_admin_email: str = Field("admin@example.com",
                                  validation_alias=shared("demo_admin_email"))
    demo_admin_password: SecretStr = Field(
        SecretStr("admin-pass-1234"), validation_alias=shared("demo_admin_password"))
