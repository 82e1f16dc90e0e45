"""The worker's settings: the language its staff read."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from kansoku.kit.i18n import Language
from kansoku.services.worker.settings import Settings


def test_the_staffs_language_comes_from_kansoku_lang_unless_the_worker_names_one(
        clean_env: pytest.MonkeyPatch) -> None:
    assert Settings().staff_language == Language.ENGLISH
    clean_env.setenv("KANSOKU_LANG", "ja_JP.UTF-8")
    assert Settings().staff_language == Language.JAPANESE
    clean_env.setenv("KANSOKU_WORKER_STAFF_LANGUAGE", "en")
    assert Settings().staff_language == Language.ENGLISH
    clean_env.setenv("KANSOKU_WORKER_STAFF_LANGUAGE", "fr")
    with pytest.raises(ValidationError, match="KANSOKU_WORKER_STAFF_LANGUAGE"):
        Settings()
