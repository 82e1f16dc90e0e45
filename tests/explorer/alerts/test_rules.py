"""The alert rules file: the packaged defaults, and one clear error (file, rule, field)
for each kind of mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from kansoku.explorer.alerts import rules as rules_module
from kansoku.explorer.alerts.rules import (
    DEFAULT_RULES_RESOURCE,
    BurnRateRule,
    ErrorRateRule,
    RulesError,
    SaturationRule,
    extract_packaged_texts,
    load_rules,
    packaged_texts,
    parse_rules,
)
from kansoku.kit.durations import format_duration, parse_duration
from kansoku.services.worker.service import LEAK_LIMIT_BYTES


def test_the_packaged_defaults_cover_every_kind_and_the_workbook_pairs() -> None:
    rules = load_rules(None)
    assert {rule.kind for rule in rules.rules} == {
        "error_rate", "latency", "saturation", "synthetic_failure", "dead_letters",
        "queue_lag", "slo_burn_rate"}
    (burn,) = [rule for rule in rules.rules if isinstance(rule, BurnRateRule)]
    assert [(p.long, p.short, p.factor) for p in burn.pairs] == [
        (3600, 300, 14.4), (21600, 1800, 6), (259200, 21600, 1)]
    assert {slo.name for slo in rules.slos} >= {"checkout-availability",
                                                 "product-page-latency"}
    errors = next(rule for rule in rules.rules if isinstance(rule, ErrorRateRule))
    # Short enough to fire within a minute and resolve within three.
    assert errors.window <= 120 and errors.for_ <= 30


def test_the_catalogs_get_the_packaged_texts_as_the_explorer_looks_them_up() -> None:
    """scripts/messages extracts the packaged summaries and SLO descriptions with
    `extract_packaged_texts`; the explorer translates a rules file's text found among
    `packaged_texts`: the two must read the YAML alike (a folded text is one line)."""
    path = Path(rules_module.__file__).parent / DEFAULT_RULES_RESOURCE
    with path.open("rb") as yaml_file:
        extracted = [(line, text) for line, _function, text, _comments
                     in extract_packaged_texts(yaml_file, [], [], {})]
    texts = [text for _line, text in extracted]
    assert set(texts) == packaged_texts() and len(texts) == len(set(texts))
    lines = path.read_text().splitlines()
    assert all(lines[line - 1].strip().startswith(("summary:", "description:"))
               for line, _text in extracted), "each at the line it starts on"
    assert "\n" not in "".join(texts)



def test_the_default_memory_alert_can_see_the_worker_leak_fault() -> None:
    """workerMemoryLeak stops at LEAK_LIMIT_BYTES (a bound that keeps the machine
    alive): the memory alert must fire on the leak alone, whatever the worker holds besides,
    and leave out the explorer, whose DuckDB may use 512 MB by design."""
    memory = next(rule for rule in load_rules(None).rules
                  if isinstance(rule, SaturationRule) and rule.resource == "memory")
    assert memory.threshold <= LEAK_LIMIT_BYTES / 2**20
    assert memory.exclude_services == ["explorer"]


def test_a_missing_user_file_means_the_defaults(tmp_path: Path) -> None:
    assert load_rules(tmp_path / "absent.yaml") == load_rules(None)


@pytest.mark.parametrize(("text", "message"), [
    ("rules: [{name: Slow, kind: latency, window: soon}]",
     "rule 'Slow' (rules[0]), field 'window': 'soon' is not a duration such as 500ms, "
     "30s, 2m, 1h or 3d"),
    ("rules: [{name: X, kind: error_rate}, {name: Y, kind: nonsense}]",
     "rule 'Y' (rules[1]), field 'kind': must be one of error_rate, latency, saturation, "
     "synthetic_failure, dead_letters, queue_lag, slo_burn_rate"),
    ("rules: [{name: X, kind: error_rate, threshold: 5}]",
     "rule 'X' (rules[0]), field 'threshold': Input should be less than or equal to 1"),
    ("rules: [{name: X, kind: error_rate, windw: 1m}]",
     "rule 'X' (rules[0]), field 'windw': Extra inputs are not permitted"),
    ("rules: [{name: X, kind: queue_lag, for: forever}]",
     "rule 'X' (rules[0]), field 'for': 'forever' is not a duration"),
    ("rules: [{name: X, kind: queue_lag, summary: 'lag is {value'}]",
     "rule 'X' (rules[0]), field 'summary': expected '}' before end of string"),
    ("rules: [{name: X, kind: saturation, resource: disk, threshold: 1}]",
     "rule 'X' (rules[0]), field 'resource': Input should be 'cpu', 'memory' or 'db_pool'"),
    ("rules: [{name: X, kind: slo_burn_rate, slo: checkout}]",
     "rule 'X' watches SLO 'checkout', which the file does not define"),
    ("rules: [{name: X, kind: queue_lag}, {name: X, kind: dead_letters}]",
     "two rules are named 'X'"),
    ("slos: [{name: fast, service: gateway, operations: ['GET /'], kind: latency, "
     "objective: 99}]",
     "SLO 'fast' (slos[0]): a latency SLO needs a threshold"),
    ("slos: [{name: up, service: gateway, operations: ['/orders'], kind: availability, "
     "objective: 99}]",
     "SLO 'up' (slos[0]): operation '/orders' should be 'METHOD route'"),
    ("notifications: {receivers: [{name: hook}]}",
     "field 'notifications.receivers.0': a receiver has exactly one of webhook: or email:"),
    ("rules: [oops", "not valid YAML"),
    ("- just a list", "expected a mapping with rules:, slos: and notifications:"),
])
def test_mistakes_are_one_error_naming_file_rule_and_field(text: str, message: str) -> None:
    with pytest.raises(RulesError) as caught:
        parse_rules(text, "/data/alerts.yaml")
    assert str(caught.value).startswith("/data/alerts.yaml: ")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_an_unreadable_file_is_a_rules_error(tmp_path: Path) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_bytes(b"\xff\xfe rules")
    with pytest.raises(RulesError, match=r"alerts\.yaml: cannot be read"):
        load_rules(path)


def test_durations_read_and_write_back() -> None:
    assert [parse_duration(text) for text in ("500ms", "30s", "2m", "1h", "3d", 15)] == [
        0.5, 30, 120, 3600, 259200, 15]
    assert [format_duration(s) for s in (0.5, 30, 120, 3600, 259200, 90)] == [
        "500ms", "30s", "2m", "1h", "3d", "90s"]
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("2 minutes")
