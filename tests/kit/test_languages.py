"""The languages without Babel (kit/languages.py): its own reader of the catalogs, which
the containers' healthcheck uses, reads each translation as Babel does."""

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


def test_escapes_continuations_fuzzy_and_plurals() -> None:
    po_text = ('msgid ""\nmsgstr ""\n"Language: ja\\n"\n\n'
               'msgid "Hello {name},\\n"\n"\\"quoted\\" \\\\ tab\\t"\nmsgstr ""\n"こんにちは\\n"\n'
               '"{name} さん"\n\n'
               '#, fuzzy\nmsgid "guessed"\nmsgstr "推測"\n\n'
               'msgid "{count} item"\nmsgid_plural "{count} items"\nmsgstr[0] "{count} 個"\n\n'
               'msgid "untranslated"\nmsgstr ""\n')
    assert languages.read_catalog(po_text) == {
        'Hello {name},\n"quoted" \\ tab\t': "こんにちは\n{name} さん"}


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
