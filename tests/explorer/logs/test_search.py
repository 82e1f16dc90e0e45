"""The logs' search on a real store: text is matched as written, `%` and `_` included
(DuckDB's LIKE has no escape character unless it is told one)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kansoku.explorer.logs.queries import search_logs
from kansoku.explorer.store import LOGS, Rows, TelemetryStore


@pytest.fixture
def store() -> Iterator[TelemetryStore]:
    store = TelemetryStore(":memory:")
    rows = Rows(LOGS)
    for time_ns, (service, severity, body) in enumerate([
            ("orders", 9, "order_id 42 paid"), ("orders", 9, "orderXid 7 paid"),
            ("cart", 13, "50% off applied"), ("cart", 17, "5000 off refused")], start=1):
        rows.add(LOGS.row(time_ns=time_ns, service=service, severity_number=severity,
                          severity=None, body=body, trace_id=None, span_id=None,
                          attributes=None, resource=None))
    store.submit(rows).result(timeout=10)
    yield store
    store.close()


def bodies(store: TelemetryStore, *, service: str | None = None,
           min_severity: int | None = None, text: str | None = None, limit: int = 10
           ) -> list[str | None]:
    found = search_logs(store, start_ns=0, end_ns=100, service=service,
                        min_severity=min_severity, text=text, trace_id=None, limit=limit)
    return [record.body for record in found]


def test_text_with_an_underscore_or_a_percent_sign_is_found_as_written(
        store: TelemetryStore) -> None:
    assert bodies(store, text="order_id") == ["order_id 42 paid"]
    assert bodies(store, text="50%") == ["50% off applied"]
    assert bodies(store, text="PAID") == ["orderXid 7 paid", "order_id 42 paid"]


def test_filters_combine(store: TelemetryStore) -> None:
    assert bodies(store, service="cart", min_severity=13) == ["5000 off refused",
                                                               "50% off applied"]
    assert bodies(store, service="cart", min_severity=17, text="off") == ["5000 off refused"]
    assert bodies(store, limit=1) == ["5000 off refused"]
