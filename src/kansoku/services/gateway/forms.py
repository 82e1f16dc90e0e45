"""The storefront's forms, checked before anything is sent to a service: each mistake
becomes a sentence next to its field (`errors[field]`), and the page is shown again with
what was typed (`values`) — never a password, a card number or a security code, which
the customer types again."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from starlette.datastructures import FormData

#: Countries the shop ships to (ISO 3166-1 alpha-2), for the address form's list.
COUNTRIES: Final = {
    "US": "United States", "CA": "Canada", "GB": "United Kingdom", "IE": "Ireland",
    "DE": "Germany", "FR": "France", "NL": "Netherlands", "ES": "Spain", "IT": "Italy",
    "SE": "Sweden", "JP": "Japan", "AU": "Australia", "NZ": "New Zealand",
}
#: How many years ahead a card's expiry can be chosen.
EXPIRY_YEARS_AHEAD: Final = 15
_EMAIL: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass
class Checked:
    """A form after checking: the values to show again, the errors by field, and the
    data to send when there are none."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return not self.errors


def text(form: FormData, name: str) -> str:
    """A text field, trimmed; "" when missing (or a file where text was expected)."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def whole_number(form: FormData, name: str) -> int | None:
    value = text(form, name)
    return int(value) if value.isdigit() and len(value) <= 6 else None


def _required(checked: Checked, form: FormData, name: str, label: str, max_length: int
              ) -> str:
    value = text(form, name)
    checked.values[name] = value[:max_length * 2]
    if not value:
        checked.errors[name] = f"Enter your {label}."
    elif len(value) > max_length:
        checked.errors[name] = f"Your {label} can be at most {max_length} characters long."
    return value


def luhn_valid(digits: str) -> bool:
    """The Luhn check digit every card number ends with (catches most typing mistakes)."""
    total = 0
    for position, digit in enumerate(int(d) for d in reversed(digits)):
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def expiry_years(now: datetime | None = None) -> list[int]:
    year = (now or datetime.now(UTC)).year
    return list(range(year, year + EXPIRY_YEARS_AHEAD + 1))


def checkout(form: FormData, now: datetime | None = None) -> Checked:
    """The checkout form: a shipping address and a card. `data` holds `address` and
    `card` as orders and payments take them."""
    checked = Checked()
    street = _required(checked, form, "street", "street address", 200)
    city = _required(checked, form, "city", "town or city", 100)
    state = text(form, "state")
    checked.values["state"] = state[:200]
    if len(state) > 100:
        checked.errors["state"] = "The state or region can be at most 100 characters long."
    postcode = _required(checked, form, "zip", "ZIP or postcode", 20)
    country = text(form, "country").upper()
    checked.values["country"] = country if country in COUNTRIES else ""
    if country not in COUNTRIES:
        checked.errors["country"] = "Choose the country to send the order to."

    number = re.sub(r"[\s-]", "", text(form, "card_number"))
    if not number:
        checked.errors["card_number"] = "Enter the card number."
    elif not number.isdigit():
        checked.errors["card_number"] = ("A card number has only digits (spaces between "
                                         "them are fine).")
    elif not 12 <= len(number) <= 19 or not luhn_valid(number):
        checked.errors["card_number"] = "This card number is not valid: check the digits."

    month, year = whole_number(form, "expiry_month"), whole_number(form, "expiry_year")
    checked.values["expiry_month"] = str(month) if month else ""
    checked.values["expiry_year"] = str(year) if year else ""
    today = now or datetime.now(UTC)
    if month is None or not 1 <= month <= 12 or year is None or year not in expiry_years(now):
        checked.errors["expiry"] = "Choose the month and year the card expires."
    elif (year, month) < (today.year, today.month):
        checked.errors["expiry"] = "This card has expired: use another card."

    cvv = text(form, "cvv")
    if not re.fullmatch(r"[0-9]{3,4}", cvv):
        checked.errors["cvv"] = ("Enter the security code: the 3 or 4 digits printed on "
                                 "the card (on the back of most cards).")

    if checked.ok:
        checked.data = {
            "address": {"street": street, "city": city, "state": state, "zip": postcode,
                        "country": country},
            "card": {"card_number": number, "expiry_month": month, "expiry_year": year,
                     "cvv": cvv},
        }
    return checked


def login(form: FormData) -> Checked:
    checked = Checked()
    email = text(form, "email")
    checked.values["email"] = email[:254]
    if not _EMAIL.match(email) or len(email) > 254:
        checked.errors["email"] = "Enter your e-mail address, like name@example.com."
    password = form.get("password")
    if not isinstance(password, str) or not password:
        checked.errors["password"] = "Enter your password."  # noqa: S105 - a message
    elif len(password) > 200:
        checked.errors["password"] = "That password is too long to be yours."  # noqa: S105
    if checked.ok:
        checked.data = {"email": email, "password": password}
    return checked


def registration(form: FormData) -> Checked:
    checked = Checked()
    name = _required(checked, form, "name", "name", 200)
    email = text(form, "email")
    checked.values["email"] = email[:254]
    if not _EMAIL.match(email) or len(email) > 254:
        checked.errors["email"] = "Enter your e-mail address, like name@example.com."
    password = form.get("password")
    if not isinstance(password, str) or len(password) < 8:
        checked.errors["password"] = "Choose a password of at least 8 characters."  # noqa: S105
    elif len(password) > 200:
        checked.errors["password"] = "Choose a password of at most 200 characters."  # noqa: S105
    if checked.ok:
        checked.data = {"name": name, "email": email, "password": password}
    return checked
