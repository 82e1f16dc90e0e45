"""The drill catalogue: every drill reads, every fault category of the fault catalogue
has a drill, the seed picks the fault, and the right answer comes from the catalogue."""

from __future__ import annotations

import pytest

from kansoku.drills import model
from kansoku.faults import catalogue
from kansoku.faults.catalogue import FaultCategory


def test_every_category_of_the_fault_catalogue_has_a_drill() -> None:
    drills = model.shipped()
    covered = set().union(*(drill.categories() for drill in drills.values()))
    in_catalogue = {flag.category for flag in catalogue.FLAGS.values()}
    assert in_catalogue - covered == set()
    # A stopped service is an outage, which the catalogue's paymentUnreachable is too.
    assert FaultCategory.OUTAGE in covered


def test_ten_fault_drills_and_two_where_nothing_is_wrong() -> None:
    drills = model.shipped().values()
    assert len([drill for drill in drills if drill.has_fault]) >= 10
    assert len([drill for drill in drills if not drill.has_fault]) >= 2
    for drill in drills:
        assert drill.title.ja != drill.title.en and drill.question.ja != drill.question.en
        assert all(hint.ja and hint.en for hint in drill.hints)


def test_the_seed_picks_the_fault_and_the_same_seed_the_same_one() -> None:
    drill = model.load("mystery-mix")
    picked = {drill.fault(seed) for seed in range(200)}
    assert picked == set(drill.faults)
    assert all(drill.fault(seed) == drill.fault(seed) for seed in range(20))


def test_the_truth_is_the_catalogue_s() -> None:
    drill = model.load("checkout-fails")
    for seed in range(50):
        fault = drill.fault(seed)
        assert isinstance(fault, model.FlagFault)
        flag = catalogue.FLAGS[fault.flag]
        assert drill.truth(seed) == model.Truth(flag.service, flag.category, flag.name)
    stopped = model.StopFault(stop="payments")
    assert stopped.truth == model.Truth("payments", FaultCategory.OUTAGE, None)
    assert model.load("quiet-day").truth(7).nothing_wrong


def test_flags_are_spelled_as_the_catalogue_spells_them() -> None:
    drill = model.parse("""
id: my-drill
title: {ja: テスト, en: Test}
question: {ja: 質問, en: Question}
faults: [{flag: paymentfailure, variant: 50%}]
hints: [{cost: 5, ja: ヒント, en: Hint}]
""", "test")
    assert drill.faults[0] == model.FlagFault(flag="paymentFailure", variant="50%")


@pytest.mark.parametrize(("fault", "message"), [
    ("{flag: noSuchFlag, variant: 'on'}", "There is no fault flag 'noSuchFlag'"),
    ("{flag: paymentLatency, variant: 2s}", "Flag paymentLatency has no variant '2s'"),
    ("{flag: paymentLatency, variant: 'off'}", "variant 'off' of paymentLatency is no fault"),
    ("{stop: postgres}", "there is no service 'postgres' to stop"),
])
def test_a_wrong_fault_is_one_line_naming_the_file_and_the_field(fault: str, message: str
                                                                 ) -> None:
    with pytest.raises(model.DrillError) as caught:
        model.parse(f"""
id: bad
title: {{ja: テスト, en: Test}}
question: {{ja: 質問, en: Question}}
faults: [{fault}]
hints: [{{cost: 5, ja: ヒント, en: Hint}}]
""", "bad.yaml")
    assert str(caught.value).startswith("bad.yaml: faults.0")
    assert message in str(caught.value)


def test_an_unknown_drill_lists_the_drills() -> None:
    with pytest.raises(model.DrillError, match="there is no drill 'nope' — 'kansoku drill "
                       "list' shows them: busy-evening, cart-broken"):
        model.load("nope")


def test_the_glossary_explains_every_cause_in_both_languages() -> None:
    terms = {term.term: term for term in model.glossary()}
    assert set(model.CATEGORIES) <= set(terms)
    for term in terms.values():
        assert term.ja.meaning != term.en.meaning
