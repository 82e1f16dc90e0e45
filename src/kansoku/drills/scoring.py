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
directory, `ATTEMPT_FILE`); its seed, not its answer, is written down.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ValidationError

from kansoku.drills.evidence import Verdict
from kansoku.drills.model import NOTHING, Drill, Truth
from kansoku.kit.i18n import _

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


def assess(truth: Truth, service: str | None, cause: str, verdict: Verdict | None
           ) -> tuple[Outcome, str]:
    """An answer's outcome and a sentence on it. `verdict` is the evidence's, read only
    once service and cause are right (None before)."""
    if cause == NOTHING:
        if truth.nothing_wrong:
            return Outcome.RIGHT, _("Right: nothing is wrong.")
        return Outcome.MISSED_FAULT, _("Something is wrong — keep looking.")
    if truth.nothing_wrong:
        return Outcome.FALSE_ALARM, _("False alarm: nothing is wrong with {service} (or "
                                      "anything else).").format(service=service)
    if service != truth.service:
        return Outcome.WRONG_SERVICE, _("{service} is not where the fault is.").format(
            service=service)
    if cause != truth.category:
        return Outcome.WRONG_CAUSE, _("{service} is right; '{cause}' is not the "
                                      "cause.").format(service=service, cause=cause)
    if verdict is None or not verdict.proves:
        reason = verdict.reason if verdict else _("no trace was given")
        return Outcome.NO_EVIDENCE, _("{service} and {cause} are right, but the evidence "
                                      "does not prove it: {reason}.").format(
                                          service=service, cause=cause, reason=reason)
    return Outcome.RIGHT, _("Right, and proven: {reason}.").format(reason=verdict.reason)


def needs_evidence(truth: Truth, service: str | None, cause: str) -> bool:
    """Whether the trace decides the outcome (service and cause right on a fault)."""
    return (not truth.nothing_wrong and cause != NOTHING and service == truth.service
            and cause == truth.category)


class Answer(BaseModel):
    at: datetime
    service: str | None
    cause: str
    trace_id: str | None
    outcome: Outcome
    message: str


class FixCheck(BaseModel):
    at: datetime
    recovered: bool
    detail: str


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
        raise AttemptFileError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return Attempt.model_validate_json(text)
    except ValidationError as exc:
        raise AttemptFileError(f"{path} is not a drill in progress — delete it to start "
                               "afresh") from exc


def write_attempt(path: Path, attempt: Attempt) -> None:
    """Write the attempt whole (a file beside it, renamed), so a reader never sees half."""
    part = path.with_suffix(".part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        part.write_text(attempt.model_dump_json(indent=2), "utf-8")
        part.replace(path)
    except OSError as exc:
        raise AttemptFileError(f"cannot write {path}: {exc.strerror} — check the data "
                               "directory") from exc
