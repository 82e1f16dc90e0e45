"""The languages without Babel (kit/languages.py): its own reader of the catalogs, which
the containers' healthcheck and every page and command use, reads each translation as
Babel does, plural forms too."""

from __future__ import annotations

import pytest
from babel.messages.pofile import read_po

from kansoku.kit import languages
from kansoku.kit.languages import Language


def test_the_plain_reader_reads_every_translation_babel_reads() -> None:
    path = languages.catalog_path(Language.JAPANESE)
    with path.open("rb") as po_file:
        catalog = read_po(po_file, locale="ja")
    by_babel = {message.id: message.string for message in catalog
                if message.id and isinstance(message.id, str) and message.string
                and not message.fuzzy}
    assert languages.read_catalog(path.read_text("utf-8")) == by_babel
    assert len(by_babel) > 1000


def test_the_plain_reader_reads_every_plural_babel_reads() -> None:
    path = languages.catalog_path(Language.JAPANESE)
    with path.open("rb") as po_file:
        catalog = read_po(po_file, locale="ja")
    by_babel = {message.id[0]: tuple(message.string) for message in catalog
                if isinstance(message.id, tuple) and isinstance(message.string, tuple)
                and any(message.string) and not message.fuzzy}
    assert languages.read_plurals(path.read_text("utf-8")) == by_babel
    assert len(by_babel) > 10 and all(len(forms) == 1 for forms in by_babel.values())


def test_a_catalog_answers_as_gettext_does() -> None:
    po_text = ('msgid "{count} item"\nmsgid_plural "{count} items"\nmsgstr[0] "{count} 個"\n\n'
               'msgid "{count} box"\nmsgid_plural "{count} boxes"\nmsgstr[0] ""\n\n'
               'msgid "Hello"\nmsgstr "こんにちは"\n')
    japanese = languages.Catalog(Language.JAPANESE, languages.read_catalog(po_text),
                                 languages.read_plurals(po_text))
    assert japanese.gettext("Hello") == "こんにちは" and japanese.gettext("Bye") == "Bye"
    assert [japanese.ngettext("{count} item", "{count} items", n) for n in (1, 2)] == [
        "{count} 個", "{count} 個"]
    # Untranslated: the code's own words, singular for one as English has it.
    assert [japanese.ngettext("{count} box", "{count} boxes", n) for n in (1, 2)] == [
        "{count} box", "{count} boxes"]
    english = languages.catalog(Language.ENGLISH)
    assert [english.ngettext("{count} item", "{count} items", n) for n in (0, 1, 2)] == [
        "{count} items", "{count} item", "{count} items"]


def test_escapes_continuations_fuzzy_and_plurals() -> None:
    po_text = ('msgid ""\nmsgstr ""\n"Language: ja\\n"\n\n'
               'msgid "Hello {name},\\n"\n"\\"quoted\\" \\\\ tab\\t"\nmsgstr ""\n"こんにちは\\n"\n'
               '"{name} さん"\n\n'
               '#, fuzzy\nmsgid "guessed"\nmsgstr "推測"\n\n'
               'msgid "{count} item"\nmsgid_plural "{count} items"\nmsgstr[0] "{count} 個"\n\n'
               'msgid "untranslated"\nmsgstr ""\n')
    assert languages.read_catalog(po_text) == {
        'Hello {name},\n"quoted" \\ tab\t': "こんにちは\n{name} さん"}
    assert languages.read_plurals(po_text) == {"{count} item": ("{count} 個",)}


def test_plain_gettext_speaks_the_current_language(japanese: None) -> None:
    assert languages.plain_gettext("error: {message}") == "エラー: {message}"
    assert languages.plain_gettext("no such text, surely") == "no such text, surely"
    languages.set_language(Language.ENGLISH)
    assert languages.plain_gettext("error: {message}") == "error: {message}"


@pytest.mark.parametrize(("environment", "expected"), [
    ({"KANSOKU_LANG": "ja", "LANG": "en_US.UTF-8"}, Language.JAPANESE),
    ({"LANG": "ja_JP.UTF-8"}, Language.JAPANESE),
    ({"KANSOKU_LANG": "fr", "LANG": "C.UTF-8"}, Language.ENGLISH),
])
def test_the_environment_names_the_language(environment: dict[str, str],
                                            expected: Language) -> None:
    assert languages.command_line_language(None, environment) == expected
