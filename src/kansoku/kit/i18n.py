"""Two languages, Japanese and English, through gettext catalogs.

Every text a person reads — pages, e-mails, the command line's help and messages — is
written in English in the code and looked up in the catalog of the reader's language:
`src/kansoku/locale/<language>/LC_MESSAGES/kansoku.po`, kept up to date with
`scripts/messages` (Babel's extract and update). The catalogs are read as they are, at
the first lookup, by kit/languages.py's reader (the standard library's: Babel's reader
took longer than the command line's whole start): no compiled `.mo` file to build or to
forget, and English, the code's own text, is never read.

Which language:
- a page: the `kansoku_lang` cookie (set by the language switch every page has, through
  `GET /language/{language}`), else the browser's `Accept-Language`, else English
  (`LanguageMiddleware` sets it for the request);
- the command line: `--lang`, else `KANSOKU_LANG`, else the locale's `LANG` (ja_JP.UTF-8
  is Japanese), else English.

`gettext` (also `_`) and `ngettext` answer in the current language, and `lazy_gettext`
makes a text that is translated each time it is shown (for module constants, read before
any reader is known). A text kept for a reader not known yet (an alert's summary, written
in a background task and read later on a page or in a notification) is marked with `N_`
(or `Nn_` with its plural) and translated when it is read, with `translated_in` (or
`translated_plural_in`) in the reader's language. Numbers, money and dates follow the language too
(`format_money`, `format_number`, `format_datetime`, with Babel's CLDR data).

Babel is imported only where it is used — formatting, and `lazy_gettext`'s proxy: the
command line imports this module to start, and needs neither to show its help.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qsl, quote

# The languages, which one is current and the catalogs need no Babel: they live in
# kit/languages.py (which the containers' healthcheck uses alone), and are part of this
# module's API.
from kansoku.kit.languages import DEFAULT_LANGUAGE as DEFAULT_LANGUAGE
from kansoku.kit.languages import DOMAIN as DOMAIN
from kansoku.kit.languages import Catalog, _current
from kansoku.kit.languages import Language as Language
from kansoku.kit.languages import catalog as catalog
from kansoku.kit.languages import catalog_path as catalog_path
from kansoku.kit.languages import command_line_language as command_line_language
from kansoku.kit.languages import current_language as current_language
from kansoku.kit.languages import parse_language as parse_language
from kansoku.kit.languages import set_language as set_language

if TYPE_CHECKING:
    # Types only: the command line imports this module, and no web framework.
    from datetime import datetime
    from decimal import Decimal

    from babel import Locale
    from babel.support import LazyProxy
    from starlette.types import ASGIApp, Message, Receive, Scope, Send


#: The cookie that keeps a reader's choice of language (a year; not a secret).
LANGUAGE_COOKIE: Final = "kansoku_lang"
LANGUAGE_COOKIE_SECONDS: Final = 365 * 24 * 3600

#: Each language's name in itself, as the language switch shows it.
LANGUAGE_NAMES: Final[Mapping[Language, str]] = {
    Language.JAPANESE: "日本語", Language.ENGLISH: "English"}

def from_accept_language(header: str | None) -> Language | None:
    """The language a browser's `Accept-Language` prefers most among ours (q-values
    honoured; q=0 means "not this one")."""
    best: tuple[float, int, Language] | None = None
    for position, part in enumerate((header or "").split(",")):
        tag, _, parameters = part.strip().partition(";")
        weight = 1.0
        for parameter in parameters.split(";"):
            name, _, value = parameter.strip().partition("=")
            if name.strip() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        language = parse_language(tag)
        if language is None or weight <= 0:
            continue
        # The highest weight wins; between equals, the one the browser listed first.
        if best is None or (weight, -position) > (best[0], best[1]):
            best = (weight, -position, language)
    return best[2] if best else None


# --- the catalogs --------------------------------------------------------------------

def translations(language: Language) -> Catalog:
    """`language`'s catalog, read from its .po file the first time it is asked for
    (`languages.catalog`). English is the code's own text, which its catalog leaves
    untranslated: nothing to read (the command line, English unless asked otherwise,
    starts the sooner)."""
    return catalog(language)


def gettext(message: str) -> str:
    """`message` in the current language (itself when the catalog has no translation)."""
    return catalog(current_language()).gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    """The form for `count` in the current language (Japanese has one form)."""
    return catalog(current_language()).ngettext(singular, plural, count)


_ = gettext


def lazy_gettext(message: str) -> LazyProxy:
    """`message`, translated each time it is used as text: for texts defined when the
    module loads, before anyone's language is known."""
    from babel.support import LazyProxy  # Babel's proxy: pages use it, the CLI does not

    return LazyProxy(gettext, message, enable_cache=False)


def translated_in(language: Language, message: str) -> str:
    """`message` in `language`, whatever the current one is (e-mails to a customer)."""
    return catalog(language).gettext(message)


def translated_plural_in(language: Language, singular: str, plural: str, count: int) -> str:
    """The form for `count` in `language`, whatever the current one is."""
    return catalog(language).ngettext(singular, plural, count)


def N_(message: str) -> str:
    """`message` as it is, marked for the catalogs (Babel's `N_`, gettext_noop): a text
    written down now and translated later, when its reader is known — an alert's reason,
    kept and then shown to whoever reads it (`translated_in`)."""
    return message


def Nn_(singular: str, plural: str) -> tuple[str, str]:
    """A text with a plural form, marked for the catalogs as `ngettext` is, and
    translated later (`translated_plural_in`)."""
    return singular, plural


class Phrase:
    """Words said later, in a language not known yet: an English template (marked with
    `N_`) and the values it names, which may be phrases themselves. A chaos experiment's
    report is made of them: people read it in theirs (`str(phrase)`: the current
    language), programs read its JSON in English (`phrase.english`).

        Phrase(N_("stop {component}"), component="payments")

    Without values the template is not formatted: `Phrase(text)` is a text someone
    wrote (a shipped experiment's probe name), translated when the catalogs have it and
    shown as written otherwise, braces and all.
    """

    __slots__ = ("template", "values")

    def __init__(self, template: str, **values: object) -> None:
        self.template = template
        self.values = values

    def said_in(self, language: Language) -> str:
        template = translated_in(language, self.template)
        if not self.values:
            return template
        return template.format(**{
            name: value.said_in(language) if isinstance(value, Phrase) else value
            for name, value in self.values.items()})

    @property
    def english(self) -> str:
        return self.said_in(DEFAULT_LANGUAGE)

    def __str__(self) -> str:
        return self.said_in(current_language())

    def __repr__(self) -> str:
        return f"Phrase({self.english!r})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Phrase) and self.template == other.template
                and self.values == other.values)

    def __hash__(self) -> int:
        return hash((self.template, tuple(sorted(self.values.items(), key=lambda item:
                                                  item[0]))))


#: Text to be said later: a `Phrase`, or a text that reads the same in every language (a
#: name someone wrote, an error a library gave).
Words = Phrase | str


def in_english(words: Words) -> str:
    """`words` as a program reads them (JSON): English."""
    return words.english if isinstance(words, Phrase) else words


class PhrasedError(Exception):
    """An error whose message is `Words`: `str(error)` says it in the current language,
    `error.words` keeps it to be said later (in English, in a report's JSON)."""

    def __init__(self, words: Words) -> None:
        super().__init__(words)
        self.words = words

    def __str__(self) -> str:
        return str(self.words)


# --- numbers, money and dates ----------------------------------------------------------

def _locale() -> Locale:
    from babel import Locale

    return Locale.parse(str(current_language()))


# Babel's `numbers` and `dates` are imported where they are used: the command line
# imports this module to start, and formats little.

def format_number(value: float | Decimal | int) -> str:
    from babel import numbers

    return numbers.format_decimal(value, locale=_locale())


def format_money(amount: Any, currency: str | None = "USD") -> str:
    """`amount` (a decimal string, as the API gives it, or a number) in `currency`, as
    the current language writes money (CLDR's patterns: "$1,299.99" and "€5.00" in
    English, "$1,299.99" and "€5.00" in Japanese too, "￥1,300" for yen); an amount that
    is not a number is shown as it came."""
    from decimal import Decimal, InvalidOperation

    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        return str(amount)
    from babel import numbers

    return numbers.format_currency(value, currency or "USD", locale=_locale())


def format_datetime(moment: datetime, format: str = "medium") -> str:
    """`moment` as the current language writes a date and time."""
    from babel import dates

    return dates.format_datetime(moment, format=format, locale=_locale())


def format_date(moment: datetime, format: str = "medium") -> str:
    from babel import dates

    return dates.format_date(moment, format=format, locale=_locale())


# --- pages ---------------------------------------------------------------------------

def install(environment: Any) -> None:
    """Give a Jinja environment `{% trans %}`, `_()`, `gettext`, `ngettext` in the
    current language, the filters `money`, `number`, `datetime`, `date` and
    `translated` (for texts marked elsewhere), and the
    globals `language` (the current one) and `languages` (the switch's choices)."""
    environment.add_extension("jinja2.ext.i18n")
    environment.install_gettext_callables(gettext, ngettext, newstyle=True)
    # `translated`: a text the template does not write itself (a fault flag's words,
    # marked where they are defined) in the reader's language. Not `_()`: Jinja formats
    # what that returns with %, and such a text may hold a "25%".
    environment.filters.update(money=format_money, number=format_number,
                               datetime=format_datetime, date=format_date,
                               translated=gettext)
    environment.globals.update(language=current_language, languages=LANGUAGE_NAMES)


def switch_url(language: Language, current_path: str) -> str:
    """Where the language switch sends a reader to choose `language` and come back."""
    return f"/language/{language}?next={quote(current_path, safe='/')}"


def safe_next(path: str | None) -> str:
    """A local path to go back to after switching; anything else (another site, a
    scheme, a protocol-relative //host) goes to the home page."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path


#: The language switch's path: GET /language/ja?next=/cart.
SWITCH_PREFIX: Final = "/language/"


class LanguageMiddleware:
    """Sets each HTTP request's language (cookie, then Accept-Language, then English)
    and says it in `Content-Language`; answers vary by those two headers. It also
    answers the language switch, `GET /language/{language}?next=/path`: the cookie set
    and a redirect back (to a local path only)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        language = request_language(scope.get("headers", ()))
        token = _current.set(language)
        if scope["path"].startswith(SWITCH_PREFIX) and scope["method"] in ("GET", "HEAD"):
            try:
                await _switch(scope, send)
            finally:
                _current.reset(token)
            return

        async def send_with_language(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"content-language", str(language).encode()))
                headers.append((b"vary", b"Accept-Language, Cookie"))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_language)
        finally:
            _current.reset(token)


async def _switch(scope: Scope, send: Send) -> None:
    tag = scope["path"][len(SWITCH_PREFIX):]
    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
    if tag not in set(Language):
        body = (_("No such language: {tag}. Choose one of: {choices}.").format(
            tag=tag, choices=", ".join(Language)) + "\n").encode()
        await send({"type": "http.response.start", "status": 404, "headers": [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
        return
    cookie = (f"{LANGUAGE_COOKIE}={tag}; Path=/; Max-Age={LANGUAGE_COOKIE_SECONDS}; "
              "SameSite=Lax")
    back = quote(safe_next(query.get("next")), safe="/?=&%#:;,+@")
    await send({"type": "http.response.start", "status": 303, "headers": [
        (b"location", back.encode()), (b"set-cookie", cookie.encode()),
        (b"cache-control", b"no-store"), (b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


def request_language(headers: Iterable[tuple[bytes, bytes]]) -> Language:
    """The language a request asks for: its cookie's choice, else Accept-Language."""
    cookie_header = accept = ""
    for name, value in headers:
        if name == b"cookie":
            cookie_header += ";" + value.decode("latin-1")
        elif name == b"accept-language":
            accept = value.decode("latin-1")
    for part in cookie_header.split(";"):
        cookie_name, _, cookie_value = part.strip().partition("=")
        if cookie_name == LANGUAGE_COOKIE:
            chosen = parse_language(cookie_value)
            if chosen is not None:
                return chosen
    return from_accept_language(accept) or DEFAULT_LANGUAGE
