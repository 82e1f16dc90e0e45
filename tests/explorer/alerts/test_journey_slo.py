"""The checkout SLO follows the customer's journey: a checkout is bad when it ends
unpaid, wherever it failed — though every answer before the payment was a 2xx — and
the burn-rate alert fires on it (the packaged rules, spans written at chosen times)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from kansoku.explorer.alerts.evaluator import AlertEvaluator
from kansoku.explorer.alerts.prometheus import slo_error_ratio
from kansoku.explorer.alerts.rules import load_rules
from kansoku.explorer.slos.budget import burn, report
from kansoku.explorer.slos.models import SLO, SloKind
from kansoku.explorer.store import TelemetryStore
from tests.explorer.alerts.alerting import S, write_requests

PAY = "/orders/{order_id}/payment"


@pytest.fixture
def store() -> Iterator[TelemetryStore]:
    opened = TelemetryStore(":memory:")
    yield opened
    opened.close()


def checkout_slo() -> SLO:
    (slo,) = [slo for slo in load_rules(None).slos if slo.name == "checkout-availability"]
    return slo


def checkouts(store: TelemetryStore, start_ns: int, count: int, *, pay_status: int,
              unpaid: int) -> None:
    """`count` checkouts a second apart, as the shop's spans show them: the gateway and
    orders place each order (201), then orders' payment step answers 201, or for the
    first `unpaid` of them `pay_status`."""
    write_requests(store, service="gateway", route="/api/v1/orders", method="POST",
                   start_ns=start_ns, count=count, every_ns=S, status=201)
    write_requests(store, service="orders", route="/orders", method="POST",
                   start_ns=start_ns, count=count, every_ns=S, status=201)
    write_requests(store, service="orders", route=PAY, method="POST",
                   start_ns=start_ns + S // 2, count=count, every_ns=S, status=201,
                   failed=unpaid, failed_status=pay_status)


def test_payments_failing_behind_placed_orders_burn_the_checkout_budget(
        store: TelemetryStore) -> None:
    # paymentFailure at 100 % under load: 33 orders placed (201), every payment failed
    # and orders cancelled them (503).
    now = time.time_ns()
    checkouts(store, now - 60 * S, 33, pay_status=503, unpaid=33)
    slo = checkout_slo()
    assert slo.kind == SloKind.JOURNEY and slo.service == "orders"
    measured = burn(store, slo, 300, now)
    assert (measured.total, measured.bad) == (33, 33)
    shown = report(store, slo, now_ns=now, lookback_ns=3600 * S, step_ns=60 * S)
    assert (shown.requests, shown.bad) == (33, 33) and shown.budget_remaining is not None
    assert shown.budget_remaining < 0  # overspent
    assert shown.steps == ["POST /orders"]

    evaluator = AlertEvaluator(store, None, burn=burn)  # the packaged defaults
    evaluator.evaluate(now)
    burning = {alert.labels["window"]: alert for alert in evaluator.alerts.values()
               if alert.rule == "ErrorBudgetBurn"}
    assert burning["1h/5m"].state == "firing"
    assert burning["1h/5m"].labels["slo"] == "checkout-availability"
    assert burning["1h/5m"].labels["service"] == "orders"


def test_an_unpaid_checkout_is_bad_wherever_it_failed(store: TelemetryStore) -> None:
    now = time.time_ns()
    # 20 checkouts: 3 declined (402, not a failure of the shop, but unpaid), 2 failed.
    checkouts(store, now - 200 * S, 15, pay_status=402, unpaid=3)
    checkouts(store, now - 100 * S, 5, pay_status=503, unpaid=2)
    # Two placements failed before any payment (5xx): bad checkouts. One was out of
    # stock (409): the shop said no, not a checkout that broke — not counted.
    write_requests(store, service="orders", route="/orders", method="POST",
                   start_ns=now - 50 * S, count=2, failed=2)
    write_requests(store, service="orders", route="/orders", method="POST",
                   start_ns=now - 40 * S, count=1, status=409)
    measured = burn(store, checkout_slo(), 600, now)
    assert (measured.total, measured.bad) == (22, 7)
    # Paid checkouts only: nothing bad.
    other = TelemetryStore(":memory:")
    try:
        checkouts(other, now - 60 * S, 30, pay_status=503, unpaid=0)
        assert (burn(other, checkout_slo(), 300, now).bad) == 0
    finally:
        other.close()


def test_the_journey_exports_to_promql() -> None:
    ratio = slo_error_ratio(checkout_slo(), "5m")
    assert 'http_route="/orders/{order_id}/payment", http_response_status_code!~"2.."' \
        in ratio
    assert 'http_route="/orders", http_response_status_code=~"5.."' in ratio


def test_steps_belong_to_a_journey() -> None:
    with pytest.raises(ValueError, match="steps: belong to a journey SLO"):
        SLO(name="x", service="s", operations=["GET /a"], steps=["GET /b"],
            kind=SloKind.AVAILABILITY, objective=99)
