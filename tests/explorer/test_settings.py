"""The explorer's settings that are more than a value: the language it speaks when no
reader asks (its notifications)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from kansoku.explorer.settings import Settings
from kansoku.kit.i18n import Language


def test_the_explorers_own_language_comes_from_its_setting_else_kansoku_lang(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KANSOKU_EXPLORER_LANGUAGE", raising=False)
    monkeypatch.delenv("KANSOKU_LANG", raising=False)
    assert Settings().language == Language.ENGLISH
    monkeypatch.setenv("KANSOKU_LANG", "ja_JP.UTF-8")
    assert Settings().language == Language.JAPANESE
    monkeypatch.setenv("KANSOKU_EXPLORER_LANGUAGE", "en")
    assert Settings().language == Language.ENGLISH, "the explorer's own setting first"


def test_a_language_it_does_not_speak_is_a_clear_error(monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    monkeypatch.setenv("KANSOKU_EXPLORER_LANGUAGE", "fr")
    with pytest.raises(ValidationError, match="'fr' is not a language the explorer "
                                              "speaks: ja or en"):
        Settings()


def test_a_vendor_intake_set_empty_is_off_and_a_bad_port_is_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Compose and the chart pass every variable through, empty when unset: an empty
    intake port turns that intake off (as documented), it is not a number to parse."""
    monkeypatch.setenv("KANSOKU_EXPLORER_XRAY_PORT", "")
    monkeypatch.setenv("KANSOKU_EXPLORER_EMF_PORT", " ")
    monkeypatch.setenv("KANSOKU_EXPLORER_NEWRELIC_PORT", "9443")
    settings = Settings()
    assert (settings.xray_port, settings.emf_port, settings.newrelic_port) == (None, None, 9443)
    monkeypatch.setenv("KANSOKU_EXPLORER_NEWRELIC_PORT", "70000")
    with pytest.raises(ValidationError, match="newrelic_port"):
        Settings()
