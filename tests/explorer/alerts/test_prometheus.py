"""The rules as PromQL (`explorer/prometheus.py`): the matchers each rule kind writes.
(`tests/commands/test_alerts.py` runs the exported files through promtool.)"""

from __future__ import annotations

from kansoku.explorer.alerts.prometheus import prometheus_rules
from kansoku.explorer.alerts.rules import parse_rules

RULES = """
rules:
  - name: Errors
    kind: error_rate
    services: [gateway, catalog]
    exclude_services: [catalog]
    exclude_routes: ["/lab/*"]
  - name: Memory
    kind: saturation
    resource: memory
    threshold: 512
    services: [gateway, explorer]
    exclude_services: [explorer]
  - name: Pool
    kind: saturation
    resource: db_pool
    threshold: 18
    exclude_services: [lab]
"""


def _expressions() -> dict[str, str]:
    document = prometheus_rules(parse_rules(RULES, "test"))
    return {rule["alert"]: rule["expr"] for group in document["groups"]
            for rule in group["rules"] if "alert" in rule}


def test_services_and_exclude_services_are_both_matchers() -> None:
    expressions = _expressions()
    assert ('{service=~"gateway|catalog", service!~"catalog", http_route!~"/lab/.*"}'
            in expressions["Errors"])
    assert ('process_memory_usage_bytes{service=~"gateway|explorer", service!~"explorer"}'
            in expressions["Memory"])
    assert 'db_client_connections_usage{service!~"lab", state="used"}' in expressions["Pool"]
