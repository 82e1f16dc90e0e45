"""The store's write path: what goes in through the columnar (Arrow) insert comes out the
same, awkward values included; values of the wrong type for their column are converted
instead of failing the commit; trace lookups by a list of ids."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import duckdb

from kansoku.explorer.store import LOGS, METRIC_POINTS, SPANS, Rows, Table, TelemetryStore
from kansoku.explorer.traces import queries

TRACE = "0af7651916cd43dd8448eb211c80319c"


def span(span_id: str, **values: Any) -> dict[str, Any]:
    row = dict.fromkeys(SPANS.names)
    row.update(trace_id=TRACE, span_id=span_id, service="shop", name="GET /", kind="server",
               start_ns=1_700_000_000_000_000_000 + int(span_id, 16), duration_ns=5,
               status="ok")
    row.update(values)
    return row


def stored(rows: list[dict[str, Any]], table: Table = SPANS) -> list[tuple[Any, ...]]:
    columns = table.names
    batch = Rows(table)
    for row in rows:
        batch.add(row[column] for column in columns)
    store = TelemetryStore(":memory:")
    try:
        store.submit(batch).result(timeout=10)
        return store.read(lambda cursor: cursor.execute(
            f"SELECT {', '.join(columns)} FROM {table.name} ORDER BY {columns[0]}, "
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
    expected = [tuple(row[column] for column in SPANS.names) for row in rows]
    assert stored(rows) == expected


def test_logs_come_back_unchanged() -> None:
    logs = [dict(zip(LOGS.names, values, strict=True)) for values in [
        (1, "shop", 9, "INFO", "hello\x1fworld", None, None, None, None),
        (2, "shop", None, None, "", TRACE, "0000000000000001", '{"a":1}', '{"b":2}'),
    ]]
    assert stored(logs, LOGS) == [tuple(log.values()) for log in logs]


def test_metric_points_with_lists_come_back_unchanged() -> None:
    points = [dict(zip(METRIC_POINTS.names, values, strict=True)) for values in [
        (1, "shop", "http.server.duration", "histogram", "ms", '{"route":"/"}', None, 3,
         12.5, [1, 0, 2], [5.0, 10.0], "cumulative", False),
        (2, "shop", "requests", "sum", "1", None, 7.0, None, None, None, None, "delta",
         True),
        (3, "shop", "empty", "histogram", "", None, None, 0, 0.0, [], [], "delta", False),
    ]]
    assert stored(points, METRIC_POINTS) == [tuple(point.values()) for point in points]


def test_values_of_another_type_are_converted_not_fatal() -> None:
    """Arrow converts nothing: an attribute copied into a text column may be a number,
    a bool or a list, a status code may not fit an INTEGER. One such span must not fail
    the commit of everything written with it (its senders would retry it for ever)."""
    rows = [
        span("0000000000000001"),
        span("0000000000000002", user_id=42, db_system=True, route=["a", 1],
             peer_service={"b": 2}, messaging_destination=1.5, http_status=2**40),
    ]
    found = stored(rows)
    assert found[0] == tuple(rows[0][column] for column in SPANS.names)
    second = dict(zip(SPANS.names, found[1], strict=True))
    assert (second["user_id"], second["db_system"], second["route"],
            second["peer_service"], second["messaging_destination"],
            second["http_status"]) == ("42", "true", '["a",1]', '{"b":2}', "1.5", None)


def test_spans_of_several_traces() -> None:
    other = "1" * 32
    batch = Rows(SPANS)
    for row in (span("0000000000000001"), span("0000000000000002", trace_id=other),
                span("0000000000000003", trace_id="2" * 32)):
        batch.add(row[column] for column in SPANS.names)
    store = TelemetryStore(":memory:")
    try:
        store.submit(batch).result(timeout=10)
        found = queries.spans_of(store, [TRACE, other]).spans
        assert [row["span_id"] for row in found] == ["0000000000000001", "0000000000000002"]
        assert queries.spans_of(store, []).spans == []
        assert queries.spans_of(store, ["f" * 32]).spans == []
    finally:
        store.close()


def test_ids_that_are_not_hex_are_found_too() -> None:
    """The trace key (store.TRACE_KEY) is 0 for an id that is not hex: such spans share
    one key, and the id comparison still tells them apart."""
    batch = Rows(SPANS)
    for row in (span("0000000000000001", trace_id="not-hex-at-all"),
                span("0000000000000002", trace_id="also not hex"),
                span("0000000000000003", trace_id="ABCDEF0123456789" + "0" * 16)):
        batch.add(row[column] for column in SPANS.names)
    store = TelemetryStore(":memory:")
    try:
        store.submit(batch).result(timeout=10)
        assert [row["span_id"] for row in queries.spans_of(
            store, ["not-hex-at-all"]).spans] == ["0000000000000001"]
        assert [row["span_id"] for row in queries.spans_of(
            store, ["also not hex", "ABCDEF0123456789" + "0" * 16]).spans] == [
            "0000000000000002", "0000000000000003"]
        keys = store.rows("SELECT trace_id, trace_key FROM spans ORDER BY span_id")
        assert [row["trace_key"] for row in keys] == [0, 0, 0xABCDEF0123456789]
    finally:
        store.close()


def test_a_store_made_before_the_trace_key_gets_it(tmp_path: Path) -> None:
    """A store file written before spans and logs had `trace_key`: opening it adds the
    column and computes it for the rows already there, so their traces are still found."""
    path = tmp_path / "old.duckdb"
    old = duckdb.connect(str(path))
    for table in (SPANS, LOGS):
        old.execute(replace(table, derived=()).ddl)
    row = span("0000000000000001")
    old.execute(f"INSERT INTO spans ({', '.join(SPANS.names)}) VALUES "
                f"({', '.join('?' for _ in SPANS.names)})", [row[c] for c in SPANS.names])
    old.execute("INSERT INTO logs (time_ns, service, body, trace_id) VALUES (1, 'shop', "
                "'hello', ?)", [TRACE])
    old.close()
    store = TelemetryStore(path)
    try:
        assert [found["span_id"] for found in queries.spans_of(store, [TRACE]).spans] == [
            "0000000000000001"]
        assert [log.body for log in queries.logs_of(store, TRACE)] == ["hello"]
    finally:
        store.close()
