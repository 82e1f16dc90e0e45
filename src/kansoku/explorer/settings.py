"""The explorer's settings (environment prefix KANSOKU_EXPLORER_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from kansoku.kit.settings import ServiceSettings
from kansoku.topology import DEFAULT_OTLP_PORT, SERVICES_BY_NAME


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="KANSOKU_EXPLORER_", extra="ignore")

    port: int = SERVICES_BY_NAME["explorer"].default_port
    #: OTLP/HTTP receiver (the standard port). Both ports serve the same routes.
    otlp_port: int = DEFAULT_OTLP_PORT
    #: The DuckDB file everything is kept in (`kansoku up` puts it in the data
    #: directory); ":memory:" keeps nothing across restarts.
    db_path: str = ".kansoku/explorer/telemetry.duckdb"
    #: Retention: data older than this is deleted, and the oldest goes first while the
    #: file is larger than `retention_bytes`.
    retention_hours: float = Field(24.0, gt=0)
    retention_bytes: int = Field(1024**3, gt=0)
    #: How often retention is enforced.
    retention_check_seconds: float = Field(60.0, gt=0)
    #: The store's share of the machine: DuckDB's memory limit and worker threads.
    memory_limit: str = "512MB"
    threads: int = Field(2, ge=1)
    #: Rows that may wait to be written before receivers answer 503 (back-pressure).
    max_pending_rows: int = Field(500_000, gt=0)
    #: Largest OTLP request body accepted, in bytes (after decompression).
    max_body_bytes: int = 16 * 1024 * 1024

    def listen_ports(self) -> list[int]:
        return [self.port, self.otlp_port]
