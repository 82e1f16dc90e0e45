"""The synthetic monitors' settings (environment prefix KANSOKU_SYNTHETICS_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from kansoku.kit.settings import ServiceSettings, shared
from kansoku.loadgen.outcomes import JOURNEY_NAMES
from kansoku.topology import SERVICES_BY_NAME, default_url

#: The runner's port when `kansoku serve synthetics` runs it (`topology.py` names it once
#: the supervisor starts it; until then this default).
DEFAULT_PORT = SERVICES_BY_NAME["synthetics"].default_port if "synthetics" in SERVICES_BY_NAME \
    else 8009


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="KANSOKU_SYNTHETICS_", extra="ignore")

    port: int = DEFAULT_PORT
    #: The gateway the journeys go through, as a customer's browser would.
    gateway_url: str = Field(default_url("gateway"), validation_alias=shared("gateway_url"))
    #: Seconds from the start of one round of journeys to the start of the next.
    interval_seconds: float = Field(60.0, gt=0)
    #: The journeys the schedule runs, comma-separated (default: all of them).
    journeys: str = ""
    #: How long one request of a journey may take before the journey fails, in seconds.
    request_timeout_seconds: float = Field(15.0, gt=0)
    #: The browser the `storefront` journey drives (Debian's `chromium` package). Missing:
    #: the journey reports itself skipped.
    chromium_path: Path = Path("/usr/bin/chromium")

    @field_validator("journeys")
    @classmethod
    def _known_journeys(cls, value: str) -> str:
        unknown = [name for name in _names(value) if name not in JOURNEY_NAMES]
        if unknown:
            raise ValueError(f"unknown journey {', '.join(unknown)}: choose from "
                             f"{', '.join(JOURNEY_NAMES)}")
        return value

    def journey_names(self) -> list[str]:
        return _names(self.journeys) or list(JOURNEY_NAMES)


def _names(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]
