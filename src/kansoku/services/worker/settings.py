"""The worker's settings (environment prefix KANSOKU_WORKER_)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AliasChoices, BeforeValidator, Field
from pydantic_settings import SettingsConfigDict

from kansoku.kit.i18n import DEFAULT_LANGUAGE, Language, parse_language
from kansoku.kit.settings import ServiceSettings, shared
from kansoku.topology import DEFAULT_SMTP_PORT, SERVICES_BY_NAME, default_url


def _language(value: Any) -> Any:
    """"ja", "ja_JP.UTF-8" or "EN" as the language they name; anything else as it came,
    for the field to refuse naming the choices."""
    if isinstance(value, str):
        return parse_language(value) or value
    return value


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
    #: The on-call phone that low-stock alerts are texted to (SMS is simulated: the
    #: message is recorded in the worker's notifications table).
    oncall_phone: str = "+15550100"
    #: The language of the staff's notifications (low-stock text and e-mail): ja or en.
    #: Read from KANSOKU_WORKER_STAFF_LANGUAGE, else KANSOKU_LANG (the command line's
    #: language, which the stack's services inherit from the shell that ran `kansoku
    #: up`; `--lang` is the command's alone), else English. Customers get theirs.
    staff_language: Annotated[Language, BeforeValidator(_language)] = Field(
        DEFAULT_LANGUAGE, validation_alias=AliasChoices("KANSOKU_WORKER_STAFF_LANGUAGE",
                                                         "KANSOKU_LANG"))
    #: Failed deliveries of one event before it goes to the dead letters.
    max_deliveries: int = Field(5, ge=1)

    #: Where the thumbnail function reads images and stores thumbnails, and the
    #: inventory report reads product names.
    catalog_url: str = Field(default_url("catalog"), validation_alias=shared("catalog_url"))
    #: Where the inventory report reads stock levels.
    inventory_url: str = Field(default_url("inventory"),
                               validation_alias=shared("inventory_url"))

    #: How often the inventory report is made. Time is cut into slots of this length
    #: (counted from the Unix epoch), and each slot gets one report however many worker
    #: instances run.
    report_interval_seconds: float = Field(3600.0, gt=0)
    #: How long after start-up the first scheduled report is attempted: long enough for
    #: the services it reads from, started at the same time, to be ready.
    report_first_run_seconds: float = Field(15.0, ge=0)
