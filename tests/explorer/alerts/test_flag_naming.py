"""An error-rate alert names the fault flag its failed requests carry (`feature_flag.key`
on the spans the flag broke), so a flag is named where the failure shows."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from kansoku.explorer.alerts.evaluator import AlertEvaluator, presented
from kansoku.explorer.slos.budget import burn
from kansoku.explorer.store import SPANS, Rows, TelemetryStore
from kansoku.kit import i18n, semconv
from kansoku.kit.i18n import Language
from tests.explorer.alerts.alerting import S


@pytest.fixture
def store() -> Iterator[TelemetryStore]:
    opened = TelemetryStore(":memory:")
    yield opened
    opened.close()


def charges(store: TelemetryStore, start_ns: int, count: int, *, flag: str | None) -> None:
    """A minute of payments' charges, every fourth failed; with `flag`, the failed ones
    carry it as the kit's `ActiveFault.fail` marks them."""
    rows = Rows(SPANS)
    for index in range(count):
        fails = index % 4 == 3
        attributes = ({semconv.FEATURE_FLAG_KEY: flag, semconv.FEATURE_FLAG_VARIANT: "25%"}
                      if fails and flag else {})
        values: dict[str, Any] = {column: None for column in SPANS.names}
        values.update(trace_id=os.urandom(16).hex(), span_id=os.urandom(8).hex(),
                      service="payments", name="POST /charges", kind="server",
                      start_ns=start_ns + index * (60 * S // count), duration_ns=30_000_000,
                      status="error" if fails else "unset", route="/charges",
                      http_status=500 if fails else 201, attributes=json.dumps(attributes))
        rows.add(values[column] for column in SPANS.names)
    store.submit(rows).result(timeout=10)


@pytest.mark.parametrize("flag", ["paymentFailure", None])
def test_the_error_rate_alert_names_the_flag_of_its_failed_requests(
        store: TelemetryStore, flag: str | None) -> None:
    now = time.time_ns()
    charges(store, now - 60 * S, 28, flag=flag)  # 7 of 28 fail
    evaluator = AlertEvaluator(store, None, burn=burn)  # the packaged defaults
    evaluator.evaluate(now)
    evaluator.evaluate(now + 10 * S)  # `for: 10s`
    (alert,) = [a for a in evaluator.alerts.values() if a.rule == "HighErrorRate"]
    assert alert.state == "firing" and alert.labels["service"] == "payments"
    named = "Its failed requests carry the fault flag paymentFailure = 25% (feature_flag.key)."
    i18n.set_language(Language.JAPANESE)
    try:
        japanese = presented(alert).summary
    finally:
        i18n.set_language(Language.ENGLISH)
    if flag:
        assert alert.summary.endswith(named) and presented(alert).summary.endswith(named)
        assert alert.details["flag"] == "paymentFailure"
        # And in the reader's language, the flag and its attribute as they are.
        assert japanese.endswith("失敗したリクエストには故障フラグ paymentFailure = 25% "
                                 "(feature_flag.key) が付いています。")
    else:
        assert "fault flag" not in alert.summary and "flag" not in alert.details
        assert "故障フラグ" not in japanese
