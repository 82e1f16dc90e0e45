"""The identity service's settings (environment prefix KANSOKU_IDENTITY_)."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from kansoku.kit.settings import ServiceSettings, shared
from kansoku.topology import SERVICES_BY_NAME


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="KANSOKU_IDENTITY_", extra="ignore")

    port: int = SERVICES_BY_NAME["identity"].default_port
    #: Access tokens are short-lived: a stolen one is useful for minutes, not days.
    access_token_seconds: int = Field(900, gt=0)
    refresh_token_days: int = Field(30, gt=0)

    #: Login throttling (docs/security.md): after this many failed logins in a row for
    #: one account, or from one client address, logins there are refused (429) for
    #: `login_lock_seconds`, doubled with each further failure up to
    #: `login_lock_max_seconds`. A failure older than `login_failure_memory_seconds`
    #: starts the count again; a successful login clears its account's count.
    login_account_failures: int = Field(5, ge=1)
    login_address_failures: int = Field(20, ge=1)
    login_lock_seconds: float = Field(30.0, gt=0)
    login_lock_max_seconds: float = Field(900.0, gt=0)
    login_failure_memory_seconds: float = Field(900.0, gt=0)
    #: Identity is never the edge: the one caller that forwards a client's address
    #: (`X-Forwarded-For`, for the throttle's per-address count) is the gateway, on this
    #: machine by default. In containers, set KANSOKU_IDENTITY_TRUSTED_PROXIES to the
    #: gateway's addresses (docs/security.md).
    trusted_proxies: str = Field("127.0.0.1,::1", validation_alias=AliasChoices(
        "KANSOKU_IDENTITY_TRUSTED_PROXIES"))

    #: The demo accounts `kansoku up` creates (and prints).
    demo_customer_email: str = Field("alice@example.com",
                                     validation_alias=shared("demo_customer_email"))
    demo_customer_password: SecretStr = Field(
        SecretStr("alice-pass-1234"), validation_alias=shared("demo_customer_password"))
    demo_admin_email: str = Field("admin@example.com",
                                  validation_alias=shared("demo_admin_email"))
    demo_admin_password: SecretStr = Field(
        SecretStr("admin-pass-1234"), validation_alias=shared("demo_admin_password"))
