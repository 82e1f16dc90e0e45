"""The alert evaluator on a real DuckDB store: telemetry is written through the store at
chosen times, the evaluator runs at chosen instants, and the alerts' states and history
are read back from the store."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from kansoku.explorer.alerts import queries
from kansoku.explorer.alerts.evaluator import (
    AlertEvaluator,
    evaluate_rule,
    histogram_quantile,
    presented,
)
from kansoku.explorer.alerts.models import Sentence
from kansoku.explorer.alerts.rules import parse_rules
from kansoku.explorer.alerts.texts import say
from kansoku.explorer.slos.budget import burn
from kansoku.explorer.store import TelemetryStore
from kansoku.kit import semconv
from kansoku.kit.i18n import Language
from tests.explorer.alerts.alerting import S, write_histogram, write_points, write_requests

ERROR_RATE = """
rules:
  - name: HighErrorRate
    kind: error_rate
    window: 60s
    threshold: 0.05
    min_requests: 20
    min_errors: 5
    for: 20s
    labels: {severity: critical}
    summary: "{service} failed {value} over {window} (over {threshold})"
"""


@pytest.fixture
def store() -> Iterator[TelemetryStore]:
    store = TelemetryStore(":memory:")
    yield store
    store.close()


def evaluator_for(store: TelemetryStore, tmp_path: Path, text: str) -> AlertEvaluator:
    path = tmp_path / "alerts.yaml"
    path.write_text(text)
    return AlertEvaluator(store, str(path), burn=burn, cpu_count=2)


def english(reason: list[Sentence] | None) -> str:
    return say(reason or [], Language.ENGLISH)


def states(evaluator: AlertEvaluator) -> dict[tuple[str, str | None], str]:
    return {(alert.rule, alert.labels.get("service")): alert.state
            for alert in evaluator.alerts.values()}


def test_an_alert_goes_pending_then_firing_then_resolved_with_history(
        store: TelemetryStore, tmp_path: Path) -> None:
    now = time.time_ns()
    write_requests(store, service="payments", route="/payments", method="POST",
                   start_ns=now - 30 * S, count=40, every_ns=S // 2, failed=20)
    write_requests(store, service="catalog", route="/products", start_ns=now - 30 * S,
                   count=40, every_ns=S // 2)
    evaluator = evaluator_for(store, tmp_path, ERROR_RATE)

    def step(at: int) -> None:
        evaluator.save(evaluator.evaluate(at))

    step(now)
    assert states(evaluator) == {("HighErrorRate", "payments"): "pending"}
    step(now + 10 * S)
    assert states(evaluator) == {("HighErrorRate", "payments"): "pending"}
    step(now + 25 * S)  # held for the rule's 20 s
    assert states(evaluator) == {("HighErrorRate", "payments"): "firing"}

    (stored,) = queries.alert_states(store)
    alert = presented(stored).model_dump(mode="json")
    assert alert["state"] == "firing" and alert["service"] == "payments"
    assert alert["value"] == pytest.approx(0.5) and alert["value_text"] == "50.0 %"
    assert alert["summary"] == "payments failed 50.0 % over 1m (over 5.0 %)"
    assert alert["labels"] == {"severity": "critical", "service": "payments"}
    assert alert["since_ns"] == now + 25 * S and alert["active_since_ns"] == now
    assert alert["links"]["service"] == "/services/payments"
    assert "error=true" in alert["links"]["traces"]
    assert alert["links"]["example_trace"].startswith("/traces/")
    assert alert["details"]["requests"] == 40 and alert["details"]["errors"] == 20

    step(now + 120 * S)  # the window holds no request any more
    assert states(evaluator) == {("HighErrorRate", "payments"): "resolved"}
    history = queries.alert_history(store, since_ns=0)
    assert [(h.from_state, h.to_state) for h in reversed(history)] == [
        ("inactive", "pending"), ("pending", "firing"), ("firing", "resolved")]
    assert {h.labels["service"] for h in history} == {"payments"}


def test_low_counts_and_one_off_errors_fire_nothing(store: TelemetryStore,
                                                    tmp_path: Path) -> None:
    now = time.time_ns()
    # Quiet: every request failed, but fewer than min_requests.
    write_requests(store, service="quiet", route="/x", start_ns=now - 30 * S, count=10,
                   failed=10)
    # Busy with a few failures: 4 errors (under min_errors) though 13 % of 30.
    write_requests(store, service="few", route="/x", start_ns=now - 30 * S, count=30,
                   failed=4)
    # Busy with a low rate: 6 errors out of 200 (3 %).
    write_requests(store, service="low", route="/x", start_ns=now - 30 * S, count=200,
                   failed=6)
    evaluator = evaluator_for(store, tmp_path, ERROR_RATE)
    assert evaluator.evaluate(now) == []
    assert evaluator.alerts == {}


def test_a_pending_alert_that_clears_leaves_as_inactive(store: TelemetryStore,
                                                         tmp_path: Path) -> None:
    now = time.time_ns()
    write_requests(store, service="payments", route="/payments", start_ns=now - 5 * S,
                   count=20, every_ns=S // 10, failed=20)
    evaluator = evaluator_for(store, tmp_path, ERROR_RATE)
    assert [t.to_state for t in evaluator.evaluate(now)] == ["pending"]
    assert [(t.from_state, t.to_state) for t in evaluator.evaluate(now + 70 * S)] == [
        ("pending", "inactive")]
    assert evaluator.alerts == {}


def test_latency_per_route_from_spans_and_from_the_histogram(store: TelemetryStore,
                                                             tmp_path: Path) -> None:
    now = time.time_ns()
    write_requests(store, service="payments", route="/payments", method="POST",
                   start_ns=now - 40 * S, count=30, ms=3000)
    write_requests(store, service="payments", route="/health-ish", start_ns=now - 40 * S,
                   count=30, ms=5)
    bounds = [0.1, 0.5, 1.0, 2.5, 5.0]
    # Cumulative: 100 quick requests before the window, then 40 of 2.5-5 s inside it.
    write_histogram(store, semconv.METRIC_HTTP_SERVER_DURATION,
                    [(now - 90 * S, [100, 0, 0, 0, 0, 0]), (now - 5 * S, [100, 0, 0, 0, 40, 0])],
                    service="orders", bounds=bounds,
                    attributes={semconv.HTTP_ROUTE: "/orders"})
    evaluator = evaluator_for(store, tmp_path, """
rules:
  - name: SlowResponses
    kind: latency
    window: 1m
    threshold: 2s
    group_by: [service, route]
    labels: {severity: warning}
    summary: "{route} of {service} takes {value}"
  - name: SlowFromHistogram
    kind: latency
    source: histogram
    window: 1m
    threshold: 2s
""")
    evaluator.evaluate(now)
    found = {(a.rule, a.labels["service"], a.labels.get("route")): a
             for a in evaluator.alerts.values()}
    assert set(found) == {("SlowResponses", "payments", "/payments"),
                          ("SlowFromHistogram", "orders", None)}
    slow = found[("SlowResponses", "payments", "/payments")]
    assert slow.state == "firing" and slow.value == pytest.approx(3.0)
    assert slow.summary == "/payments of payments takes 3.00 s"
    assert "minDuration=2000ms" in slow.details["links"]["traces"]
    # 95 % of 40 in the 2.5-5 s bucket: 2.5 + 2.5 * 38/40.
    assert found[("SlowFromHistogram", "orders", None)].value == pytest.approx(4.875)


def test_histogram_quantile_interpolates_like_prometheus() -> None:
    assert histogram_quantile(0.5, [1.0, 2.0], [10, 10, 0]) == pytest.approx(1.0)
    assert histogram_quantile(0.75, [1.0, 2.0], [10, 10, 0]) == pytest.approx(1.5)
    assert histogram_quantile(0.99, [1.0, 2.0], [0, 0, 5]) == 2.0  # +Inf: the last bound


def test_metric_rules_queue_lag_dead_letters_synthetics_saturation(
        store: TelemetryStore, tmp_path: Path) -> None:
    now = time.time_ns()
    consumer = {semconv.MESSAGING_CONSUMER: "worker-orders"}
    write_points(store, semconv.METRIC_QUEUE_LAG, [(now - 50 * S, 5), (now - 5 * S, 80)],
                 service="worker", attributes=consumer)
    write_points(store, semconv.METRIC_QUEUE_LAG, [(now - 5 * S, 3)], service="worker",
                 attributes={semconv.MESSAGING_CONSUMER: "worker-mail"})
    # A cumulative counter: 2 dead letters before the window, 5 by its end.
    write_points(store, semconv.METRIC_DEAD_LETTERS, [(now - 400 * S, 2), (now - 10 * S, 5)],
                 service="worker", kind="sum", temporality="cumulative", attributes=consumer)
    failure = {semconv.SYNTHETIC_JOURNEY: "checkout", semconv.SYNTHETIC_OUTCOME: "failure"}
    write_points(store, semconv.METRIC_SYNTHETIC_RUNS, [(now - 300 * S, 1), (now - 10 * S, 3)],
                 service="synthetics", kind="sum", temporality="cumulative",
                 attributes=failure)
    write_points(store, semconv.METRIC_SYNTHETIC_RUNS, [(now - 10 * S, 9)],
                 service="synthetics", kind="sum", temporality="cumulative",
                 attributes={**failure, semconv.SYNTHETIC_OUTCOME: "success"})
    write_points(store, "process.cpu.utilization", [(now - 20 * S, 0.49), (now - 10 * S, 0.5)],
                 service="gateway")
    write_points(store, "process.cpu.utilization", [(now - 10 * S, 0.1)], service="catalog")
    write_points(store, "process.memory.usage", [(now - 10 * S, 2048 * 1024 * 1024)],
                 service="worker", kind="sum")
    evaluator = evaluator_for(store, tmp_path, """
rules:
  - {name: QueueLag, kind: queue_lag, window: 1m, threshold: 20,
     summary: "{value} wait for {consumer}"}
  - {name: DeadLetters, kind: dead_letters, window: 5m, threshold: 0}
  - {name: SyntheticJourneyFailing, kind: synthetic_failure, window: 3m, threshold: 2}
  - {name: HighCpu, kind: saturation, resource: cpu, window: 1m, threshold: 0.9}
  - {name: HighMemory, kind: saturation, resource: memory, window: 1m, threshold: 1024}
""")
    evaluator.evaluate(now)
    found = {(a.rule, a.labels["service"]): a for a in evaluator.alerts.values()}
    assert set(found) == {("QueueLag", "worker"), ("DeadLetters", "worker"),
                          ("SyntheticJourneyFailing", "synthetics"), ("HighCpu", "gateway"),
                          ("HighMemory", "worker")}
    lag = found[("QueueLag", "worker")]
    assert lag.labels["consumer"] == "worker-orders" and lag.value == 80
    assert lag.summary == "80 wait for worker-orders"
    assert found[("DeadLetters", "worker")].value == 3
    assert found[("SyntheticJourneyFailing", "synthetics")].value == 2
    assert found[("SyntheticJourneyFailing", "synthetics")].labels["journey"] == "checkout"
    # 0.495 of both cores: about one core busy.
    assert found[("HighCpu", "gateway")].value == pytest.approx(0.99)
    assert found[("HighMemory", "worker")].value == pytest.approx(2048)



def test_a_saturation_rule_leaves_out_the_services_it_excludes(
        store: TelemetryStore, tmp_path: Path) -> None:
    now = time.time_ns()
    for service in ("worker", "explorer"):
        write_points(store, "process.memory.usage", [(now - 10 * S, 700 * 1024 * 1024)],
                     service=service, kind="sum")
    evaluator = evaluator_for(store, tmp_path, """
rules:
  - {name: HighMemory, kind: saturation, resource: memory, window: 1m, threshold: 512,
     exclude_services: [explorer]}
""")
    evaluator.evaluate(now)
    assert states(evaluator) == {("HighMemory", "worker"): "firing"}


def test_the_default_error_rule_sees_a_service_its_callers_stopped_calling(
        store: TelemetryStore) -> None:
    """A failing service loses most of its traffic at once: its callers' circuit
    breakers open after five failures and then let one probe through every 5 s or so.
    The default rule still fires within a minute of the first failure, stays firing
    while only the probes come (and fail), and resolves within a minute and a half of
    the last failure."""
    fault = time.time_ns()
    # Two minutes of a healthy inventory, five requests a second.
    write_requests(store, service="inventory", route="/stock", start_ns=fault - 120 * S,
                   count=600, every_ns=S // 5)
    # Then the first calls fail (before the breaker opens), then only probes come, one
    # every 8 s for three minutes (a caller sends one when a request comes while the
    # breaker is half-open), all failing.
    write_requests(store, service="inventory", route="/stock", start_ns=fault, count=5,
                   every_ns=S // 5, failed=5)
    write_requests(store, service="inventory", route="/stock", start_ns=fault + 8 * S,
                   count=23, every_ns=8 * S, failed=23)
    evaluator = AlertEvaluator(store, None, burn=burn)  # the packaged defaults
    states_at: dict[int, str] = {}
    for seconds in range(0, 271, 10):
        evaluator.evaluate(fault + seconds * S)
        found = [a.state for a in evaluator.alerts.values() if a.rule == "HighErrorRate"]
        states_at[seconds] = found[0] if found else "inactive"
    fired = min(seconds for seconds, state in states_at.items() if state == "firing")
    # Evaluated every 10 s, spans in within a second or two: firing by 40 s leaves
    # room for both inside the minute.
    assert fired <= 40, states_at
    last_failure = 8 + 22 * 8
    assert all(states_at[seconds] == "firing" for seconds in states_at
               if fired <= seconds <= last_failure), states_at
    assert states_at[270] == "resolved", states_at  # 86 s after the last failure


BURN = """
slos:
  - name: checkout-availability
    service: gateway
    operations: ["POST /api/v1/orders"]
    kind: availability
    objective: 99
rules:
  - name: ErrorBudgetBurn
    kind: slo_burn_rate
    min_requests: 20
    pairs: [{long: 1h, short: 5m, factor: 14.4, severity: critical}]
"""


def _orders(store: TelemetryStore, start_ns: int, count: int, failed: int) -> None:
    write_requests(store, service="gateway", route="/api/v1/orders", method="POST",
                   start_ns=start_ns, count=count, every_ns=S, failed=failed)


def test_burn_rate_fires_only_when_both_windows_of_a_pair_burn(
        store: TelemetryStore, tmp_path: Path) -> None:
    now = time.time_ns()
    evaluator = evaluator_for(store, tmp_path, BURN)
    # 40 minutes ago half failed: the hour burns 25x, the last five minutes are fine.
    _orders(store, now - 2400 * S, 100, 50)
    _orders(store, now - 200 * S, 100, 0)
    assert evaluator.evaluate(now) == []

    # Now the last five minutes burn (50 of 100), but the hour holds 3,000 good ones:
    # 50 bad of 3,100 is 1.6 % of requests, 1.6x the budget.
    other = TelemetryStore(":memory:")
    try:
        _orders(other, now - 3500 * S, 3000, 0)
        _orders(other, now - 200 * S, 100, 50)
        assert AlertEvaluator(other, str(tmp_path / "alerts.yaml"),
                              burn=burn).evaluate(now) == []
        # Both windows burn: fires, naming the SLO and the pair.
        _orders(other, now - 3000 * S, 600, 600)
        both = AlertEvaluator(other, str(tmp_path / "alerts.yaml"), burn=burn)
        both.evaluate(now)
        (alert,) = both.alerts.values()
        assert alert.state == "firing"
        assert alert.labels == {"slo": "checkout-availability", "service": "gateway",
                                "window": "1h/5m", "severity": "critical"}
        assert alert.details["short_burn_rate"] == pytest.approx(50.0)
        assert alert.value == pytest.approx(650 / 3700 / 0.01)
    finally:
        other.close()


def test_states_survive_a_restart(store: TelemetryStore, tmp_path: Path) -> None:
    now = time.time_ns()
    write_requests(store, service="payments", route="/payments", start_ns=now - 30 * S,
                   count=30, failed=30)
    first = evaluator_for(store, tmp_path, ERROR_RATE.replace("for: 20s", "for: 0s"))
    first.save(first.evaluate(now))
    again = AlertEvaluator(store, first.rules_path, burn=burn)
    assert states(again) == {("HighErrorRate", "payments"): "firing"}
    assert again.evaluate(now + S) == []  # still firing: no new transition


def test_a_bad_rules_file_keeps_the_rules_in_use(store: TelemetryStore, tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    evaluator = evaluator_for(store, tmp_path, ERROR_RATE)
    assert [r.name for r in evaluator.rules.rules] == ["HighErrorRate"]
    path = Path(evaluator.rules_path or "")
    path.write_text(ERROR_RATE.replace("window: 60s", "window: soon") + "\n# changed\n")
    assert evaluator.reload() is False
    assert [r.name for r in evaluator.rules.rules] == ["HighErrorRate"]
    assert evaluator.load_error == (
        f"{path}: rule 'HighErrorRate' (rules[0]), field 'window': "
        "'soon' is not a duration such as 500ms, 30s, 2m, 1h or 3d")
    assert evaluator.load_error in caplog.text
    path.write_text(ERROR_RATE.replace("HighErrorRate", "Failing"))
    assert evaluator.reload() is True
    assert [r.name for r in evaluator.rules.rules] == ["Failing"]
    assert evaluator.load_error is None


def test_a_bad_file_at_start_falls_back_to_the_defaults(store: TelemetryStore,
                                                        tmp_path: Path) -> None:
    evaluator = evaluator_for(store, tmp_path, "rules: [{name: X, kind: nonsense}]")
    assert evaluator.rules_source == "(packaged defaults)"
    assert "HighErrorRate" in {r.name for r in evaluator.rules.rules}
    assert evaluator.load_error is not None and "field 'kind'" in evaluator.load_error


@pytest.mark.parametrize(("afterwards", "reason"), [
    ("nothing", "No requests in the last 1m: no traffic, so nothing to judge — which is "
                "not a fix."),
    ("a trickle", "Only 3 requests in the last 1m, fewer than the 20 the rule needs: too "
                  "little traffic to judge, which is not a fix."),
    ("healthy", "0.0 % of 40 requests failed over the last 1m (0): within the threshold of "
                "5.0 %."),
    ("a few failures", "10.0 % of 40 requests failed over the last 1m (4): fewer failures "
                       "than the 5 the rule fires at."),
])
def test_a_resolved_alert_says_why_no_traffic_is_not_a_fix(
        store: TelemetryStore, tmp_path: Path, afterwards: str, reason: str) -> None:
    now = time.time_ns()
    write_requests(store, service="payments", route="/payments", start_ns=now - 30 * S,
                   count=40, every_ns=S // 2, failed=20)
    evaluator = evaluator_for(store, tmp_path, ERROR_RATE.replace("for: 20s", "for: 0s"))
    evaluator.save(evaluator.evaluate(now))
    assert states(evaluator) == {("HighErrorRate", "payments"): "firing"}

    later = now + 120 * S
    if afterwards == "a trickle":
        write_requests(store, service="payments", route="/payments", start_ns=later - 30 * S,
                       count=3, failed=3)
    elif afterwards != "nothing":
        write_requests(store, service="payments", route="/payments", start_ns=later - 30 * S,
                       count=40, every_ns=S // 2, failed=4 if afterwards == "a few failures"
                       else 0)
    evaluator.save(evaluator.evaluate(later))

    assert states(evaluator) == {("HighErrorRate", "payments"): "resolved"}
    latest = queries.alert_history(store, since_ns=0)[0]
    assert (latest.from_state, latest.to_state, latest.reason) == (
        "firing", "resolved", reason)
    (alert,) = [presented(row).model_dump(mode="json") for row in queries.alert_states(store)]
    assert alert["resolution"] == reason and "resolution" not in alert["details"]


def test_every_kind_of_rule_says_why_it_does_not_fire(store: TelemetryStore) -> None:
    now = time.time_ns()
    write_points(store, "process.memory.usage", [(now - 10 * S, 100 * 1024 * 1024)],
                 service="worker", kind="sum")
    write_points(store, semconv.METRIC_DEAD_LETTERS, [(now - 10 * S, 0)], service="worker",
                 kind="sum", temporality="cumulative",
                 attributes={semconv.MESSAGING_CONSUMER: "order-confirmation"})
    rules = parse_rules("""
rules:
  - {name: HighMemory, kind: saturation, resource: memory, window: 1m, threshold: 512}
  - {name: DeadLetters, kind: dead_letters, window: 5m, threshold: 0}
  - {name: Burn, kind: slo_burn_rate, min_requests: 20}
slos:
  - {name: checkout, service: gateway, operations: ["POST /checkout"], kind: availability,
     objective: 99}
""", "test")
    found = {rule.name: evaluate_rule(store, rules, rule, now, burn=burn)
             for rule in rules.rules}
    ((memory,), (letters,)) = found["HighMemory"], found["DeadLetters"]
    assert not memory.breaching and english(memory.reason) == (
        "100 MiB over the last 1m, within the threshold of 512 MiB.")
    assert not letters.breaching and english(letters.reason) == (
        "0 over the last 5m, within the threshold of 0.")
    assert [english(sample.reason) for sample in found["Burn"]] == [
        "Only 0 requests in the last 5m, fewer than the 20 the rule needs: too little "
        "traffic to judge, which is not a fix.",
        "Only 0 requests in the last 30m, fewer than the 20 the rule needs: too little "
        "traffic to judge, which is not a fix.",
        "Only 0 requests in the last 6h, fewer than the 20 the rule needs: too little "
        "traffic to judge, which is not a fix."]


def test_a_store_from_before_the_reasons_keeps_its_history(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as old:
        old.execute("CREATE TABLE alert_history (time_ns BIGINT NOT NULL, fingerprint "
                    "VARCHAR NOT NULL, rule VARCHAR NOT NULL, labels JSON NOT NULL, "
                    "from_state VARCHAR NOT NULL, to_state VARCHAR NOT NULL, value DOUBLE, "
                    "summary VARCHAR)")
        old.execute("INSERT INTO alert_history VALUES (1, 'f', 'HighErrorRate', '{}', "
                    "'firing', 'resolved', 0.5, 'payments failed')")
    store = TelemetryStore(path)
    try:
        (row,) = queries.alert_history(store, since_ns=0)
    finally:
        store.close()
    assert row.summary == "payments failed" and row.reason is None
