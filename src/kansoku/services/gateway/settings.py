"""The gateway's settings (environment prefix KANSOKU_GATEWAY_)."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from kansoku.kit.settings import ServiceSettings, shared
from kansoku.topology import EXPLORER_TOKEN_VARIABLE, SERVICES_BY_NAME, default_url


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="KANSOKU_GATEWAY_", extra="ignore")

    port: int = SERVICES_BY_NAME["gateway"].default_port
    catalog_url: str = Field(default_url("catalog"), validation_alias=shared("catalog_url"))
    inventory_url: str = Field(default_url("inventory"),
                               validation_alias=shared("inventory_url"))
    cart_url: str = Field(default_url("cart"), validation_alias=shared("cart_url"))
    orders_url: str = Field(default_url("orders"), validation_alias=shared("orders_url"))
    worker_url: str = Field(default_url("worker"), validation_alias=shared("worker_url"))
    lab_url: str = Field(default_url("lab"), validation_alias=shared("lab_url"))
    #: Where the explorer's API is, for the admin dashboard's recent failures.
    explorer_url: str = Field(default_url("explorer"), validation_alias=shared("explorer_url"))
    #: Where people's browsers find the explorer, for the pages' links to it, when that
    #: is not `explorer_url` (in containers the gateway reaches http://explorer:8800,
    #: a browser does not).
    explorer_public_url: str | None = None
    #: The explorer's bearer credential, when it requires a login (docs/security.md).
    explorer_token: SecretStr | None = Field(
        None, validation_alias=AliasChoices(EXPLORER_TOKEN_VARIABLE))
    #: In Kubernetes: the ConfigMap (`[namespace/]name`) holding the fault flags, which
    #: the admin pages switch through the Kubernetes API (the chart sets it; every pod
    #: reads the flags from it, mounted at KANSOKU_FLAGS_FILE).
    flags_configmap: str | None = Field(None, validation_alias=shared("flags_configmap"))
    #: Accept a user id (`enduser.id`) in the baggage of incoming requests. Off: the
    #: gateway is the edge, and a client could claim to be anyone. Turn on only behind
    #: a trusted proxy that sets it, or for tests.
    trust_incoming_user: bool = False
    #: Public API requests (and form posts) a minute: a logged-in user's, and an
    #: anonymous client address's (0: off). A user's requests never count against
    #: their address (`state.limit_requests`; docs/security.md).
    rate_limit_per_ip: int = Field(6000, ge=0)
    rate_limit_per_user: int = Field(1200, ge=0)
    #: The largest image upload accepted, in bytes (the catalog checks it too).
    max_image_bytes: int = Field(5 * 1024 * 1024, gt=0,
                                 validation_alias=shared("max_image_bytes"))
    #: Per-phase timeouts for calls to other services, in seconds.
    connect_timeout: float = 1.0
    read_timeout: float = 3.0
    #: How long placing an order or paying may take (several services in turn).
    checkout_timeout: float = 15.0
    #: Real-user monitoring (`POST /rum`, what the pages' script sends): the largest
    #: batch in bytes (a browser's `sendBeacon` carries at most 64 KiB), and batches a
    #: minute per client address and per browser session (0: no limit). A page sends a
    #: few batches; many shoppers can share one address.
    rum_max_body_bytes: int = Field(64 * 1024, gt=0)
    rum_rate_per_address: int = Field(1200, ge=0)
    rum_rate_per_session: int = Field(120, ge=0)

    @property
    def explorer_link_url(self) -> str:
        """The explorer's address as the pages link to it."""
        return (self.explorer_public_url or self.explorer_url).rstrip("/")
