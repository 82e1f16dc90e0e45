"""The debrief at the end of a drill: the learner's answers, hints and fix checks lined up
with kansoku's own alerts as they fired, read through the explorer's public API
(`GET /api/alerts/history`), and how long the alerts took to notice the same fault.

The explorer's alert rules are the baseline a learner is measured beside: a learner who
diagnoses before any alert fires found the fault before kansoku did.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from kansoku.drills.evidence import EvidenceError, ask
from kansoku.drills.model import Truth
from kansoku.drills.scoring import Attempt, Outcome
from kansoku.kit.i18n import N_, _

#: What the alert changes are read over beyond the drill's own length: the history is
#: asked for by lookback, and the clock moves on between the drill's end and the request.
LOOKBACK_MARGIN_SECONDS = 60


class DebriefError(Exception):
    """The alerts could not be read; the message says why. The debrief goes on without."""


class AlertChange(BaseModel):
    """An alert moving from one state to another, as the explorer's history lists it."""

    # The explorer's answer holds more (value, summary, reason): only these are read.
    model_config = ConfigDict(extra="ignore", frozen=True)

    time_ns: int
    rule: str
    labels: dict[str, str]
    from_state: str
    to_state: str

    @property
    def service(self) -> str | None:
        return self.labels.get("service")


class _History(BaseModel):
    model_config = ConfigDict(extra="ignore")

    data: list[AlertChange]


async def alert_changes(explorer: httpx.AsyncClient, started: datetime, ended: datetime
                        ) -> list[AlertChange]:
    """Every change of an alert's state from `started` to `ended`, oldest first."""
    seconds = int((ended - started).total_seconds()) + LOOKBACK_MARGIN_SECONDS
    try:
        answer = await ask(explorer, "/api/alerts/history", _("the alerts' history"),
                           {"lookback": f"{seconds}s", "limit": 1000})
    except EvidenceError as exc:
        raise DebriefError(str(exc)) from exc
    try:
        changes = _History.model_validate_json(answer.content).data
    except ValidationError as exc:
        raise DebriefError(_("the explorer's alert history is not in the shape kansoku "
                             "knows")) from exc
    since, until = started.timestamp() * 1e9, ended.timestamp() * 1e9
    return sorted((change for change in changes if since <= change.time_ns <= until),
                  key=lambda change: change.time_ns)


@dataclass(frozen=True)
class FirstAlert:
    """The first alert that fired during the drill, on the service at fault (on a drill
    without a fault: any alert, which is kansoku's own false alarm)."""

    rule: str
    service: str | None
    seconds: float


def first_alert(changes: list[AlertChange], truth: Truth, started: datetime
                ) -> FirstAlert | None:
    for change in changes:
        if change.to_state != "firing":
            continue
        if truth.nothing_wrong or change.service == truth.service:
            return FirstAlert(change.rule, change.service,
                              change.time_ns / 1e9 - started.timestamp())
    return None


@dataclass(frozen=True)
class Moment:
    """One line of the debrief: when (seconds from the start), whose, what (in the
    reader's language), and a link to the evidence where there is one."""

    seconds: float
    who: Literal["you", "kansoku"]
    what: str
    link: str | None = None
    #: An answer's outcome as a code (`Outcome`), for programs; None on other lines.
    outcome: str | None = None


#: An alert's states as people read them: the Alerts page's labels (alerts.js), one
#: vocabulary; a state this list does not know is shown as the explorer says it.
ALERT_STATE_WORDS: dict[str, str] = {
    "inactive": N_("Cleared"), "pending": N_("Pending"), "firing": N_("Firing"),
    "resolved": N_("Resolved")}


def alert_state_words(state: str) -> str:
    """An alert's state in the current language."""
    return _(ALERT_STATE_WORDS[state]) if state in ALERT_STATE_WORDS else state


def timeline(attempt: Attempt, changes: list[AlertChange], explorer_url: str | None
             ) -> list[Moment]:
    """The learner's answers and fix checks and the alerts' changes, in time order."""
    moments = [Moment(change.time_ns / 1e9 - attempt.started_at.timestamp(), "kansoku",
                      (_("alert {rule} on {service}: {before} → {after}") if change.service
                       else _("alert {rule}: {before} → {after}")).format(
                          rule=change.rule, service=change.service,
                          before=alert_state_words(change.from_state),
                          after=alert_state_words(change.to_state)))
               for change in changes]
    for given in attempt.answers:
        said = (_("nothing is wrong") if given.service is None
                else f"{given.service}, {given.cause}")
        link = (f"{explorer_url}/traces/{given.trace_id}"
                if explorer_url and given.trace_id and given.outcome == Outcome.RIGHT
                else None)
        moments.append(Moment(attempt.seconds_to(given.at) or 0.0, "you",
                              _("answer: {said} — {outcome}").format(
                                  said=said, outcome=given.outcome.words()), link,
                              given.outcome.value))
    for check in attempt.fix_checks:
        moments.append(Moment(attempt.seconds_to(check.at) or 0.0, "you",
                              _("fix: held") if check.recovered else _("fix: not yet")))
    return sorted(moments, key=lambda moment: moment.seconds)
