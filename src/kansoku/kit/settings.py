"""The settings every service shares.

Each service declares one `Settings` class that inherits from `ServiceSettings` and sets
its own environment prefix (`KANSOKU_CATALOG_`, …). What the whole platform shares — where
the database, NATS and Valkey are, the default log level — is read from unprefixed
`KANSOKU_*` variables, so one export configures every service at once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

from pydantic import (
    AliasChoices,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from kansoku.kit.approaches import Instrumentation
from kansoku.topology import default_url


class ConfigurationError(Exception):
    """A setting is missing or wrong; the message names the variable and the fix."""


def _empty_is_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


#: A port that may be turned off: the variable set empty (compose and the chart pass
#: every variable through, empty when unset) means none, not a number to parse.
OptionalPort = Annotated[Annotated[int, Field(ge=1, le=65535)] | None,
                         BeforeValidator(_empty_is_none)]


def require(value: str | None, variable: str, why: str) -> str:
    """Return `value`, or stop with a message naming the variable to set."""
    if not value:
        raise ConfigurationError(f"{variable} is not set: {why}")
    return value


#: What Kubernetes puts in `<SERVICE>_PORT` for every Service in the namespace ("service
#: links"): a Service named `kansoku-catalog` gives every pod started after it
#: KANSOKU_CATALOG_PORT=tcp://10.0.0.1:8002 — kansoku's own port setting.
_SERVICE_LINK = re.compile(r"(tcp|udp|sctp)://[0-9a-fA-F.:\[\]]+:\d+")


def service_link_hint(variable: str, value: str) -> str | None:
    """If `value` is what Kubernetes' service links put in `variable`, the sentence that
    says so and how to stop it; else None."""
    if not _SERVICE_LINK.fullmatch(value.strip()):
        return None
    service = variable.removesuffix("_PORT").lower().replace("_", "-")
    return (f"{variable}={value.strip()} is a Kubernetes service link (the Service "
            f"'{service}' in this namespace), not a port: set enableServiceLinks: false "
            "on the pod (the kansoku chart does), or unset the variable")


def variable_of(location: Sequence[int | str], prefix: str = "KANSOKU_") -> str:
    """The environment variable a validation error's location names: the field under
    `prefix` (`KANSOKU_CATALOG_` + `port`), or the platform-wide variable a field reads
    through `shared` (its location is then the variable itself)."""
    first = str(location[0]) if location else ""
    if first.upper().startswith("KANSOKU_"):
        return first.upper()
    return prefix + "_".join(str(part) for part in location).upper()


def invalid_setting_message(exc: ValidationError, prefix: str = "KANSOKU_") -> str:
    """One line naming the first bad variable and the fix. The value is repeated only
    when it is a service link: any other could be a password in a URL."""
    first = exc.errors()[0]
    variable = variable_of(first["loc"], prefix)
    value = first.get("input")
    if isinstance(value, str) and (hint := service_link_hint(variable, value)):
        return hint
    return f"{variable} is not valid: {first['msg']} — fix or unset it"


def shared(name: str) -> AliasChoices:
    """Read a field from the platform-wide variable `KANSOKU_<NAME>`, ignoring the prefix."""
    return AliasChoices(f"KANSOKU_{name.upper()}")


class ServiceSettings(BaseSettings):
    """Fields every kansoku service has. Subclasses add their own and set `env_prefix`."""

    model_config = SettingsConfigDict(extra="ignore", env_prefix="KANSOKU_", populate_by_name=True)

    #: Address to listen on. Loopback by default: an embedded stack is not exposed.
    host: str = Field("127.0.0.1", validation_alias=shared("host"))
    port: int = 0
    #: This service's log level; falls back to KANSOKU_LOG_LEVEL, then INFO.
    log_level: str | None = None
    default_log_level: str = Field("INFO", validation_alias=shared("log_level"))

    #: How this service is instrumented (`kit/approaches`, docs/approaches.md): its own
    #: `KANSOKU_<SERVICE>_INSTRUMENTATION`, else KANSOKU_INSTRUMENTATION, else otel.
    instrumentation: Instrumentation | None = None
    default_instrumentation: Instrumentation = Field(Instrumentation.OTEL,
                                                     validation_alias=shared("instrumentation"))

    #: Where identity publishes the keys that verify access tokens.
    identity_url: str = Field(default_url("identity"), validation_alias=shared("identity_url"))

    #: The secret services show identity to get a service token (client credentials),
    #: for calls they make on their own rather than for a user. `kansoku up` sets one
    #: per stack; unset, no service tokens are issued.
    service_secret: SecretStr | None = Field(None, validation_alias=shared("service_secret"))

    #: The fault flags file (flagd's JSON format; see kit/flags.py). Unset: every flag
    #: is off.
    flags_file: Path | None = Field(None, validation_alias=shared("flags_file"))

    database_url: str | None = Field(None, validation_alias=shared("database_url"))
    nats_url: str | None = Field(None, validation_alias=shared("nats_url"))
    redis_url: str | None = Field(None, validation_alias=shared("redis_url"))

    #: The largest request body the service reads, in bytes (413 past it). Requests are
    #: small JSON documents; image uploads have their own, larger limit.
    max_body_bytes: int = Field(1024 * 1024, ge=0)

    #: Proxies whose `X-Forwarded-For` names the client (comma-separated addresses or
    #: networks, or `*`). None by default: the client is whoever connected, and a
    #: header saying otherwise is ignored. See docs/security.md.
    trusted_proxies: str = Field("", validation_alias=shared("trusted_proxies"))
    #: Slow clients: a request's headers must arrive within `header_timeout` seconds and
    #: its body within `body_timeout` after them, or the connection is closed.
    header_timeout: float = Field(10.0, gt=0, validation_alias=shared("header_timeout"))
    body_timeout: float = Field(60.0, gt=0, validation_alias=shared("body_timeout"))

    #: How long a readiness check may wait for one dependency before it counts as down.
    readiness_timeout_seconds: float = Field(2.0, validation_alias=shared("readiness_timeout"))
    #: How long shutdown waits for in-flight requests after SIGTERM.
    graceful_shutdown_seconds: float = Field(10.0, validation_alias=shared("graceful_shutdown"))

    @field_validator("instrumentation", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """An empty KANSOKU_<SERVICE>_INSTRUMENTATION follows the platform's (compose
        passes every service's through, empty when the shell has none)."""
        return None if isinstance(value, str) and not value.strip() else value

    def listen_ports(self) -> list[int]:
        """Every port this service listens on (most have one)."""
        return [self.port]

    @property
    def effective_log_level(self) -> str:
        return (self.log_level or self.default_log_level).upper()

    @property
    def effective_instrumentation(self) -> Instrumentation:
        return self.instrumentation or self.default_instrumentation
