"""Outcomes of answers and the score of an attempt: times to detect, diagnose and
mitigate, less hints, wrong tries and false alarms."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kansoku.drills import model, scoring
from kansoku.drills.evidence import Verdict
from kansoku.drills.scoring import Outcome
from kansoku.kit import i18n
from kansoku.kit.i18n import Language

START = datetime(2026, 12, 7, 21, 0, tzinfo=UTC)
PROOF = Verdict(True, "span 'POST /charges' (payments) carries feature_flag.key=x")
JA, EN = Language.JAPANESE, Language.ENGLISH


def attempt(drill: str = "checkout-fails", seed: int = 1) -> scoring.Attempt:
    return scoring.Attempt(drill_id=drill, seed=seed, user="aiko", language="ja",
                           started_at=START)


def answer(attempt: scoring.Attempt, minutes: float, service: str | None, cause: str,
           verdict: Verdict | None = None) -> Outcome:
    drill = model.load(attempt.drill_id)
    outcome, message = scoring.assess(drill.truth(attempt.seed), service, cause, verdict)
    attempt.answers.append(scoring.Answer(
        at=START + timedelta(minutes=minutes), service=service, cause=cause,
        trace_id=None, outcome=outcome, message=scoring.SavedPhrase.of(message)))
    return outcome


def truth_of(run: scoring.Attempt) -> model.Truth:
    return model.load(run.drill_id).truth(run.seed)


def test_outcomes_of_answers() -> None:
    run = attempt()
    truth = truth_of(run)
    assert truth.service and truth.category
    assert answer(run, 1, "cart", truth.category) == Outcome.WRONG_SERVICE
    wrong_cause = "latency" if truth.category != "latency" else "errors"
    assert answer(run, 2, truth.service, wrong_cause) == Outcome.WRONG_CAUSE
    assert answer(run, 3, truth.service, truth.category,
                  Verdict(False, "no error")) == Outcome.NO_EVIDENCE
    assert answer(run, 4, None, model.NOTHING) == Outcome.MISSED_FAULT
    assert answer(run, 5, truth.service, truth.category, PROOF) == Outcome.RIGHT
    assert scoring.needs_evidence(truth, truth.service, truth.category)
    assert not scoring.needs_evidence(truth, "cart", truth.category)


def test_the_score_counts_hints_and_wrong_tries_and_the_times() -> None:
    run = attempt()
    truth = truth_of(run)
    assert truth.service and truth.category
    run.hints_taken = 2  # 10 + 20 points
    answer(run, 1, "cart", truth.category)
    answer(run, 3, truth.service, "browser")
    answer(run, 6, truth.service, truth.category, PROOF)
    answer(run, 7, "cart", truth.category)  # after the diagnosis: no longer counted
    run.fix_checks.append(scoring.FixCheck(at=START + timedelta(minutes=9),
                                           recovered=True, detail="probes hold"))
    score = scoring.score(run, model.load(run.drill_id), START + timedelta(minutes=10))
    assert score == scoring.Score(points=100 - 30 - 2 * 10, detect_seconds=180.0,
                                  diagnose_seconds=360.0, mitigate_seconds=540.0,
                                  hint_points=30, wrong_tries=2, false_alarms=0,
                                  over_time=False)


def test_no_diagnosis_no_points() -> None:
    run = attempt()
    answer(run, 1, "cart", "errors")
    score = scoring.score(run, model.load(run.drill_id), START + timedelta(hours=1))
    assert score.points == 0 and score.diagnose_seconds is None and score.over_time


def test_a_false_alarm_costs_on_a_drill_where_nothing_is_wrong() -> None:
    run = attempt("quiet-day")
    assert answer(run, 1, "payments", "errors", PROOF) == Outcome.FALSE_ALARM
    assert answer(run, 2, None, model.NOTHING) == Outcome.RIGHT
    score = scoring.score(run, model.load("quiet-day"), START + timedelta(minutes=3))
    assert score.points == 100 - scoring.FALSE_ALARM_POINTS
    assert score.false_alarms == 1 and score.detect_seconds == score.diagnose_seconds == 120


def test_the_attempt_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / scoring.ATTEMPT_FILE
    assert scoring.read_attempt(path) is None
    run = attempt()
    answer(run, 1, "cart", "errors")
    scoring.write_attempt(path, run)
    assert scoring.read_attempt(path) == run
    path.write_text("{not json")
    with pytest.raises(scoring.AttemptFileError, match="is not a drill in progress — "
                       "delete it to start afresh"):
        scoring.read_attempt(path)


def test_what_an_answer_is_told_is_kept_for_either_language(tmp_path: Path) -> None:
    run = attempt()
    truth = truth_of(run)
    assert truth.service and truth.category
    answer(run, 1, "cart", truth.category)
    answer(run, 2, truth.service, truth.category,
           Verdict(False, i18n.Phrase(i18n.N_("no trace was given"))))
    path = tmp_path / scoring.ATTEMPT_FILE
    scoring.write_attempt(path, run)
    kept = scoring.read_attempt(path)
    assert kept is not None
    wrong, unproven = (given.message for given in kept.answers)
    assert not isinstance(wrong, str) and not isinstance(unproven, str)
    assert wrong.phrase().said_in(EN) == "cart is not where the fault is."
    assert wrong.phrase().said_in(JA) == "障害は cart にはありません。"
    # A phrase inside a phrase (the evidence's reason) is said in the same language.
    assert unproven.phrase().said_in(JA) == (
        f"{truth.service} と {truth.category} は正しいのですが、証拠がそれを示していません: "
        "トレースが指定されていません。")


def test_an_outcome_in_words_follows_the_reader() -> None:
    try:
        i18n.set_language(JA)
        assert [outcome.words() for outcome in Outcome] == [
            "正解", "サービスが違う", "原因が違う", "根拠不十分", "誤報", "見逃し"]
    finally:
        i18n.set_language(EN)
    assert Outcome.WRONG_SERVICE.words() == "wrong service"


def test_an_answer_kept_before_phrases_is_shown_as_written(tmp_path: Path) -> None:
    path = tmp_path / scoring.ATTEMPT_FILE
    old = attempt().model_dump(mode="json")
    old["answers"] = [{"at": START.isoformat(), "service": "cart", "cause": "errors",
                       "trace_id": None, "outcome": "wrong-service",
                       "message": "cart is not where the fault is."}]
    old["fix_checks"] = [{"at": START.isoformat(), "recovered": False, "detail": "not yet"}]
    path.write_text(json.dumps(old))
    kept = scoring.read_attempt(path)
    assert kept is not None
    try:
        i18n.set_language(JA)
        assert scoring.said(kept.answers[0].message) == "cart is not where the fault is."
        assert scoring.said(kept.fix_checks[0].detail) == "not yet"
    finally:
        i18n.set_language(EN)
