"""The lab service's settings (environment prefix KANSOKU_LAB_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from kansoku.kit.settings import ServiceSettings
from kansoku.topology import SERVICES_BY_NAME


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="KANSOKU_LAB_", extra="ignore")

    port: int = SERVICES_BY_NAME["lab"].default_port
    #: Connections the lab keeps open to PostgreSQL. A slow query holds one for seconds.
    pool_size: int = Field(10, ge=1)
    #: How long the slow query's `pg_sleep` lasts: a random time between these, seconds
    #: (keep the larger one below the statement timeout, or every slow query fails).
    slow_query_min_seconds: float = Field(3.0, ge=0)
    slow_query_max_seconds: float = Field(5.0, ge=0)
    #: PostgreSQL cancels any one statement of the lab after this many seconds (its
    #: `statement_timeout`), so a runaway cartesian product ends as an error, never a
    #: hang. The gateway waits longer than this for the lab's answer.
    statement_timeout_seconds: float = Field(15.0, gt=0)
    #: Slow queries (either variant) running at once; one more is answered 429. Each
    #: holds a database connection, and the cartesian one a CPU, for seconds.
    max_concurrent_slow_queries: int = Field(4, ge=1)

