"""What `/api/drills` answers and takes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from kansoku.drills.model import CATEGORIES, STOPPABLE
from kansoku.drills.scoring import Score
from kansoku.explorer.common.responses import TRACE_ID_PATTERN


class DrillSummary(BaseModel):
    """A drill of the catalogue, in the reader's language."""

    id: str = Field(description="Its name, as `kansoku drill start NAME` takes it")
    title: str
    question: str
    time_limit_seconds: float
    hints: int = Field(description="How many hints it has")
    start_command: str = Field(description="The command that starts it")


class DrillAnswer(BaseModel):
    """One answer given to the drill in progress, and how it compared with the truth."""

    at: datetime
    service: str | None
    cause: str
    trace_id: str | None
    outcome: str = Field(description="right, wrong-service, wrong-cause, no-evidence, "
                                     "false-alarm or missed-fault")
    outcome_text: str = Field(description="The outcome in the reader's language")
    message: str = Field(description="What the answer was told, in the reader's language "
                                     "(an answer kept before phrases were: as written)")


class FixCheck(BaseModel):
    at: datetime
    recovered: bool
    detail: str = Field(description="What the check saw, in the reader's language")


class CurrentDrill(BaseModel):
    """The drill in progress (`kansoku drill start` began it), in the reader's language."""

    id: str
    title: str
    question: str
    user: str
    started_at: datetime
    elapsed_seconds: float
    time_limit_seconds: float
    hints: list[str] = Field(description="The hints taken so far, in order")
    hints_left: int
    next_hint_cost: int | None = Field(description="Points the next hint costs (None: "
                                                   "none left)")
    answered: bool = Field(description="Whether a right answer has been given")
    answers: list[DrillAnswer]
    fix_checks: list[FixCheck]
    score: Score = Field(description="The score so far, as `kansoku drill status` shows it")
    services: list[str] = Field(description="The services an answer may name")
    causes: list[str] = Field(description="The cause categories an answer may name")
    commands: dict[str, str] = Field(description="The commands that check a fix and end "
                                                 "the drill, which only the command line "
                                                 "can run (they act on the stack)")


class NothingWrong(BaseModel):
    """The answer that nothing is wrong (a drill with no fault)."""

    model_config = ConfigDict(extra="forbid")

    nothing_wrong: Literal[True]


class FaultFound(BaseModel):
    """The answer that names the fault: the service at fault, the cause category and a
    trace of this explorer that shows it."""

    model_config = ConfigDict(extra="forbid")

    service: str = Field(max_length=100, json_schema_extra={"enum": list(STOPPABLE)})
    cause: str = Field(max_length=40, json_schema_extra={"enum": list(CATEGORIES)})
    trace_id: str = Field(pattern=TRACE_ID_PATTERN)
    nothing_wrong: Literal[False] = False


#: An answer: the fault found, or that nothing is wrong — one or the other, each with
#: exactly its own fields.
AnswerForm = NothingWrong | FaultFound


class AnswerResult(BaseModel):
    outcome: str = Field(description="right, wrong-service, wrong-cause, no-evidence, "
                                     "false-alarm or missed-fault")
    outcome_text: str = Field(description="The outcome in the reader's language")
    message: str = Field(description="What the answer is told, in the reader's language")
    right: bool
