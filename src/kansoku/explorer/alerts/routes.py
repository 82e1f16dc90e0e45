"""Alerts: the alerts, their history and the rules in use."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from kansoku.explorer.alerts import queries
from kansoku.explorer.alerts.evaluator import (
    AlertEvaluator,
    listed,
    presented,
    presented_change,
)
from kansoku.explorer.alerts.models import (
    Alert,
    AlertChange,
    ListedState,
    NotificationsInUse,
    ReceiverInUse,
)
from kansoku.explorer.alerts.rules import PACKAGED_DEFAULTS, RulesInUse
from kansoku.explorer.common import time as timerange
from kansoku.explorer.common.responses import Data, read
from kansoku.kit.errors import Problem
from kansoku.kit.i18n import gettext as _

router = APIRouter()


def _evaluator(request: Request) -> AlertEvaluator:
    evaluator: AlertEvaluator | None = request.app.state.alerts
    if evaluator is None:
        raise Problem(404, "alerts-disabled", _("Alerting is off in this explorer "
                                                "(KANSOKU_EXPLORER_ALERTS_ENABLED=false)."))
    return evaluator


@router.get("/api/alerts", tags=["alerts"])
async def list_alerts(
    request: Request,
    state: Annotated[ListedState | None, Query(
        description="Only alerts in this state")] = None,
    service: Annotated[str | None, Query(max_length=200)] = None,
) -> Data[list[Alert]]:
    """The alerts: firing first, then pending, then those resolved within the last
    hour; each with its rule, state, service, value, since when, labels, a summary
    that says where to look, and links into the explorer (docs/alerts.md). What it says
    to people is in the reader's language."""
    _evaluator(request)
    found = [presented(row) for row in await read(request, queries.alert_states)]
    return Data(data=listed([alert for alert in found if (not state or alert.state == state)
                             and (not service or alert.service == service)]))


@router.get("/api/alerts/history", tags=["alerts"])
async def alert_history(
    request: Request,
    rule: Annotated[str | None, Query(max_length=200)] = None,
    service: Annotated[str | None, Query(max_length=200)] = None,
    lookback: timerange.Lookback = "24h",
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> Data[list[AlertChange]]:
    """Every change of an alert's state (pending, firing, resolved, or inactive: a
    pending alert that went away), newest first; its summary and why it resolved in the
    reader's language."""
    _evaluator(request)
    start_ns, _ = timerange.window(lookback)
    changes = await read(request, queries.alert_history, since_ns=start_ns, rule=rule,
                         service=service, limit=limit)
    return Data(data=[presented_change(change) for change in changes])


@router.get("/api/alerts/rules", tags=["alerts"])
async def alert_rules(request: Request) -> Data[RulesInUse]:
    """The rules in use, where they come from, each with its state now (inactive,
    pending, firing) and its condition in words, and the last error reading the rules
    file (the previous rules stay in use while the file has a mistake)."""
    evaluator = _evaluator(request)
    rules = evaluator.rules
    notifications = rules.notifications
    return Data(data=RulesInUse(
        source=evaluator.rules_source, packaged=evaluator.rules_source == PACKAGED_DEFAULTS,
        load_error=evaluator.load_error,
        rule_errors=dict(evaluator.rule_errors), overview=evaluator.overview(),
        rules=rules.rules, slos=rules.slos,
        notifications=NotificationsInUse(
            group_by=notifications.group_by, group_interval=notifications.group_interval,
            repeat_interval=notifications.repeat_interval,
            receivers=[ReceiverInUse(name=receiver.name,
                                     kind="webhook" if receiver.webhook else "email")
                       for receiver in notifications.receivers])))
