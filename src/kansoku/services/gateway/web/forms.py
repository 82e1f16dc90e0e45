"""The pages' forms, checked before anything is sent to a service: each mistake becomes
a sentence next to its field (`errors[field]`), and the page is shown again with what was
typed (`values`) — never a password, a card number or a security code, which the person
types again.

The storefront's forms (checkout, login, registration) are checked here field by field;
the admin's forms are validated against the public API's models (`validated`), with
plain words for each field (`FIELD_HELP`) instead of the validator's; a picture is
checked by its first bytes (`picture_from`) before any service sees it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from babel import Locale
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData, UploadFile

from kansoku.contracts.calls import Refused
from kansoku.kit import i18n
from kansoku.kit.errors import field_message
from kansoku.kit.i18n import _, lazy_gettext

#: Countries the shop ships to (ISO 3166-1 alpha-2), for the address form's list; the
#: page names them in the reader's language (`country_names`).
COUNTRIES: Final = {
    "US": "United States", "CA": "Canada", "GB": "United Kingdom", "IE": "Ireland",
    "DE": "Germany", "FR": "France", "NL": "Netherlands", "ES": "Spain", "IT": "Italy",
    "SE": "Sweden", "JP": "Japan", "AU": "Australia", "NZ": "New Zealand",
}
#: How many years ahead a card's expiry can be chosen.
EXPIRY_YEARS_AHEAD: Final = 15
_EMAIL: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def country_names() -> dict[str, str]:
    """The countries the shop ships to, named in the reader's language (CLDR's names:
    "Japan", "日本"), in the list's order."""
    territories = Locale.parse(str(i18n.current_language())).territories
    return {code: territories.get(code, english) for code, english in COUNTRIES.items()}


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


def _required(checked: Checked, form: FormData, name: str, max_length: int, *,
              missing: str, too_long: str) -> str:
    """A field that must be filled: `missing` when empty, `too_long` (with `{most}`) past
    `max_length` characters."""
    value = text(form, name)
    checked.values[name] = value[:max_length * 2]
    if not value:
        checked.errors[name] = missing
    elif len(value) > max_length:
        checked.errors[name] = too_long.format(most=max_length)
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
    street = _required(checked, form, "street", 200,
                       missing=_("Enter your street address."),
                       too_long=_("Your street address can be at most {most} characters long."))
    city = _required(checked, form, "city", 100,
                     missing=_("Enter your town or city."),
                     too_long=_("Your town or city can be at most {most} characters long."))
    state = text(form, "state")
    checked.values["state"] = state[:200]
    if len(state) > 100:
        checked.errors["state"] = _("The state or region can be at most {most} characters "
                                    "long.").format(most=100)
    postcode = _required(checked, form, "zip", 20,
                         missing=_("Enter your ZIP or postcode."),
                         too_long=_("Your ZIP or postcode can be at most {most} characters "
                                    "long."))
    country = text(form, "country").upper()
    checked.values["country"] = country if country in COUNTRIES else ""
    if country not in COUNTRIES:
        checked.errors["country"] = _("Choose the country to send the order to.")

    number = re.sub(r"[\s-]", "", text(form, "card_number"))
    if not number:
        checked.errors["card_number"] = _("Enter the card number.")
    elif not number.isdigit():
        checked.errors["card_number"] = _("A card number has only digits (spaces between "
                                          "them are fine).")
    elif not 12 <= len(number) <= 19 or not luhn_valid(number):
        checked.errors["card_number"] = _("This card number is not valid: check the digits.")

    month, year = whole_number(form, "expiry_month"), whole_number(form, "expiry_year")
    checked.values["expiry_month"] = str(month) if month else ""
    checked.values["expiry_year"] = str(year) if year else ""
    today = now or datetime.now(UTC)
    if month is None or not 1 <= month <= 12 or year is None or year not in expiry_years(now):
        checked.errors["expiry"] = _("Choose the month and year the card expires.")
    elif (year, month) < (today.year, today.month):
        checked.errors["expiry"] = _("This card has expired: use another card.")

    cvv = text(form, "cvv")
    if not re.fullmatch(r"[0-9]{3,4}", cvv):
        checked.errors["cvv"] = _("Enter the security code: the 3 or 4 digits printed on "
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
        checked.errors["email"] = _("Enter your e-mail address, like name@example.com.")
    password = form.get("password")
    if not isinstance(password, str) or not password:
        checked.errors["password"] = _("Enter your password.")
    elif len(password) > 200:
        checked.errors["password"] = _("That password is too long to be yours.")
    if checked.ok:
        checked.data = {"email": email, "password": password}
    return checked


def registration(form: FormData) -> Checked:
    checked = Checked()
    name = _required(checked, form, "name", 200, missing=_("Enter your name."),
                     too_long=_("Your name can be at most {most} characters long."))
    email = text(form, "email")
    checked.values["email"] = email[:254]
    if not _EMAIL.match(email) or len(email) > 254:
        checked.errors["email"] = _("Enter your e-mail address, like name@example.com.")
    password = form.get("password")
    if not isinstance(password, str) or len(password) < 8:
        checked.errors["password"] = _("Choose a password of at least 8 characters.")
    elif len(password) > 200:
        checked.errors["password"] = _("Choose a password of at most 200 characters.")
    if checked.ok:
        checked.data = {"name": name, "email": email, "password": password}
    return checked


# --- the admin's forms ----------------------------------------------------------------

#: Each form field's label, for the list of mistakes at the top of a form (translated
#: when the page shows it).
LABELS: Final = {
    "email": lazy_gettext("E-mail address"), "password": lazy_gettext("Password"),
    "name": lazy_gettext("Name"), "description": lazy_gettext("Description"),
    "price": lazy_gettext("Price"), "currency": lazy_gettext("Currency"),
    "category": lazy_gettext("Category"), "sku": lazy_gettext("SKU"),
    "inventory": lazy_gettext("Units in stock"), "image": lazy_gettext("Picture"),
    "delta": lazy_gettext("Units to add"), "reason": lazy_gettext("Reason"),
    "name_ja": lazy_gettext("Name in Japanese"),
    "description_ja": lazy_gettext("Description in Japanese"),
}

#: What to do about a field the form got wrong, in plain words (instead of the
#: validator's "Input should be a valid decimal").
FIELD_HELP: Final = {
    "name": lazy_gettext("Enter the product's name (at most 200 characters)."),
    "description": lazy_gettext("Keep the description under 5,000 characters."),
    "name_ja": lazy_gettext("Keep the Japanese name under 200 characters."),
    "description_ja": lazy_gettext("Keep the Japanese description under 5,000 characters."),
    "price": lazy_gettext("Enter a price above 0 with at most two decimals, such as 19.99."),
    "currency": lazy_gettext("Enter a currency as three capital letters, such as USD or EUR."),
    "category": lazy_gettext("Choose a category from the list."),
    "sku": lazy_gettext("Leave the SKU empty, or use at most 32 characters."),
    "inventory": lazy_gettext("Enter the units in stock as a whole number from 0 to "
                              "1,000,000."),
    "delta": lazy_gettext("Enter a whole number of units other than 0: 20 adds twenty, -3 "
                          "removes three."),
    "email": lazy_gettext("Enter your e-mail address."),
    "password": lazy_gettext("Enter your password."),
    "reason": lazy_gettext("Say why, in at most 200 characters, such as “restock from "
                           "supplier”."),
}


def field_help(name: str) -> str:
    """What to do about field `name`, in the reader's language."""
    return str(FIELD_HELP[name])

#: The product form's fields, as the API names them.
PRODUCT_FIELDS: Final = ("name", "description", "name_ja", "description_ja", "price",
                         "currency", "category", "sku")

Model = TypeVar("Model", bound=BaseModel)


def validated(model: type[Model], data: Mapping[str, Any]
              ) -> tuple[Model | None, dict[str, str]]:
    """The form's data as `model`, or the mistakes by field, in words."""
    try:
        return model.model_validate(data), {}
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "form"
            help_text = FIELD_HELP.get(name)
            errors.setdefault(name, str(help_text) if help_text is not None
                              else field_message(error))
        return None, errors


def refusal_errors(refused: Refused) -> dict[str, str]:
    """A service's "no" as a form error: next to the field it names, else on the form."""
    return {refused.field if refused.field in LABELS else "form": refused.detail}


def values(form: FormData, names: tuple[str, ...]) -> dict[str, str]:
    """What was typed in these fields, to show again."""
    return {name: text(form, name) for name in names}


def product(form: FormData, *, with_stock: bool) -> dict[str, Any]:
    """The product form's fields as the API takes them (empty optional ones left out)."""
    data: dict[str, Any] = {
        "name": text(form, "name"), "description": text(form, "description"),
        "price": text(form, "price").replace(",", "") or None,
        "currency": text(form, "currency").upper() or "USD",
        "category": text(form, "category") or None, "sku": text(form, "sku") or None,
        "name_ja": text(form, "name_ja") or None,
        "description_ja": text(form, "description_ja") or None}
    if with_stock:
        data["inventory"] = text(form, "inventory") or None
    return data


class FieldError(Exception):
    """A form field the page itself found wrong (the services never saw it)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


#: What the start of each image format the catalog takes looks like. Checked before a
#: product is created with its image, so a wrong file is refused with the form still
#: filled in; the catalog decodes and checks the image fully when it is sent.
_IMAGE_SIGNATURES: Final = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"),
                            (b"GIF87a", "image/gif"), (b"GIF89a", "image/gif"))


def image_type(data: bytes) -> str | None:
    """The image's media type by its first bytes (PNG, JPEG, GIF or WebP), or None."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return next((kind for signature, kind in _IMAGE_SIGNATURES
                 if data.startswith(signature)), None)


async def picture_from(form: FormData, limit: int, name: str = "image"
                       ) -> tuple[bytes, str] | None:
    """The picture chosen in the form (bytes, media type), or None if none was chosen.
    Raises `FieldError` for a file larger than `limit` bytes or not a picture."""
    upload = form.get(name)
    if not isinstance(upload, UploadFile) or not upload.filename:
        return None
    data = await upload.read(limit + 1)  # one byte more than allowed says "too large"
    if not data:
        raise FieldError(name, _("The chosen file is empty: choose a picture."))
    if len(data) > limit:
        raise FieldError(name, _("The picture is larger than {kib} KiB: choose a smaller "
                                 "one.").format(kib=i18n.format_number(limit // 1024)))
    media_type = image_type(data)
    if media_type is None:
        raise FieldError(name, _("This file is not a PNG, JPEG, WebP or GIF picture."))
    return data, media_type
