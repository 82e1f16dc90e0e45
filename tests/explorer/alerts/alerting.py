"""What the alerting tests share: telemetry written straight through a real store (spans
and metric points as the OTLP receiver would decode them), at times the test chooses."""

from __future__ import annotations

import json
import os
from typing import Any

from kansoku.explorer.alerts.rules import RuleFile, parse_rules
from kansoku.explorer.store import METRIC_POINTS, SPANS, Rows, TelemetryStore

S = 1_000_000_000


def write_requests(store: TelemetryStore, *, service: str, route: str, start_ns: int,
                   count: int, every_ns: int = S // 10, ms: float = 20.0, failed: int = 0,
                   method: str = "GET", status: int = 200, failed_status: int = 500) -> None:
    """`count` server spans of `service` for `route`, one every `every_ns` from
    `start_ns`, each taking `ms`; the first `failed` answer `failed_status` (with an
    error status when it is 5xx), the others `status`."""
    rows = Rows(SPANS)
    for index in range(count):
        fails = index < failed
        values: dict[str, Any] = {
            "trace_id": os.urandom(16).hex(), "span_id": os.urandom(8).hex(),
            "parent_span_id": None, "service": service, "name": f"{method} {route}",
            "kind": "server", "start_ns": start_ns + index * every_ns,
            "duration_ns": int(ms * 1e6),
            "status": "error" if fails and failed_status >= 500 else "unset",
            "status_message": None, "route": route,
            "http_status": failed_status if fails else status,
            "user_id": None, "db_system": None, "db_statement": None, "peer_service": None,
            "messaging_destination": None, "attributes": None, "resource": None,
            "events": None, "links": None}
        rows.add(values[column] for column in SPANS.names)
    store.submit(rows).result(timeout=10)


def write_points(store: TelemetryStore, name: str, points: list[tuple[int, float]], *,
                 service: str, kind: str = "gauge", attributes: dict[str, Any] | None = None,
                 temporality: str = "unspecified") -> None:
    """Points of one metric series: (time, value) pairs."""
    rows = Rows(METRIC_POINTS)
    for time_ns, value in points:
        values: dict[str, Any] = {
            "time_ns": time_ns, "service": service, "name": name, "kind": kind,
            "unit": None, "attributes": json.dumps(attributes) if attributes else None,
            "value": value, "count": None, "sum": None, "bucket_counts": None,
            "bounds": None, "temporality": temporality, "monotonic": kind == "sum"}
        rows.add(values[column] for column in METRIC_POINTS.names)
    store.submit(rows).result(timeout=10)


def write_histogram(store: TelemetryStore, name: str, points: list[tuple[int, list[int]]],
                    *, service: str, bounds: list[float], attributes: dict[str, Any]
                    ) -> None:
    """Cumulative histogram points of one series: (time, bucket counts)."""
    rows = Rows(METRIC_POINTS)
    for time_ns, buckets in points:
        values: dict[str, Any] = {
            "time_ns": time_ns, "service": service, "name": name, "kind": "histogram",
            "unit": "s", "attributes": json.dumps(attributes), "value": None,
            "count": sum(buckets), "sum": 0.0, "bucket_counts": buckets, "bounds": bounds,
            "temporality": "cumulative", "monotonic": False}
        rows.add(values[column] for column in METRIC_POINTS.names)
    store.submit(rows).result(timeout=10)


def rules(text: str) -> RuleFile:
    return parse_rules(text, "test.yaml")
