"""Two languages through gettext catalogs (kit/i18n.py): which language a reader gets,
the language switch, formats by locale — and the catalogs themselves: every text marked
in the code is in both, and Japanese translates each."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from kansoku.kit import i18n
from kansoku.kit.i18n import Language

ROOT = Path(__file__).resolve().parents[2]
KEYWORDS = {"_": None, "gettext": None, "lazy_gettext": None, "ngettext": (1, 2),
            "N_": None}


@pytest.mark.parametrize(("header", "expected"), [
    ("ja,en-US;q=0.9,en;q=0.8", Language.JAPANESE),
    ("en-US,en;q=0.9,ja;q=0.8", Language.ENGLISH),
    ("fr-FR,ja;q=0.5,en;q=0.4", Language.JAPANESE),   # the best of ours, not the first
    ("en;q=0.2, ja-JP;q=0.7", Language.JAPANESE),
    ("ja;q=0, en", Language.ENGLISH),                  # q=0: "not this one"
    ("de, fr", None), ("", None), (None, None), ("ja;q=abc", None),
])
def test_accept_language_picks_the_best_of_ours(header: str | None,
                                                expected: Language | None) -> None:
    assert i18n.from_accept_language(header) == expected


def test_the_command_line_language_comes_from_the_option_then_the_environment() -> None:
    assert i18n.command_line_language("ja", {"KANSOKU_LANG": "en"}) == Language.JAPANESE
    assert i18n.command_line_language(None, {"KANSOKU_LANG": "ja"}) == Language.JAPANESE
    assert i18n.command_line_language(None, {"LANG": "ja_JP.UTF-8"}) == Language.JAPANESE
    assert i18n.command_line_language(None, {"LANG": "C.UTF-8"}) == Language.ENGLISH
    assert i18n.command_line_language(None, {}) == Language.ENGLISH


def test_texts_and_formats_follow_the_current_language() -> None:
    message = SWITCH_MESSAGE
    i18n.set_language(Language.JAPANESE)
    try:
        assert "という言語はありません" in i18n.gettext(message)
        assert i18n.format_money("1299.5", "JPY") == "￥1,300"
        assert i18n.format_date(datetime(2026, 12, 7, tzinfo=UTC)) == "2026/12/07"
        lazy = i18n.lazy_gettext(message)
        assert "という言語" in str(lazy)
    finally:
        i18n.set_language(Language.ENGLISH)
    assert i18n.gettext(message) == message
    assert str(lazy) == message, "a lazy text is translated when it is shown"
    assert i18n.format_money("1299.5", "USD") == "$1,299.50"
    assert i18n.format_money("not a number") == "not a number"
    assert i18n.translated_in(Language.JAPANESE, message) != message


SWITCH_MESSAGE = "No such language: {tag}. Choose one of: {choices}."


def _app() -> Starlette:
    async def page(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"{i18n.current_language()} {i18n.gettext(SWITCH_MESSAGE)}")
    app = Starlette(routes=[Route("/page", page)])
    app.add_middleware(i18n.LanguageMiddleware)
    return app


async def test_a_page_speaks_the_cookies_choice_else_the_browsers() -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()),
                                 base_url="http://shop.test") as browser:
        answer = await browser.get("/page", headers={"Accept-Language": "ja,en;q=0.5"})
        assert answer.text.startswith("ja ") and "言語" in answer.text
        assert answer.headers["content-language"] == "ja"
        assert "Accept-Language" in answer.headers["vary"]
        assert (await browser.get("/page")).text.startswith("en ")
        # The switch: a cookie, and back to the page the reader was on.
        switched = await browser.get("/language/ja", params={"next": "/page?x=1"})
        assert switched.status_code == 303 and switched.headers["location"] == "/page?x=1"
        assert "kansoku_lang=ja" in switched.headers["set-cookie"]
        chosen = await browser.get("/page", headers={"Accept-Language": "en"})
        assert chosen.text.startswith("ja "), "the choice beats the browser's header"


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/",
                                    "/\\evil.example", "javascript:alert(1)", ""])
async def test_the_switch_goes_back_only_to_a_local_page(target: str) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()),
                                 base_url="http://shop.test") as browser:
        answer = await browser.get("/language/en", params={"next": target})
    assert answer.status_code == 303 and answer.headers["location"] == "/"


async def test_an_unknown_language_is_a_plain_404_naming_the_choices() -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()),
                                 base_url="http://shop.test") as browser:
        answer = await browser.get("/language/fr", headers={"Accept-Language": "ja"})
    assert answer.status_code == 404
    assert "fr" in answer.text and "ja, en" in answer.text and "言語" in answer.text


def _marked_texts() -> set[str]:
    """Every text the code marks for translation, found as scripts/messages finds it."""
    found: set[str] = set()
    method_map = [("src/kansoku/**.py", "python"),
                  ("src/kansoku/**/templates/**.html", "jinja2"),
                  ("src/kansoku/**/static/**.js", "javascript"),
                  ("src/kansoku/chaos/experiments/*.yaml",
                   "kansoku.chaos.experiment.extract_shipped_texts")]
    options = {"src/kansoku/**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    for _filename, _line, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options, keywords=KEYWORDS):
        found.add(message if isinstance(message, str) else message[0])
    return found


def _catalog(language: Language) -> dict[str, object]:
    with i18n.catalog_path(language).open("rb") as po_file:
        catalog = read_po(po_file, locale=str(language))
    return {message.id if isinstance(message.id, str) else message.id[0]: message.string
            for message in catalog if message.id}


def test_every_marked_text_is_in_both_catalogs_and_translated_to_japanese() -> None:
    marked = _marked_texts()
    japanese, english = _catalog(Language.JAPANESE), _catalog(Language.ENGLISH)
    assert marked, "the extraction found nothing: its settings are wrong"
    missing = {language: sorted(marked - set(catalog)) for language, catalog in
               (("ja", japanese), ("en", english)) if marked - set(catalog)}
    assert not missing, f"run scripts/messages, then translate: {missing}"
    assert set(japanese) == set(english), "the catalogs hold different texts"
    untranslated = sorted(text for text, translation in japanese.items()
                          if not translation or (isinstance(translation, tuple)
                                                 and not all(translation)))
    assert not untranslated, f"no Japanese yet for: {untranslated}"
