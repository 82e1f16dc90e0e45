"""The explorer's settings (environment prefix KANSOKU_EXPLORER_)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from kansoku.kit.settings import ServiceSettings
from kansoku.topology import DEFAULT_OTLP_PORT, SERVICES_BY_NAME


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="KANSOKU_EXPLORER_", extra="ignore")

    port: int = SERVICES_BY_NAME["explorer"].default_port
    #: OTLP/HTTP receiver (the standard port). Both ports serve the same routes.
    otlp_port: int = DEFAULT_OTLP_PORT
    #: Spans kept in memory; the oldest traces are dropped first.
    max_spans: int = 200_000
    #: Largest OTLP request body accepted, in bytes (after decompression).
    max_body_bytes: int = 16 * 1024 * 1024

    def listen_ports(self) -> list[int]:
        return [self.port, self.otlp_port]
