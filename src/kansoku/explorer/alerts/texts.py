"""What alerting says to people — an alert's summary, why it resolved, its value and
threshold — kept so that each reader gets it in their own language.

The evaluator writes these when it evaluates a rule, in a background task: nobody is
reading then, and the same alert is later shown on a Japanese reader's Alerts page, to
an English one through the API, and sent to a webhook in the explorer's own language.
So a text is kept as `Sentence`s — each its English words with {placeholders} and the
values that fill them (names as they are, measurements as a number and its `Measure`;
`models.py` declares them) —
and written out only when it is read (`say`), in the reader's language.

Where a sentence's words come from decides whether they are translated:

- kansoku's own (why an alert resolved, the fault flag its failed requests carry) are
  marked with `N_` / `Nn_` where they are written, so the catalogs hold them;
- a rules file's summary is translated when it is, word for word, the packaged default
  rules' (`rules.in_language`), whose texts the catalogs hold too; a user's own words
  are shown as written.

Alerts kept before this have plain English text (`AlertRow.summary`, the `resolution`
in their details, the history's `summary` and `reason`) and no `AlertTexts`: that text
is shown as it is.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from typing import assert_never

from kansoku.explorer.alerts.models import Measure, Origin, Quantity, Sentence
from kansoku.explorer.alerts.rules import in_language
from kansoku.kit.durations import format_duration
from kansoku.kit.i18n import (
    N_,
    Language,
    Nn_,
    current_language,
    translated_in,
    translated_plural_in,
)

# --- building them ----------------------------------------------------------------------


def sentence(text: str, /, **values: str | Quantity) -> Sentence:
    """One of kansoku's sentences: `text` marked with `N_` where it is written."""
    return Sentence(text=text, values=values)


def counted(forms: tuple[str, str], by: str, /, **values: str | Quantity) -> Sentence:
    """One of kansoku's sentences whose form follows the count `values[by]`: `forms`
    marked with `Nn_` where they are written."""
    singular, plural = forms
    return Sentence(text=singular, plural=plural, count=by, values=values)


def summary(text: str, values: Mapping[str, str | Quantity]) -> Sentence:
    """A rule's summary from its rules file, with its placeholders' values."""
    return Sentence(text=text, values=dict(values), origin=Origin.RULES_FILE)


# --- writing them out -------------------------------------------------------------------


def written(quantity: Quantity, language: Language | None = None) -> str:
    """`quantity` as `language` (the reader's, by default) writes it."""
    language = language or current_language()
    amount = quantity.amount
    match quantity.measure:
        case Measure.SHARE:
            return f"{100 * amount:.1f} %"
        case Measure.SECONDS:
            return f"{amount:.2f} s" if amount >= 1 else f"{amount * 1000:.0f} ms"
        case Measure.CORES:
            return translated_in(language, N_("{n} cores")).format(n=f"{amount:.2f}")
        case Measure.MIB:
            return f"{amount:.0f} MiB"
        case Measure.CONNECTIONS:
            whole = round(amount)
            return translated_plural_in(language, *Nn_("{n} connection", "{n} connections"),
                                        whole).format(n=whole)
        case Measure.BURN_RATE:
            return translated_in(language, N_("{n}x")).format(n=f"{amount:.1f}")
        case Measure.FACTOR:
            return translated_in(language, N_("{n}x")).format(n=f"{amount:g}")
        case Measure.COUNT:
            return f"{amount:g}"
        case Measure.DURATION:
            return format_duration(amount)
        case _:
            assert_never(quantity.measure)


class _Fields(dict[str, str]):
    """A sentence's placeholders: one it has no value for stays as written."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _words(said: Sentence, language: Language) -> str:
    match said.origin:
        case Origin.KANSOKU if said.plural is not None and said.count is not None:
            counter = said.values.get(said.count)
            count = round(counter.amount) if isinstance(counter, Quantity) else 0
            return translated_plural_in(language, said.text, said.plural, count)
        case Origin.KANSOKU:
            return translated_in(language, said.text)
        case Origin.RULES_FILE:
            return in_language(said.text, language)
        case _:
            assert_never(said.origin)


def _one(said: Sentence, language: Language) -> str:
    text = _words(said, language)
    fields = _Fields({name: value if isinstance(value, str) else written(value, language)
                      for name, value in said.values.items()})
    try:
        return string.Formatter().vformat(text, (), fields).strip()
    except (ValueError, KeyError, IndexError, AttributeError):
        # A rules file's summary is checked when it is loaded; never fail a page on one.
        return text.strip()


def say(sentences: Sequence[Sentence], language: Language | None = None) -> str:
    """`sentences` one after another, in `language` (the reader's, by default): a
    space between them, none after a Japanese full stop."""
    language = language or current_language()
    text = ""
    for said in sentences:
        one = _one(said, language)
        text += (" " if text and not text.endswith("。") else "") + one
    return text
