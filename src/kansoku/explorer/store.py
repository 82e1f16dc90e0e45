"""The explorer's store: spans, logs and metric points in an embedded DuckDB file.

Writes go through one writer thread. Receivers hand it decoded rows and wait; it takes
whatever has queued up (up to `_MAX_BATCH_ROWS`), turns each column into one Arrow array
and inserts the lot from that Arrow table in one transaction (DuckDB reads Arrow memory
directly; handing it Python values costs about a microsecond each, 21 a span), and only
then lets the receivers answer — so what the explorer acknowledged is on disk (DuckDB's
write-ahead log) and survives a restart, and a burst of small exports costs one commit,
not one each. When more rows wait than `max_pending_rows`, `submit` refuses at once
(`StoreBusy`) and the receiver answers 503 with Retry-After, the OTLP way of asking a
sender to back off, instead of growing without bound.

Reads use their own cursors, from worker threads, and see the last commit.

Problem detection (`explorer/problems.py`) listens to the span commits
(`add_span_listener`) and keeps what it finds in `problems` (one row per fingerprint)
and `problem_occurrences` (one per problem and trace), written by `record_problems`;
retention treats them like the rest.

The alert evaluator (`explorer/alerts.py`) keeps each alert's current state in
`alert_states` and every change of state in `alert_history` (`save_alerts`); retention
deletes old history, never a current state.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pyarrow as pa  # type: ignore[import-untyped]  # no stubs shipped

from kansoku.explorer.otlp import LOG_COLUMNS, METRIC_COLUMNS, SPAN_COLUMNS, Rows

logger = logging.getLogger("kansoku.explorer.store")

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spans (
    trace_id VARCHAR NOT NULL, span_id VARCHAR NOT NULL, parent_span_id VARCHAR,
    service VARCHAR NOT NULL, name VARCHAR NOT NULL, kind VARCHAR NOT NULL,
    start_ns BIGINT NOT NULL, duration_ns BIGINT NOT NULL,
    status VARCHAR NOT NULL, status_message VARCHAR,
    route VARCHAR, http_status INTEGER, user_id VARCHAR,
    db_system VARCHAR, db_statement VARCHAR, peer_service VARCHAR,
    messaging_destination VARCHAR,
    attributes JSON, resource JSON, events JSON, links JSON
);
CREATE TABLE IF NOT EXISTS logs (
    time_ns BIGINT NOT NULL, service VARCHAR NOT NULL, severity_number INTEGER,
    severity VARCHAR, body VARCHAR, trace_id VARCHAR, span_id VARCHAR,
    attributes JSON, resource JSON
);
CREATE TABLE IF NOT EXISTS metric_points (
    time_ns BIGINT NOT NULL, service VARCHAR NOT NULL, name VARCHAR NOT NULL,
    kind VARCHAR NOT NULL, unit VARCHAR, attributes JSON, value DOUBLE, count BIGINT,
    sum DOUBLE, bucket_counts BIGINT[], bounds DOUBLE[], temporality VARCHAR,
    monotonic BOOLEAN
);
CREATE TABLE IF NOT EXISTS problems (
    fingerprint VARCHAR NOT NULL, kind VARCHAR NOT NULL, service VARCHAR NOT NULL,
    operation VARCHAR NOT NULL, target VARCHAR, first_seen_ns BIGINT NOT NULL,
    last_seen_ns BIGINT NOT NULL, occurrences BIGINT NOT NULL, impact DOUBLE NOT NULL,
    impact_unit VARCHAR NOT NULL, example_trace_id VARCHAR NOT NULL, details JSON
);
CREATE TABLE IF NOT EXISTS problem_occurrences (
    fingerprint VARCHAR NOT NULL, trace_id VARCHAR NOT NULL, time_ns BIGINT NOT NULL,
    span_ids VARCHAR[] NOT NULL, impact DOUBLE NOT NULL, details JSON
);
CREATE TABLE IF NOT EXISTS alert_states (
    fingerprint VARCHAR NOT NULL, rule VARCHAR NOT NULL, labels JSON NOT NULL,
    state VARCHAR NOT NULL, since_ns BIGINT NOT NULL, active_since_ns BIGINT NOT NULL,
    value DOUBLE, summary VARCHAR, details JSON, notified_state VARCHAR,
    notified_ns BIGINT
);
CREATE TABLE IF NOT EXISTS alert_history (
    time_ns BIGINT NOT NULL, fingerprint VARCHAR NOT NULL, rule VARCHAR NOT NULL,
    labels JSON NOT NULL, from_state VARCHAR NOT NULL, to_state VARCHAR NOT NULL,
    value DOUBLE, summary VARCHAR, reason VARCHAR
);
-- Stores made before the history said why an alert resolved.
ALTER TABLE alert_history ADD COLUMN IF NOT EXISTS reason VARCHAR;
"""

_TEXT, _BIGINT, _INTEGER, _DOUBLE = pa.string(), pa.int64(), pa.int32(), pa.float64()
#: Each table's columns as Arrow types, matching _SCHEMA (JSON columns go in as text).
_ARROW_TYPES: dict[str, dict[str, pa.DataType]] = {
    "spans": {
        "trace_id": _TEXT, "span_id": _TEXT, "parent_span_id": _TEXT, "service": _TEXT,
        "name": _TEXT, "kind": _TEXT, "start_ns": _BIGINT, "duration_ns": _BIGINT,
        "status": _TEXT, "status_message": _TEXT, "route": _TEXT, "http_status": _INTEGER,
        "user_id": _TEXT, "db_system": _TEXT, "db_statement": _TEXT,
        "peer_service": _TEXT, "messaging_destination": _TEXT, "attributes": _TEXT,
        "resource": _TEXT, "events": _TEXT, "links": _TEXT},
    "logs": {
        "time_ns": _BIGINT, "service": _TEXT, "severity_number": _INTEGER,
        "severity": _TEXT, "body": _TEXT, "trace_id": _TEXT, "span_id": _TEXT,
        "attributes": _TEXT, "resource": _TEXT},
    "metric_points": {
        "time_ns": _BIGINT, "service": _TEXT, "name": _TEXT, "kind": _TEXT, "unit": _TEXT,
        "attributes": _TEXT, "value": _DOUBLE, "count": _BIGINT, "sum": _DOUBLE,
        "bucket_counts": pa.list_(_BIGINT), "bounds": pa.list_(_DOUBLE),
        "temporality": _TEXT, "monotonic": pa.bool_()},
}
_COLUMNS = {"spans": SPAN_COLUMNS, "logs": LOG_COLUMNS, "metric_points": METRIC_COLUMNS}
#: The name the writer's cursor gives the Arrow table it inserts from.
_STAGED = "staged_rows"
#: Each table's time column: retention deletes by it (a problem goes with its last
#: occurrence).
_TIME_COLUMNS = {"spans": "start_ns", "logs": "time_ns", "metric_points": "time_ns",
                 "problems": "last_seen_ns", "problem_occurrences": "time_ns",
                 "alert_history": "time_ns"}
#: Rows one commit takes at most; more wait for the next.
_MAX_BATCH_ROWS = 50_000
#: How long the writer waits for more rows to share a commit with.
_GATHER_SECONDS = 0.02


class StoreBusy(Exception):
    """More rows wait to be written than the store accepts; try again shortly."""


@dataclass(frozen=True)
class ProblemOccurrence:
    """One occurrence of a detected problem (see `explorer/problems.py`): what it is, the
    trace it was seen in and that trace's spans involved, and what it cost."""

    fingerprint: str
    kind: str
    service: str
    operation: str
    #: The normalised statement, or the route.
    target: str
    trace_id: str
    time_ns: int
    span_ids: tuple[str, ...]
    impact: float
    impact_unit: str
    details: dict[str, Any]
    #: 0: one occurrence per trace. Otherwise at most one per this many ns (the baseline
    #: rules look at overlapping windows: one occurrence per window).
    once_per_ns: int = 0


@dataclass(frozen=True)
class AlertRow:
    """One alert (a rule and one set of label values) as `alert_states` keeps it; the
    evaluator (`explorer/alerts.py`) owns the meaning of each field."""

    fingerprint: str
    rule: str
    labels: dict[str, str]
    state: str
    since_ns: int
    active_since_ns: int
    value: float | None
    summary: str
    details: dict[str, Any]
    notified_state: str | None
    notified_ns: int | None


@dataclass(frozen=True)
class AlertTransition:
    """An alert moving from one state to another, for `alert_history`."""

    time_ns: int
    fingerprint: str
    rule: str
    labels: dict[str, str]
    from_state: str
    to_state: str
    value: float | None
    summary: str
    #: Why an alert resolved (or a pending one went away): the value within the
    #: threshold, too little traffic to judge, no data.
    reason: str | None = None


@dataclass
class _Batch:
    rows: Rows
    done: Future[int]


def _insert_statement(table: str, columns: Sequence[str]) -> str:
    names = ", ".join(columns)
    return f"INSERT INTO {table} ({names}) SELECT {names} FROM {_STAGED}"


def _arrow_table(table: str, columns: Sequence[str], values: list[list[Any]]) -> pa.Table:
    types = _ARROW_TYPES[table]
    return pa.Table.from_arrays(
        [_arrow_array(column, types[name]) for name, column in zip(columns, values,
                                                                   strict=True)],
        names=list(columns))


def _arrow_array(values: list[Any], type_: pa.DataType) -> pa.Array:
    try:
        return pa.array(values, type=type_)
    except (pa.ArrowException, OverflowError):
        # Arrow converts nothing by itself: an attribute copied into a text column may be
        # a number, a bool or a list (`enduser.id` = 42), an integer may not fit. Converted
        # here, off the common path, rather than failing the whole commit.
        return pa.array([_fitted(value, type_) for value in values], type=type_)


_INT_RANGES = {_BIGINT: (-2**63, 2**63 - 1), _INTEGER: (-2**31, 2**31 - 1)}
_as_json = json.JSONEncoder(separators=(",", ":"), default=str).encode


def _fitted(value: Any, type_: pa.DataType) -> Any:
    """`value` as the column's type takes it: text for a text column, None for an
    integer out of range (a NOT NULL column then refuses it, as before)."""
    if value is None:
        return None
    if type_ == _TEXT:
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value) if isinstance(value, int | float) else _as_json(value)
    if type_ in _INT_RANGES:
        low, high = _INT_RANGES[type_]
        return value if type(value) is int and low <= value <= high else None
    if type_ == _DOUBLE:
        return float(value) if isinstance(value, int | float) else None
    return value


class TelemetryStore:
    """Spans, logs and metric points in DuckDB (`path`; ":memory:" for a throwaway)."""

    def __init__(self, path: str | Path, *, max_pending_rows: int = 500_000,
                 memory_limit: str = "512MB", threads: int = 2) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # DuckDB would take 80 % of the machine's memory and every core: on a laptop
        # that also runs the shop, the explorer keeps to a bounded share (and spills
        # big queries to disk rather than growing).
        self._db = duckdb.connect(self.path, config={"memory_limit": memory_limit,
                                                     "threads": threads})
        self._db.execute(_SCHEMA)
        self._statements = {table: _insert_statement(table, columns)
                            for table, columns in _COLUMNS.items()}
        self.max_pending_rows = max_pending_rows
        self._pending_rows = 0
        self._pending_lock = threading.Lock()
        self._queue: queue.Queue[_Batch | None] = queue.Queue()
        self.received = {"spans": 0, "logs": 0, "metric_points": 0, "rejected": 0}
        self._span_listeners: list[Callable[[Rows], None]] = []
        self._writer = threading.Thread(target=self._write_forever, name="explorer-writer",
                                        daemon=True)
        self._writer.start()

    # --- writing ---------------------------------------------------------------------

    def submit(self, rows: Rows) -> Future[int]:
        """Queue `rows` for the writer; the future resolves once they are committed.
        Raises `StoreBusy` when the backlog is full."""
        done: Future[int] = Future()
        with self._pending_lock:
            if self._pending_rows + len(rows) > self.max_pending_rows and self._pending_rows:
                raise StoreBusy(f"{self._pending_rows} rows are waiting to be written")
            self._pending_rows += len(rows)
        self._queue.put(_Batch(rows, done))
        return done

    def add_span_listener(self, listener: Callable[[Rows], None]) -> None:
        """Call `listener(rows)` with every batch of spans, in the writer thread, once
        committed (problem detection learns this way which traces received spans).
        Keep it quick: the next commit waits for it."""
        self._span_listeners.append(listener)

    def _write_forever(self) -> None:
        cursor = self._db.cursor()
        while True:
            first = self._queue.get()
            if first is None:
                return
            batches, size = [first], len(first.rows)
            deadline = time.monotonic() + _GATHER_SECONDS
            while size < _MAX_BATCH_ROWS:
                try:
                    more = self._queue.get(timeout=max(deadline - time.monotonic(), 0))
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batches.append(more)
                size += len(more.rows)
            self._commit(cursor, batches)

    def _commit(self, cursor: duckdb.DuckDBPyConnection, batches: list[_Batch]) -> None:
        by_table: dict[str, list[list[Any]]] = {}
        for batch in batches:
            columns = by_table.setdefault(batch.rows.table,
                                          [[] for _ in batch.rows.columns])
            for merged, values in zip(columns, batch.rows.values, strict=True):
                merged.extend(values)
        error: Exception | None = None
        try:
            cursor.execute("BEGIN TRANSACTION")
            for table, columns in by_table.items():
                if columns and columns[0]:
                    cursor.register(_STAGED, _arrow_table(table, _COLUMNS[table], columns))
                    try:
                        cursor.execute(self._statements[table])
                    finally:
                        cursor.unregister(_STAGED)
            cursor.execute("COMMIT")
        except Exception as exc:  # the receivers answer 503 and the senders retry
            logger.exception("could not write %d telemetry batches", len(batches))
            error = exc
            with contextlib.suppress(duckdb.Error):
                cursor.execute("ROLLBACK")
        with self._pending_lock:
            self._pending_rows -= sum(len(batch.rows) for batch in batches)
        for batch in batches:
            if error is None:
                self.received[batch.rows.table] += len(batch.rows)
                self.received["rejected"] += batch.rows.rejected
                batch.done.set_result(len(batch.rows))
            else:
                batch.done.set_exception(error)
        if error is None:
            for batch in batches:
                if batch.rows.table == "spans":
                    for listener in self._span_listeners:
                        try:
                            listener(batch.rows)
                        except Exception:
                            logger.exception("a span listener failed")

    # --- problems --------------------------------------------------------------------

    def record_problems(self, occurrences: Sequence[ProblemOccurrence]) -> int:
        """Keep new occurrences and fold them into their problems (one row per
        fingerprint: first and last seen, occurrences, total impact, the latest trace
        as the example). An occurrence already kept for the same problem and trace, or
        (with `once_per_ns`) one too soon after the last, only moves `last_seen` and
        brings the evidence up to date.
        Returns the occurrences kept. Call it from one thread at a time."""
        if not occurrences:
            return 0

        def run(cursor: duckdb.DuckDBPyConnection) -> int:
            prints = sorted({o.fingerprint for o in occurrences})
            cursor.execute("BEGIN TRANSACTION")
            try:
                kept = self._new_occurrences(cursor, prints, occurrences)
                if kept:
                    cursor.executemany(
                        "INSERT INTO problem_occurrences (fingerprint, trace_id, time_ns, "
                        "span_ids, impact, details) VALUES (?, ?, ?, ?, ?, ?)",
                        [[o.fingerprint, o.trace_id, o.time_ns, list(o.span_ids), o.impact,
                          _as_json(o.details)] for o in kept])
                self._fold_into_problems(cursor, prints, occurrences, kept)
                cursor.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    cursor.execute("ROLLBACK")
                raise
            return len(kept)
        return self.read(run)

    @staticmethod
    def _new_occurrences(cursor: duckdb.DuckDBPyConnection, prints: list[str],
                         occurrences: Sequence[ProblemOccurrence]) -> list[ProblemOccurrence]:
        traces = sorted({o.trace_id for o in occurrences})
        seen = {(row[0], row[1]) for row in cursor.execute(
            "SELECT fingerprint, trace_id FROM problem_occurrences "
            "WHERE fingerprint = ANY(?::VARCHAR[]) AND trace_id = ANY(?::VARCHAR[])",
            [prints, traces]).fetchall()}
        latest = dict(cursor.execute(
            "SELECT fingerprint, max(time_ns) FROM problem_occurrences "
            "WHERE fingerprint = ANY(?::VARCHAR[]) GROUP BY fingerprint", [prints]).fetchall())
        kept = []
        for occurrence in occurrences:
            key = (occurrence.fingerprint, occurrence.trace_id)
            last = latest.get(occurrence.fingerprint)
            if key in seen or (occurrence.once_per_ns and last is not None
                               and occurrence.time_ns - last < occurrence.once_per_ns):
                continue
            seen.add(key)
            latest[occurrence.fingerprint] = max(last or 0, occurrence.time_ns)
            kept.append(occurrence)
        return kept

    @staticmethod
    def _fold_into_problems(cursor: duckdb.DuckDBPyConnection, prints: list[str],
                            occurrences: Sequence[ProblemOccurrence],
                            kept: list[ProblemOccurrence]) -> None:
        known = {row[0] for row in cursor.execute(
            "SELECT fingerprint FROM problems WHERE fingerprint = ANY(?::VARCHAR[])",
            [prints]).fetchall()}
        for fingerprint in prints:
            mine = [o for o in occurrences if o.fingerprint == fingerprint]
            new = [o for o in kept if o.fingerprint == fingerprint]
            latest = max(mine, key=lambda o: o.time_ns)
            if fingerprint in known:
                if new:
                    example = max(new, key=lambda o: o.time_ns)
                    cursor.execute(
                        "UPDATE problems SET last_seen_ns = greatest(last_seen_ns, ?), "
                        "first_seen_ns = least(first_seen_ns, ?), "
                        "occurrences = occurrences + ?, impact = impact + ?, "
                        "example_trace_id = ?, details = ? WHERE fingerprint = ?",
                        [example.time_ns, min(o.time_ns for o in new), len(new),
                         sum(o.impact for o in new), example.trace_id,
                         _as_json(example.details), fingerprint])
                else:  # seen again: the latest evidence, nothing counted twice
                    cursor.execute(
                        "UPDATE problems SET last_seen_ns = greatest(last_seen_ns, ?), "
                        "details = ? WHERE fingerprint = ?",
                        [latest.time_ns, _as_json(latest.details), fingerprint])
            elif new:
                example = max(new, key=lambda o: o.time_ns)
                cursor.execute(
                    "INSERT INTO problems (fingerprint, kind, service, operation, target, "
                    "first_seen_ns, last_seen_ns, occurrences, impact, impact_unit, "
                    "example_trace_id, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [fingerprint, example.kind, example.service, example.operation,
                     example.target, min(o.time_ns for o in new), example.time_ns, len(new),
                     sum(o.impact for o in new), example.impact_unit, example.trace_id,
                     _as_json(example.details)])

    # --- alerts ----------------------------------------------------------------------

    def save_alerts(self, alerts: Sequence[AlertRow],
                    transitions: Sequence[AlertTransition]) -> None:
        """Replace the alerts' current states with `alerts` and append `transitions` to
        their history, in one transaction (a few hundred rows at most: the states are
        rewritten whole). Call it from one thread at a time."""
        def run(cursor: duckdb.DuckDBPyConnection) -> None:
            cursor.execute("BEGIN TRANSACTION")
            try:
                cursor.execute("DELETE FROM alert_states")
                if alerts:
                    cursor.executemany(
                        "INSERT INTO alert_states (fingerprint, rule, labels, state, "
                        "since_ns, active_since_ns, value, summary, details, "
                        "notified_state, notified_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [[a.fingerprint, a.rule, _as_json(a.labels), a.state, a.since_ns,
                          a.active_since_ns, a.value, a.summary, _as_json(a.details),
                          a.notified_state, a.notified_ns] for a in alerts])
                if transitions:
                    cursor.executemany(
                        "INSERT INTO alert_history (time_ns, fingerprint, rule, labels, "
                        "from_state, to_state, value, summary, reason) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [[t.time_ns, t.fingerprint, t.rule, _as_json(t.labels), t.from_state,
                          t.to_state, t.value, t.summary, t.reason] for t in transitions])
                cursor.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    cursor.execute("ROLLBACK")
                raise
        self.read(run)

    # --- reading ---------------------------------------------------------------------

    def read(self, query: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run `query` on a cursor of its own (call it from a worker thread)."""
        cursor = self._db.cursor()
        try:
            return query(cursor)
        finally:
            cursor.close()

    def rows(self, sql: str, parameters: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """The result of `sql` as dicts (call it from a worker thread)."""
        def run(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
            result = cursor.execute(sql, list(parameters))
            names = [column[0] for column in result.description or []]
            return [dict(zip(names, row, strict=True)) for row in result.fetchall()]
        return self.read(run)

    @property
    def pending_rows(self) -> int:
        return self._pending_rows

    # --- retention -------------------------------------------------------------------

    def size_bytes(self) -> int:
        """The space the data takes: blocks in use in the file (freed blocks are reused
        before the file grows) plus the write-ahead log not yet checkpointed."""
        def run(cursor: duckdb.DuckDBPyConnection) -> int:
            row = cursor.execute(
                "SELECT used_blocks, block_size FROM pragma_database_size()").fetchone()
            return int(row[0]) * int(row[1]) if row else 0
        wal = Path(f"{self.path}.wal")
        return self.read(run) + (wal.stat().st_size if wal.exists() else 0)

    def enforce_retention(self, *, max_age_seconds: float, max_bytes: int) -> int:
        """Delete what is older than `max_age_seconds`, then, while the file is larger
        than `max_bytes`, the oldest tenth of what is left. Returns rows deleted."""
        cutoff = time.time_ns() - int(max_age_seconds * 1e9)
        deleted = self._delete_before(cutoff)
        for _ in range(10):
            if self.size_bytes() <= max_bytes:
                break
            cutoffs = self.rows(
                "SELECT quantile_disc(start_ns, 0.1) AS cutoff FROM spans")
            oldest = cutoffs[0]["cutoff"] if cutoffs else None
            if oldest is None:
                break
            deleted += self._delete_before(int(oldest) + 1)
            self.read(lambda cursor: cursor.execute("CHECKPOINT"))
        return deleted

    def _delete_before(self, cutoff_ns: int) -> int:
        def run(cursor: duckdb.DuckDBPyConnection) -> int:
            total = 0
            for table, column in _TIME_COLUMNS.items():
                # DuckDB answers a DELETE with the number of rows it deleted.
                row = cursor.execute(f"DELETE FROM {table} WHERE {column} < ?",
                                     [cutoff_ns]).fetchone()
                total += int(row[0]) if row else 0
            return total
        return self.read(run)

    def close(self) -> None:
        self._queue.put(None)
        self._writer.join(timeout=10)
        self._db.close()
