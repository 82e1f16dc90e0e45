"""The languages kansoku speaks, which one is current, and their catalogs, read with the
standard library alone.

kit/i18n.py is what the code uses to speak (it re-exports what is here, and adds lazy
texts, phrases, and numbers, money and dates written as a language does, with Babel's
CLDR data). This module needs no Babel: the containers' healthcheck (commands/health.py)
and the command line must start in milliseconds, and Babel's reader of a catalog would
cost them more than the reading. A language's catalog is read the first time one of its
texts is asked for — and only then — by a reader of its own (`read_catalog`,
`read_plurals`; tests/kit/test_languages.py checks they read what Babel reads); English
is the code's own text, and has nothing to read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
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


def _entries(po_text: str) -> Iterator[tuple[dict[str, str], bool]]:
    """A .po catalog's entries: each one's fields (msgid, msgid_plural, msgstr,
    msgstr[0] …, their escapes undone) and whether it is marked fuzzy. Entries are
    separated by blank lines, as Babel writes them (`scripts/messages`)."""
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
        yield fields, fuzzy


def read_catalog(po_text: str) -> dict[str, str]:
    """A .po catalog's translations, message -> translation: the singular messages that
    have one and are not marked fuzzy (what gettext would use)."""
    return _singulars(_entries(po_text))


def read_plurals(po_text: str) -> dict[str, tuple[str, ...]]:
    """A .po catalog's messages with a plural, singular message -> its forms (msgstr[0],
    msgstr[1] …: as many as the language has), for those translated and not marked
    fuzzy. A form left empty is "" (`Catalog.ngettext` says the code's own words for it,
    as gettext does)."""
    return _plurals(_entries(po_text))


def _singulars(entries: Iterable[tuple[dict[str, str], bool]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for fields, fuzzy in entries:
        message, translation = fields.get("msgid"), fields.get("msgstr")
        if message and translation and not fuzzy and "msgid_plural" not in fields:
            found[message] = translation
    return found


def _plurals(entries: Iterable[tuple[dict[str, str], bool]]) -> dict[str, tuple[str, ...]]:
    found: dict[str, tuple[str, ...]] = {}
    for fields, fuzzy in entries:
        message = fields.get("msgid")
        if not message or fuzzy or "msgid_plural" not in fields:
            continue
        forms: list[str] = []
        while (form := fields.get(f"msgstr[{len(forms)}]")) is not None:
            forms.append(form)
        if any(forms):
            found[message] = tuple(forms)
    return found


def plural_form(language: Language, count: int) -> int:
    """Which of `language`'s plural forms (msgstr[n]) says `count` things: the catalogs'
    Plural-Forms, written here once for the two languages we speak."""
    match language:
        case Language.JAPANESE:  # nplurals=1; plural=0: one form for every number
            return 0
        case Language.ENGLISH:  # nplurals=2; plural=(n != 1)
            return 0 if count == 1 else 1
        case _:
            raise AssertionError(f"no plural rule for {language!r}")


class Catalog:
    """A language's translations, read from its catalog: what gettext's `gettext` and
    `ngettext` answer, each text itself (the code's English) where it has none."""

    __slots__ = ("language", "messages", "plurals")

    def __init__(self, language: Language, messages: Mapping[str, str],
                 plurals: Mapping[str, tuple[str, ...]]) -> None:
        self.language = language
        self.messages = messages
        self.plurals = plurals

    def gettext(self, message: str) -> str:
        return self.messages.get(message, message)

    def ngettext(self, singular: str, plural: str, count: int) -> str:
        forms = self.plurals.get(singular, ())
        index = plural_form(self.language, count)
        if index < len(forms) and forms[index]:
            return forms[index]
        return singular if count == 1 else plural


@cache
def catalog(language: Language) -> Catalog:
    """`language`'s catalog, read from its .po file the first time it is asked for.
    English is the code's own text, which its catalog leaves untranslated: nothing to
    read."""
    if language == DEFAULT_LANGUAGE:
        return Catalog(language, {}, {})
    entries = list(_entries(catalog_path(language).read_text("utf-8")))  # parsed once
    return Catalog(language, _singulars(entries), _plurals(entries))


def plain_gettext(message: str) -> str:
    """`message` in the current language (itself when the catalog has no translation):
    `i18n.gettext` without importing kit/i18n.py."""
    return catalog(current_language()).gettext(message)
