"""One attempt at a drill — when it started, the hints taken, every answer and fix check
— and its score.

The times are AIOpsLab's, measured from the start of the drill:

- **time to detect**: the first answer naming the service at fault (its cause may still
  be wrong) — on a drill without a fault, the first saying nothing is wrong;
- **time to diagnose**: the first right answer — service, cause category, and a trace
  that proves it (on a drill without a fault: "nothing is wrong");
- **time to mitigate**: the first `kansoku drill fix` that finds the fault gone and the
  shop's probes holding.

Points: `FULL_POINTS` for a diagnosis, less each hint's cost, `WRONG_TRY_POINTS` for
every wrong answer before it and `FALSE_ALARM_POINTS` for every fault claimed on a drill
where nothing is wrong; none without a diagnosis.

`Attempt` is what `kansoku drill` keeps between commands (a JSON file in the data
directory, `ATTEMPT_FILE`); its seed, not its answer, is written down. What an answer
and a fix check say is kept as a `Phrase` (`SavedPhrase`: the English template and its
values), not as the words of whoever wrote it: the page and the command line, each in
its reader's language, show the same attempt. Files from before keep plain text, shown
as written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ValidationError

from kansoku.drills.evidence import Verdict
from kansoku.drills.model import NOTHING, Drill, Truth
from kansoku.kit.i18n import N_, Phrase, Words, _

FULL_POINTS = 100
WRONG_TRY_POINTS = 10
FALSE_ALARM_POINTS = 25
#: The attempt in progress, in the stack's data directory.
ATTEMPT_FILE = "drill.json"


class Outcome(StrEnum):
    """How an answer compares with the truth."""

    RIGHT = "right"
    WRONG_SERVICE = "wrong-service"
    WRONG_CAUSE = "wrong-cause"
    #: Service and cause right, but the trace does not show the fault.
    NO_EVIDENCE = "no-evidence"
    #: A fault claimed where nothing is wrong.
    FALSE_ALARM = "false-alarm"
    #: "Nothing is wrong" said where something is.
    MISSED_FAULT = "missed-fault"

    def words(self) -> str:
        """The outcome as a person reads it, in the current language (programs read
        the value)."""
        return _(OUTCOME_WORDS[self])


#: Each outcome in words: the Drills page's own (drills.js), one vocabulary.
OUTCOME_WORDS: dict[Outcome, str] = {
    Outcome.RIGHT: N_("right"), Outcome.WRONG_SERVICE: N_("wrong service"),
    Outcome.WRONG_CAUSE: N_("wrong cause"), Outcome.NO_EVIDENCE: N_("no evidence"),
    Outcome.FALSE_ALARM: N_("false alarm"), Outcome.MISSED_FAULT: N_("missed fault")}


def assess(truth: Truth, service: str | None, cause: str, verdict: Verdict | None
           ) -> tuple[Outcome, Phrase]:
    """An answer's outcome and a sentence on it, to be said in its reader's language.
    `verdict` is the evidence's, read only once service and cause are right (None
    before)."""
    if cause == NOTHING:
        if truth.nothing_wrong:
            return Outcome.RIGHT, Phrase(N_("Right: nothing is wrong."))
        return Outcome.MISSED_FAULT, Phrase(N_("Something is wrong — keep looking."))
    if truth.nothing_wrong:
        return Outcome.FALSE_ALARM, Phrase(N_("False alarm: nothing is wrong with {service} "
                                              "(or anything else)."), service=service)
    if service != truth.service:
        return Outcome.WRONG_SERVICE, Phrase(N_("{service} is not where the fault is."),
                                             service=service)
    if cause != truth.category:
        return Outcome.WRONG_CAUSE, Phrase(N_("{service} is right; '{cause}' is not the "
                                              "cause."), service=service, cause=cause)
    if verdict is None or not verdict.proves:
        reason = verdict.reason if verdict else Phrase(N_("no trace was given"))
        return Outcome.NO_EVIDENCE, Phrase(N_("{service} and {cause} are right, but the "
                                              "evidence does not prove it: {reason}."),
                                           service=service, cause=cause, reason=reason)
    return Outcome.RIGHT, Phrase(N_("Right, and proven: {reason}."), reason=verdict.reason)


def needs_evidence(truth: Truth, service: str | None, cause: str) -> bool:
    """Whether the trace decides the outcome (service and cause right on a fault)."""
    return (not truth.nothing_wrong and cause != NOTHING and service == truth.service
            and cause == truth.category)


class SavedPhrase(BaseModel):
    """A `Phrase` as the attempt file keeps it: its English template and its values
    (texts, numbers, or phrases themselves), said again in whichever language reads
    it."""

    template: str
    values: dict[str, SavedPhrase | str | int | float] = {}

    @classmethod
    def of(cls, words: Words) -> Self | str:
        """`words` to keep: a phrase as its template and values; a plain text (a name,
        a library's error) as it is."""
        if isinstance(words, str):
            return words
        return cls(template=words.template, values={
            name: (cls.of(value) if isinstance(value, Phrase)
                   else value if isinstance(value, str | int | float) else str(value))
            for name, value in words.values.items()})

    def phrase(self) -> Phrase:
        return Phrase(self.template, **{
            name: value.phrase() if isinstance(value, SavedPhrase) else value
            for name, value in self.values.items()})


#: What an answer or a fix check says, as kept: a phrase, or — in a file written before
#: phrases were kept — the text in the language of whoever wrote it.
Saved = SavedPhrase | str


def said(saved: Saved) -> str:
    """What was kept, in the current language (old plain text as written)."""
    return saved if isinstance(saved, str) else str(saved.phrase())


class Answer(BaseModel):
    at: datetime
    service: str | None
    cause: str
    trace_id: str | None
    outcome: Outcome
    message: Saved


class FixCheck(BaseModel):
    at: datetime
    recovered: bool
    detail: Saved


class Attempt(BaseModel):
    """One learner's run of one drill."""

    drill_id: str
    seed: int
    user: str
    language: str
    started_at: datetime
    hints_taken: int = 0
    answers: list[Answer] = []
    fix_checks: list[FixCheck] = []
    #: The load generator `start` runs in the background, to stop at the end.
    load_pid: int | None = None
    load_started: float | None = None

    @property
    def diagnosed(self) -> Answer | None:
        return next((a for a in self.answers if a.outcome == Outcome.RIGHT), None)

    @property
    def detected(self) -> Answer | None:
        named = (Outcome.RIGHT, Outcome.WRONG_CAUSE, Outcome.NO_EVIDENCE)
        return next((a for a in self.answers if a.outcome in named), None)

    @property
    def mitigated(self) -> FixCheck | None:
        return next((check for check in self.fix_checks if check.recovered), None)

    def seconds_to(self, moment: datetime | None) -> float | None:
        return None if moment is None else (moment - self.started_at).total_seconds()


@dataclass(frozen=True)
class Score:
    """An attempt's figures, as `status` and `end` show them and the history keeps."""

    points: int
    detect_seconds: float | None
    diagnose_seconds: float | None
    mitigate_seconds: float | None
    hint_points: int
    wrong_tries: int
    false_alarms: int
    over_time: bool


def score(attempt: Attempt, drill: Drill, now: datetime) -> Score:
    """The attempt's score so far (at `now`)."""
    diagnosed = attempt.diagnosed
    before = [a for a in attempt.answers if diagnosed is None or a.at < diagnosed.at]
    wrong = sum(1 for a in before if a.outcome not in (Outcome.RIGHT, Outcome.FALSE_ALARM))
    false_alarms = sum(1 for a in attempt.answers if a.outcome == Outcome.FALSE_ALARM)
    hint_points = sum(hint.cost for hint in drill.hints[:attempt.hints_taken])
    points = 0
    if diagnosed is not None:
        points = max(0, FULL_POINTS - hint_points - WRONG_TRY_POINTS * wrong
                     - FALSE_ALARM_POINTS * false_alarms)
    detected = attempt.detected
    mitigated = attempt.mitigated
    finished = diagnosed.at if diagnosed else now
    return Score(
        points=points,
        detect_seconds=attempt.seconds_to(detected.at if detected else None),
        diagnose_seconds=attempt.seconds_to(diagnosed.at if diagnosed else None),
        mitigate_seconds=attempt.seconds_to(mitigated.at if mitigated else None),
        hint_points=hint_points, wrong_tries=wrong, false_alarms=false_alarms,
        over_time=(attempt.seconds_to(finished) or 0.0) > drill.time_limit)


def now() -> datetime:
    return datetime.now(UTC)


class AttemptFileError(Exception):
    """The attempt file cannot be read or written; the message says what to do."""


def read_attempt(path: Path) -> Attempt | None:
    """The attempt in progress, None when there is none."""
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AttemptFileError(_("cannot read {path}: {error}").format(
            path=path, error=exc.strerror)) from exc
    try:
        return Attempt.model_validate_json(text)
    except ValidationError as exc:
        raise AttemptFileError(_("{path} is not a drill in progress — delete it to start "
                                 "afresh").format(path=path)) from exc


def write_attempt(path: Path, attempt: Attempt) -> None:
    """Write the attempt whole (a file beside it, renamed), so a reader never sees half."""
    part = path.with_suffix(".part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        part.write_text(attempt.model_dump_json(indent=2), "utf-8")
        part.replace(path)
    except OSError as exc:
        raise AttemptFileError(_("cannot write {path}: {error} — check the data "
                                 "directory").format(path=path, error=exc.strerror)) from exc
