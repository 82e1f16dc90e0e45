"""Drills: `/api/drills`, the catalogue, and `/api/drills/current`, the drill in progress
— what `kansoku drill list | status | hint | answer` do, for the Drills page.

The drill in progress is the file `kansoku drill start` writes in the stack's data
directory (`drill.json`, beside the flags file where `kansoku up` puts both). The page
reads it, takes hints and checks answers as the command line does (the evidence read
from this explorer's own API). Starting a drill, checking a fix and ending it act on the
stack — its flags, its supervisor, its load, the history in PostgreSQL — and stay the
command line's: the page shows those commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, assert_never

import httpx
from fastapi import APIRouter, Body, Request

from kansoku.drills import evidence, model
from kansoku.drills.model import Drill
from kansoku.drills.scoring import (
    Answer,
    Attempt,
    AttemptFileError,
    SavedPhrase,
    assess,
    needs_evidence,
    now,
    read_attempt,
    said,
    score,
    write_attempt,
)
from kansoku.explorer.common.responses import Data
from kansoku.explorer.drills.models import (
    AnswerForm,
    AnswerResult,
    CurrentDrill,
    DrillAnswer,
    DrillSummary,
    FaultFound,
    FixCheck,
    NothingWrong,
)
from kansoku.kit.errors import Problem, invalid_parameter
from kansoku.kit.i18n import current_language
from kansoku.kit.i18n import gettext as _
from kansoku.kit.openapi import PROBLEM

router = APIRouter()

#: The request headers the evidence check passes on when it reads this explorer's own
#: API: the reader's credentials, so a protected explorer answers it too.
_PASSED_ON = ("authorization", "cookie")


@router.get("/api/drills", tags=["drills"])
async def list_drills() -> Data[list[DrillSummary]]:
    """Every drill, its title and question in the reader's language."""
    language = str(current_language())
    return Data(data=[DrillSummary(
        id=drill.id, title=drill.title(language), question=drill.question(language),
        time_limit_seconds=drill.time_limit, hints=len(drill.hints),
        start_command=f"kansoku drill start {drill.id}") for drill in model.shipped().values()])


@router.get("/api/drills/current", tags=["drills"], responses={404: PROBLEM})
async def current_drill(request: Request) -> Data[CurrentDrill | None]:
    """The drill in progress (null when there is none): its question, the hints taken,
    the answers given and the score so far — `kansoku drill status`."""
    attempt = _read(_attempt_file(request))
    return Data(data=_current(attempt) if attempt else None)


@router.post("/api/drills/current/hint", tags=["drills"],
             responses={404: PROBLEM, 409: PROBLEM})
async def take_hint(request: Request) -> Data[CurrentDrill]:
    """Take the next hint (it costs its points) — `kansoku drill hint`."""
    path = _attempt_file(request)
    attempt = _in_progress(path)
    drill = _drill(attempt)
    if attempt.hints_taken >= len(drill.hints):
        raise Problem(409, "no-more-hints", _("All {count} hints are taken.").format(
            count=len(drill.hints)))
    attempt.hints_taken += 1
    _write(path, attempt)
    return Data(data=_current(attempt))


@router.post("/api/drills/current/answer", tags=["drills"],
             responses={404: PROBLEM, 409: PROBLEM, 502: PROBLEM})
async def answer(form: Annotated[AnswerForm, Body()], request: Request
                 ) -> Data[AnswerResult]:
    """Answer the drill in progress: the service, the cause category and a trace of
    this explorer as evidence — or that nothing is wrong. A wrong answer costs points;
    try again — `kansoku drill answer`."""
    service: str | None
    said_cause: str
    trace_id: str | None
    match form:
        case NothingWrong():
            service, said_cause, trace_id = None, model.NOTHING, None
        case FaultFound():
            service, said_cause, trace_id = form.service, form.cause, form.trace_id
        case _:
            assert_never(form)
    if service is not None and service not in model.STOPPABLE:
        raise invalid_parameter("service", _("There is no service '{service}'; choose one "
                                             "of: {choices}.").format(
            service=service, choices=", ".join(model.STOPPABLE)), location="body")
    if said_cause != model.NOTHING and said_cause not in model.CATEGORIES:
        raise invalid_parameter("cause", _("There is no cause category '{cause}'; choose "
                                           "one of: {choices}.").format(
            cause=said_cause, choices=", ".join(model.CATEGORIES)), location="body")
    path = _attempt_file(request)
    attempt = _in_progress(path)
    if attempt.diagnosed is not None:
        raise Problem(409, "already-answered", _(
            "This drill is already answered right: check your fix and end it with the "
            "commands the page shows."))
    truth = _drill(attempt).truth(attempt.seed)
    verdict = None
    if needs_evidence(truth, service, said_cause):
        assert trace_id is not None
        verdict = await _check_evidence(request, trace_id.lower(), truth)
    outcome, message = assess(truth, service, said_cause, verdict)
    # Read again: a hint taken meanwhile (on the command line) is kept.
    attempt = _in_progress(path)
    attempt.answers.append(Answer(at=now(), service=service, cause=said_cause,
                                  trace_id=trace_id, outcome=outcome,
                                  message=SavedPhrase.of(message)))
    _write(path, attempt)
    return Data(data=AnswerResult(outcome=outcome.value, outcome_text=outcome.words(),
                                  message=str(message), right=outcome == "right"))


async def _check_evidence(request: Request, trace_id: str, truth: model.Truth
                          ) -> evidence.Verdict:
    """Whether the trace shows the fault, read from this explorer's own API (in process)
    as the command line reads it over HTTP."""
    headers = {name: value for name, value in request.headers.items() if name in _PASSED_ON}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=request.app),
                                 base_url="http://explorer", headers=headers) as client:
        try:
            return await evidence.check(client, trace_id, truth)
        except evidence.EvidenceError as exc:
            raise Problem(502, "evidence-unreadable", str(exc)) from exc


def _attempt_file(request: Request) -> Path:
    path: Path | None = request.app.state.drill_file
    if path is None:
        raise Problem(404, "drills-unavailable", _(
            "This explorer does not know where the stack keeps its drill: set "
            "KANSOKU_EXPLORER_DRILL_FILE (kansoku up sets the flags file, beside which "
            "it is)."))
    return path


def _read(path: Path) -> Attempt | None:
    try:
        return read_attempt(path)
    except AttemptFileError as exc:
        raise Problem(500, "drill-unreadable", str(exc)) from exc


def _in_progress(path: Path) -> Attempt:
    attempt = _read(path)
    if attempt is None:
        raise Problem(404, "no-drill", _(
            "No drill is in progress. Start one with: kansoku drill start NAME"))
    return attempt


def _write(path: Path, attempt: Attempt) -> None:
    try:
        write_attempt(path, attempt)
    except AttemptFileError as exc:
        raise Problem(500, "drill-unwritable", str(exc)) from exc


def _drill(attempt: Attempt) -> Drill:
    try:
        return model.load(attempt.drill_id)
    except model.DrillError as exc:
        raise Problem(500, "drill-unknown", str(exc)) from exc


def _current(attempt: Attempt) -> CurrentDrill:
    drill = _drill(attempt)
    language = str(current_language())
    moment = now()
    so_far = score(attempt, drill, moment)
    left = drill.hints[attempt.hints_taken:]
    return CurrentDrill(
        id=drill.id, title=drill.title(language), question=drill.question(language),
        user=attempt.user, started_at=attempt.started_at,
        elapsed_seconds=(moment - attempt.started_at).total_seconds(),
        time_limit_seconds=drill.time_limit,
        hints=[hint(language) for hint in drill.hints[:attempt.hints_taken]],
        hints_left=len(left), next_hint_cost=left[0].cost if left else None,
        answered=attempt.diagnosed is not None,
        answers=[DrillAnswer(at=given.at, service=given.service, cause=given.cause,
                             trace_id=given.trace_id, outcome=given.outcome.value,
                             outcome_text=given.outcome.words(),
                             message=said(given.message)) for given in attempt.answers],
        fix_checks=[FixCheck(at=check.at, recovered=check.recovered,
                             detail=said(check.detail))
                    for check in attempt.fix_checks],
        score=so_far,
        services=list(model.STOPPABLE), causes=list(model.CATEGORIES),
        commands={"fix": "kansoku drill fix", "end": "kansoku drill end",
                  "status": "kansoku drill status"})
