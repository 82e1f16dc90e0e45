"""The languages kansoku speaks, which one is current, and the catalogs read with the
standard library alone.

kit/i18n.py is what the code uses to speak (it re-exports what is here): it reads the
catalogs with Babel, which also writes numbers, money and dates as a language does. This
module is the part that needs no Babel, for a program that must start in milliseconds
and has only a few sentences to say: the containers' healthcheck (commands/health.py)
looks its words up with `plain_gettext`, which reads the catalog of a language the
first time one of its texts is asked for — and only then — with a reader of its own
(`read_catalog`; tests/kit/test_i18n.py checks it reads what Babel reads).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from contextvars import ContextVar
from enum import StrEnum
from functools import cache

# Types only, without importing `typing` (or `importlib.resources`, which imports it):
# 6 ms of a healthcheck's 60. (Type checkers take any `if TYPE_CHECKING:` as true.)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from importlib.resources.abc import Traversable
    from typing import Final


class Language(StrEnum):
    """The languages kansoku speaks, by their BCP 47 tag."""

    JAPANESE = "ja"
    ENGLISH = "en"


#: The language of the code's own texts, and of a reader who asks for none we have.
DEFAULT_LANGUAGE: Final = Language.ENGLISH

#: The catalogs' domain: one catalog per language for the whole package.
DOMAIN: Final = "kansoku"

_current: ContextVar[Language] = ContextVar("kansoku_language", default=DEFAULT_LANGUAGE)


def current_language() -> Language:
    return _current.get()


def set_language(language: Language) -> None:
    """Speak `language` in this context (a request, or the command line's run)."""
    _current.set(language)


def parse_language(value: str | None) -> Language | None:
    """The language a tag such as "ja", "ja-JP", "en_US.UTF-8" or "JA" names, if we
    speak it."""
    if not value:
        return None
    primary = value.strip().replace("_", "-").split("-")[0].split(".")[0].lower()
    try:
        return Language(primary)
    except ValueError:
        return None


def command_line_language(option: str | None = None,
                          environ: Mapping[str, str] = os.environ) -> Language:
    """The command line's language: `--lang`, KANSOKU_LANG, LC_ALL/LC_MESSAGES/LANG,
    else English."""
    for value in (option, environ.get("KANSOKU_LANG"), environ.get("LC_ALL"),
                  environ.get("LC_MESSAGES"), environ.get("LANG")):
        language = parse_language(value)
        if language is not None:
            return language
    return DEFAULT_LANGUAGE


def catalog_path(language: Language) -> Traversable:
    from importlib import resources  # when a catalog is read: see TYPE_CHECKING above

    return resources.files("kansoku").joinpath(f"locale/{language}/LC_MESSAGES/{DOMAIN}.po")


# --- the catalogs, plainly -------------------------------------------------------------

_ESCAPES: Final = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
_ESCAPE: Final = re.compile(r"\\(.)")


def _quoted(text: str) -> str:
    """The string a .po line quotes (`"…"`), its escapes undone."""
    inner = text.strip()[1:-1]
    return _ESCAPE.sub(lambda match: _ESCAPES.get(match[1], match[1]), inner)


def read_catalog(po_text: str) -> dict[str, str]:
    """A .po catalog's translations, message -> translation: the singular messages that
    have one and are not marked fuzzy (what gettext would use). Entries are separated
    by blank lines, as Babel writes them (`scripts/messages`)."""
    found: dict[str, str] = {}
    for entry in po_text.split("\n\n"):
        fields: dict[str, str] = {}
        field: str | None = None
        fuzzy = False
        for line in entry.splitlines():
            if line.startswith("#"):
                fuzzy = fuzzy or (line.startswith("#,") and "fuzzy" in line)
            elif line.startswith('"') and field is not None:
                fields[field] += _quoted(line)
            elif line.strip():
                field, _, rest = line.partition(" ")
                fields[field] = _quoted(rest)
        message, translation = fields.get("msgid"), fields.get("msgstr")
        if message and translation and not fuzzy and "msgid_plural" not in fields:
            found[message] = translation
    return found


@cache
def _plain_catalog(language: Language) -> Mapping[str, str]:
    if language == DEFAULT_LANGUAGE:  # the code's own text: nothing to read
        return {}
    return read_catalog(catalog_path(language).read_text("utf-8"))


def plain_gettext(message: str) -> str:
    """`message` in the current language, looked up without Babel (itself when the
    catalog has no translation)."""
    return _plain_catalog(current_language()).get(message, message)
