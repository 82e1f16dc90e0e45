"""The debrief: kansoku's own alerts read from a real explorer whose evaluator runs every
0.2 s (fed over OTLP), the first one on the service at fault, and the learner's answers
lined up with them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from kansoku.drills import debrief, model, scoring
from kansoku.explorer.app import create_app
from kansoku.explorer.settings import Settings
from kansoku.kit import i18n
from kansoku.kit.i18n import Language
from tests.support import eventually, otlp_export, otlp_span, serve_in_thread

RULES = """
rules:
  - name: HighErrorRate
    kind: error_rate
    window: 5m
    threshold: 0.05
    min_requests: 10
"""
PAYMENT_FAILURE = model.FlagFault(flag="paymentFailure", variant="100%").truth


@pytest.fixture
async def explorer(tmp_path: Path) -> AsyncIterator[str]:
    rules = tmp_path / "alerts.yaml"
    rules.write_text(RULES)
    app = create_app(Settings(db_path=":memory:", alerts_file=str(rules),
                              alerts_check_seconds=0.2, problems_enabled=False,
                              alerts_smtp_port=1))
    with serve_in_thread(app, lifespan="on") as url:
        yield url


async def test_the_first_alert_on_the_service_at_fault(explorer: str) -> None:
    started = datetime.now(UTC) - timedelta(seconds=5)
    async with httpx.AsyncClient(base_url=explorer) as client:
        failing = [otlp_span(trace, 1, "POST /charges", error=True)
                   for trace in range(1, 21)]
        answer = await client.post("/v1/traces", content=otlp_export("payments", *failing),
                                   headers={"Content-Type": "application/json"})
        assert answer.status_code == 200

        changes: list[debrief.AlertChange] = []

        async def fired() -> bool:
            changes[:] = await debrief.alert_changes(client, started, datetime.now(UTC))
            return any(change.to_state == "firing" for change in changes)

        await eventually(fired, 15, "HighErrorRate to fire on payments")
    first = debrief.first_alert(changes, PAYMENT_FAILURE, started)
    assert first is not None
    assert (first.rule, first.service) == ("HighErrorRate", "payments")
    assert 0 < first.seconds < 30
    # On another service's fault this alert is not kansoku noticing it.
    assert debrief.first_alert(changes, model.StopFault(stop="cart").truth, started) is None
    # Where nothing is wrong, any alert is kansoku's own false alarm.
    assert debrief.first_alert(changes, model.NOTHING_WRONG, started) == first


async def test_an_explorer_that_is_not_there() -> None:
    async with httpx.AsyncClient(base_url="http://127.0.0.1:9") as nowhere:
        with pytest.raises(debrief.DebriefError, match="cannot reach the explorer"):
            now = datetime.now(UTC)
            await debrief.alert_changes(nowhere, now, now)


def test_the_timeline_lines_up_answers_fixes_and_alerts() -> None:
    started = datetime(2026, 12, 7, 21, 0, tzinfo=UTC)
    attempt = scoring.Attempt(drill_id="checkout-fails", seed=1, user="aiko", language="en",
                              started_at=started)
    attempt.answers += [
        scoring.Answer(at=started + timedelta(seconds=90), service="cart", cause="errors",
                       trace_id="ab" * 16, outcome=scoring.Outcome.WRONG_SERVICE, message=""),
        scoring.Answer(at=started + timedelta(seconds=200), service="payments",
                       cause="errors", trace_id="cd" * 16, outcome=scoring.Outcome.RIGHT,
                       message="")]
    attempt.fix_checks.append(scoring.FixCheck(at=started + timedelta(seconds=300),
                                               recovered=True, detail=""))
    alert = debrief.AlertChange(time_ns=int((started.timestamp() + 120) * 1e9),
                                rule="HighErrorRate", labels={"service": "payments"},
                                from_state="pending", to_state="firing")
    moments = debrief.timeline(attempt, [alert], "http://explorer")
    assert [(m.seconds, m.who, m.what, m.link, m.outcome) for m in moments] == [
        (90, "you", "answer: cart, errors — wrong service", None, "wrong-service"),
        (120, "kansoku", "alert HighErrorRate on payments: Pending → Firing", None, None),
        (200, "you", "answer: payments, errors — right", f"http://explorer/traces/{'cd' * 16}",
         "right"),
        (300, "you", "fix: held", None, None)]
    # A Japanese learner reads it all in Japanese: the outcomes and the alerts' states
    # as the explorer's Alerts page names them.
    try:
        i18n.set_language(Language.JAPANESE)
        in_japanese = [m.what for m in debrief.timeline(attempt, [alert], None)]
    finally:
        i18n.set_language(Language.ENGLISH)
    assert in_japanese == ["回答: cart, errors — サービスが違う",
                           "アラート HighErrorRate (payments): 保留中 → 発火中",
                           "回答: payments, errors — 正解", "対処確認: 回復"]
