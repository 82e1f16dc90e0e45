"""What the load generator and the synthetic monitors both need to know about the shop:
the test card that pays, an address, the demo admin's login, and how generated traffic
is marked.

Plain data and functions only: the Locust child process and the monitors import this.
"""

from __future__ import annotations

import random
import uuid
from typing import Any, Final

from kansoku.kit import semconv

#: The public API's prefix on the gateway.
API: Final = "/api/v1"

#: The payments service's test card that always pays (docs/storefront.md lists the ones
#: that decline). A test card: it is sent to the shop, never logged.
PAYING_CARD: Final[dict[str, Any]] = {
    "card_number": "4111111111111111", "expiry_month": 12, "expiry_year": 2099,
    "cvv": "123"}

SHIPPING_ADDRESS: Final[dict[str, str]] = {
    "street": "1 Observatory Road", "city": "Mitaka", "state": "Tokyo", "zip": "181-8588",
    "country": "JP"}

#: The values of the `kansoku.synthetic` baggage entry.
LOAD: Final = "load"
SYNTHETIC: Final = "synthetic"

#: Words the demo catalog's product names contain (see services/catalog/demo.py).
SEARCH_WORDS: Final = ("orion", "lyra", "vega", "eyepiece", "filter", "mount", "camera",
                       "binoculars", "atlas", "refractor", "dew", "moon")


def baggage_header(kind: str) -> str:
    """The W3C `baggage` header that marks a request as generated (`load` or
    `synthetic`): every service copies the entry onto its spans."""
    return f"{semconv.BAGGAGE_SYNTHETIC}={kind}"


def demo_admin() -> tuple[str, str]:
    """The demo admin's e-mail and password, as `kansoku migrate` created the account:
    the defaults, or `KANSOKU_DEMO_ADMIN_EMAIL` / `KANSOKU_DEMO_ADMIN_PASSWORD`."""
    # Imported when asked: only the admin journey needs the identity service's settings,
    # and this module is otherwise plain data every generated request's module imports.
    from kansoku.services.identity.settings import Settings

    settings = Settings()
    return settings.demo_admin_email, settings.demo_admin_password.get_secret_value()


def new_account(kind: str) -> dict[str, str]:
    """A registration for a customer of its own: a unique e-mail address at
    example.com and a random password (held in memory only)."""
    tag = uuid.uuid4().hex[:12]
    return {"name": f"{kind.capitalize()} Shopper {tag[:4]}",
            "email": f"{kind}-{tag}@example.com", "password": uuid.uuid4().hex}


def search_word(rng: random.Random | None = None) -> str:
    return (rng or random).choice(SEARCH_WORDS)
