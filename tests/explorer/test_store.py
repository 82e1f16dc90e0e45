"""The store's write path: what goes in through the columnar insert comes out the same,
awkward values included; trace lookups by a list of ids."""

from __future__ import annotations

from typing import Any

from kansoku.explorer import queries
from kansoku.explorer.otlp import LOG_COLUMNS, SPAN_COLUMNS, Rows
from kansoku.explorer.store import TelemetryStore

TRACE = "0af7651916cd43dd8448eb211c80319c"


def span(span_id: str, **values: Any) -> dict[str, Any]:
    row = dict.fromkeys(SPAN_COLUMNS)
    row.update(trace_id=TRACE, span_id=span_id, service="shop", name="GET /", kind="server",
               start_ns=1_700_000_000_000_000_000 + int(span_id, 16), duration_ns=5,
               status="ok")
    row.update(values)
    return row


def stored(rows: list[dict[str, Any]], table: str = "spans") -> list[tuple[Any, ...]]:
    columns = SPAN_COLUMNS if table == "spans" else LOG_COLUMNS
    batch = Rows(table, columns)
    for row in rows:
        batch.add(row[column] for column in columns)
    store = TelemetryStore(":memory:")
    try:
        store.submit(batch).result(timeout=10)
        return store.read(lambda cursor: cursor.execute(
            f"SELECT {', '.join(columns)} FROM {table} ORDER BY {columns[0]}, "
            f"{columns[1]}").fetchall())
    finally:
        store.close()


def test_awkward_values_come_back_unchanged() -> None:
    rows = [
        span("0000000000000001", name="", route="", http_status=0, user_id="ü 日本 🙂",
             attributes='{"k":"v"}'),
        span("0000000000000002", name="tab\there\nnewline, comma \\ \"quote\"",
             db_statement="\x1f in the middle", http_status=503),
        span("0000000000000003", status_message="\x1e", peer_service="x\x1ey",
             duration_ns=2**62),
        span("0000000000000004", parent_span_id="0000000000000001"),
    ]
    expected = [tuple(row[column] for column in SPAN_COLUMNS) for row in rows]
    assert stored(rows) == expected


def test_logs_come_back_unchanged() -> None:
    logs = [dict(zip(LOG_COLUMNS, values, strict=True)) for values in [
        (1, "shop", 9, "INFO", "hello\x1fworld", None, None, None, None),
        (2, "shop", None, None, "", TRACE, "0000000000000001", '{"a":1}', '{"b":2}'),
    ]]
    assert stored(logs, "logs") == [tuple(log.values()) for log in logs]


def test_spans_of_several_traces() -> None:
    other = "1" * 32
    batch = Rows("spans", SPAN_COLUMNS)
    for row in (span("0000000000000001"), span("0000000000000002", trace_id=other),
                span("0000000000000003", trace_id="2" * 32)):
        batch.add(row[column] for column in SPAN_COLUMNS)
    store = TelemetryStore(":memory:")
    try:
        store.submit(batch).result(timeout=10)
        found = queries.spans_of(store, [TRACE, other])
        assert [row["span_id"] for row in found] == ["0000000000000001", "0000000000000002"]
        assert queries.spans_of(store, []) == []
        assert queries.spans_of(store, ["f" * 32]) == []
    finally:
        store.close()
