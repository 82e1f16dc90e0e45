"""The Approaches page's SQL: spans by the approach that made them (`telemetry.source`),
and each approach's latest checkout."""

from __future__ import annotations

from collections import defaultdict

from kansoku.explorer.approaches.models import (
    CHECKOUT_OPERATIONS,
    CHECKOUT_SERVICE,
    CheckoutTrace,
    RoleCount,
    SourceCount,
    span_role,
)
from kansoku.explorer.common.spans import SpanKind
from kansoku.explorer.common.sql import as_models, attribute_path
from kansoku.explorer.store import TelemetryStore
from kansoku.kit import semconv
from kansoku.kit.approaches import Instrumentation

#: SQL: the approach that made a span. Every intake sets it; spans stored before it did
#: came over OTLP.
SOURCE = (f"coalesce(json_extract_string(attributes, '{attribute_path(semconv.TELEMETRY_SOURCE)}'),"
          f" '{Instrumentation.OTEL.value}')")


def sources(store: TelemetryStore, start_ns: int, end_ns: int) -> list[SourceCount]:
    """Spans, traces and services per approach in the time range, most spans first."""
    return as_models(SourceCount, store.rows(
        f"SELECT {SOURCE} AS source, count(*) AS spans, count(DISTINCT trace_id) AS traces, "
        "list(DISTINCT service ORDER BY service) AS services FROM spans "
        "WHERE start_ns BETWEEN ? AND ? GROUP BY 1 ORDER BY spans DESC, source",
        [start_ns, end_ns]))


def latest_checkouts(store: TelemetryStore, start_ns: int, end_ns: int
                     ) -> list[CheckoutTrace]:
    """Per approach, the newest trace in the time range in which the gateway handled a
    checkout (`CHECKOUT_OPERATIONS`), with its spans by service and role."""
    placeholders = ", ".join("?" for _ in CHECKOUT_OPERATIONS)
    latest = store.rows(
        f"SELECT {SOURCE} AS source, arg_max(trace_id, start_ns) AS trace_id, "
        "arg_max(name, start_ns) AS operation FROM spans "
        "WHERE start_ns BETWEEN ? AND ? AND service = ? AND kind = ? "
        f"AND name IN ({placeholders}) GROUP BY 1 ORDER BY 1",
        [start_ns, end_ns, CHECKOUT_SERVICE, SpanKind.SERVER, *CHECKOUT_OPERATIONS])
    found = []
    for checkout in latest:
        # A plain comparison on trace_id: cheap at a million spans (docs/performance.md).
        spans = store.rows(
            "SELECT service, kind, db_system, start_ns, duration_ns FROM spans "
            "WHERE trace_id = ?", [checkout["trace_id"]])
        counts: dict[tuple[str, str], int] = defaultdict(int)
        for span in spans:
            counts[(span["service"], span_role(span["kind"], span["db_system"]))] += 1
        start = min(span["start_ns"] for span in spans)
        end = max(span["start_ns"] + span["duration_ns"] for span in spans)
        found.append(CheckoutTrace(
            source=checkout["source"], trace_id=checkout["trace_id"],
            operation=checkout["operation"], start_ns=start, duration_ns=end - start,
            spans=len(spans), services=sorted({span["service"] for span in spans}),
            roles=[RoleCount(service=service, role=role,
                             counts={checkout["source"]: count})
                   for (service, role), count in sorted(counts.items())]))
    return found
