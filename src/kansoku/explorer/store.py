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

Every table is declared once, as a `Table` below: its DDL, the Arrow types the writer
inserts with and the order of a row's values in `Rows` all come from that declaration.
The SQL that reads (and the few statements that write findings) belongs to the feature
that asks: `explorer/<feature>/queries.py`. Problem detection listens to the span
commits (`add_span_listener`) and writes `problems` and `problem_occurrences`; the alert
evaluator writes `alert_states` and `alert_history` (`in_transaction`). Retention
deletes by each table's `time_column`, so never a current alert state.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pyarrow as pa  # type: ignore[import-untyped]  # no stubs shipped

logger = logging.getLogger("kansoku.explorer.store")

T = TypeVar("T")

@dataclass(frozen=True)
class ColumnType:
    """How a column is declared in DuckDB and handed to it by the writer, in Arrow."""

    sql: str
    arrow: pa.DataType


TEXT = ColumnType("VARCHAR", pa.string())
#: JSON text: DuckDB parses it on insert, the writer hands it over as text.
JSON = ColumnType("JSON", pa.string())
BIGINT = ColumnType("BIGINT", pa.int64())
UBIGINT = ColumnType("UBIGINT", pa.uint64())
INTEGER = ColumnType("INTEGER", pa.int32())
DOUBLE = ColumnType("DOUBLE", pa.float64())
BOOLEAN = ColumnType("BOOLEAN", pa.bool_())
BIGINT_LIST = ColumnType("BIGINT[]", pa.list_(pa.int64()))
DOUBLE_LIST = ColumnType("DOUBLE[]", pa.list_(pa.float64()))
TEXT_LIST = ColumnType("VARCHAR[]", pa.list_(pa.string()))


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    required: bool = False


def _required(name: str, type_: ColumnType) -> Column:
    return Column(name, type_, required=True)


@dataclass(frozen=True)
class Derived:
    """A column DuckDB computes from a row's other columns as the writer inserts it
    (`sql`, an expression of them), so no decoder supplies it and no `Rows` holds it."""

    name: str
    type: ColumnType
    sql: str


#: A trace id's first 16 hex digits as a number (0 for an id that is not hex). Spans are
#: looked up by it before their ids are compared: DuckDB scans a million 64-bit numbers
#: in about a millisecond, a million 32-character ids in four (decompressing each
#: string). An index on `trace_id` would answer as fast but hold about 128 MiB per
#: million spans; this column holds 8 MiB. A DuckDB macro, so the writer and every
#: query compute it the same way.
TRACE_KEY_MACRO = ("CREATE OR REPLACE MACRO trace_key_of(id) AS "
                   "coalesce(try_cast(('0x' || left(id, 16)) AS UBIGINT), 0)")
TRACE_KEY = Derived("trace_key", UBIGINT, "trace_key_of(trace_id)")


@dataclass(frozen=True)
class Table:
    """One table, declared once: its DDL, the Arrow types the writer inserts with and
    the order of the values in a row of `Rows` all come from `columns`."""

    name: str
    columns: tuple[Column, ...]
    #: The column retention deletes by (None: kept until replaced, as alert states are).
    time_column: str | None
    #: Columns added after the table first shipped, for stores made before them.
    added_later: tuple[str, ...] = ()
    #: Columns DuckDB computes on insert; a store made before one gets it filled in.
    derived: tuple[Derived, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    @property
    def ddl(self) -> str:
        declared = ", ".join([f"{column.name} {column.type.sql}"
                              f"{' NOT NULL' if column.required else ''}"
                              for column in self.columns]
                             + [f"{column.name} {column.type.sql}" for column in self.derived])
        added = "".join(f"; ALTER TABLE {self.name} ADD COLUMN IF NOT EXISTS {column.name} "
                        f"{column.type.sql}" for column in self.columns
                        if column.name in self.added_later)
        # A store made before a derived column: added, then computed for the rows it
        # holds (once; new rows get it on insert).
        derived = "".join(f"; ALTER TABLE {self.name} ADD COLUMN IF NOT EXISTS {column.name} "
                          f"{column.type.sql}; UPDATE {self.name} SET {column.name} = "
                          f"{column.sql} WHERE {column.name} IS NULL"
                          for column in self.derived)
        return f"CREATE TABLE IF NOT EXISTS {self.name} ({declared}){added}{derived}"

    def row(self, **values: Any) -> tuple[Any, ...]:
        """One row's values in the order of `columns`, from the values by name (every
        column's, no other: a mistake is a KeyError here, not a shifted column)."""
        if len(values) != len(self.columns):
            unknown = sorted(set(values) - set(self.names))
            raise KeyError(f"{self.name}: not its columns: {unknown}" if unknown
                           else f"{self.name}: missing {sorted(set(self.names) - set(values))}")
        return tuple(values[name] for name in self.names)


SPANS = Table("spans", (
    _required("trace_id", TEXT), _required("span_id", TEXT), Column("parent_span_id", TEXT),
    _required("service", TEXT), _required("name", TEXT), _required("kind", TEXT),
    _required("start_ns", BIGINT), _required("duration_ns", BIGINT),
    _required("status", TEXT), Column("status_message", TEXT),
    Column("route", TEXT), Column("http_status", INTEGER), Column("user_id", TEXT),
    Column("db_system", TEXT), Column("db_statement", TEXT), Column("peer_service", TEXT),
    Column("messaging_destination", TEXT),
    Column("attributes", JSON), Column("resource", JSON), Column("events", JSON),
    Column("links", JSON)), time_column="start_ns", derived=(TRACE_KEY,))
LOGS = Table("logs", (
    _required("time_ns", BIGINT), _required("service", TEXT), Column("severity_number", INTEGER),
    Column("severity", TEXT), Column("body", TEXT), Column("trace_id", TEXT),
    Column("span_id", TEXT), Column("attributes", JSON), Column("resource", JSON)),
    time_column="time_ns", derived=(TRACE_KEY,))
METRIC_POINTS = Table("metric_points", (
    _required("time_ns", BIGINT), _required("service", TEXT), _required("name", TEXT),
    _required("kind", TEXT), Column("unit", TEXT), Column("attributes", JSON),
    Column("value", DOUBLE), Column("count", BIGINT), Column("sum", DOUBLE),
    Column("bucket_counts", BIGINT_LIST), Column("bounds", DOUBLE_LIST),
    Column("temporality", TEXT), Column("monotonic", BOOLEAN)), time_column="time_ns")
#: Problem detection's findings (explorer/problems): one row per problem, and one per
#: occurrence of it in a trace. A problem goes with its last occurrence.
PROBLEMS = Table("problems", (
    _required("fingerprint", TEXT), _required("kind", TEXT), _required("service", TEXT),
    _required("operation", TEXT), Column("target", TEXT), _required("first_seen_ns", BIGINT),
    _required("last_seen_ns", BIGINT), _required("occurrences", BIGINT),
    _required("impact", DOUBLE), _required("impact_unit", TEXT),
    _required("example_trace_id", TEXT), Column("details", JSON)), time_column="last_seen_ns")
PROBLEM_OCCURRENCES = Table("problem_occurrences", (
    _required("fingerprint", TEXT), _required("trace_id", TEXT), _required("time_ns", BIGINT),
    _required("span_ids", TEXT_LIST), _required("impact", DOUBLE), Column("details", JSON)),
    time_column="time_ns")
#: The alert evaluator's (explorer/alerts): each alert's current state (never deleted
#: by retention), and every change of state.
ALERT_STATES = Table("alert_states", (
    _required("fingerprint", TEXT), _required("rule", TEXT), _required("labels", JSON),
    _required("state", TEXT), _required("since_ns", BIGINT),
    _required("active_since_ns", BIGINT), Column("value", DOUBLE), Column("summary", TEXT),
    Column("details", JSON), Column("notified_state", TEXT), Column("notified_ns", BIGINT),
    # What is said to people, kept to be written in each reader's language
    # (explorer/alerts/texts.py); `summary` and the details keep it in English.
    Column("texts", JSON)),
    time_column=None,
    # Stores made before the alerts spoke the reader's language.
    added_later=("texts",))
ALERT_HISTORY = Table("alert_history", (
    _required("time_ns", BIGINT), _required("fingerprint", TEXT), _required("rule", TEXT),
    _required("labels", JSON), _required("from_state", TEXT), _required("to_state", TEXT),
    Column("value", DOUBLE), Column("summary", TEXT), Column("reason", TEXT),
    Column("texts", JSON)),
    time_column="time_ns",
    # Stores made before the history said why an alert resolved, and before it spoke
    # the reader's language.
    added_later=("reason", "texts"))
TABLES = (SPANS, LOGS, METRIC_POINTS, PROBLEMS, PROBLEM_OCCURRENCES, ALERT_STATES,
          ALERT_HISTORY)
#: The tables OTLP fills, through `submit`.
RECEIVED = (SPANS, LOGS, METRIC_POINTS)

#: The name the writer's cursor gives the Arrow table it inserts from.
_STAGED = "staged_rows"
#: Rows one commit takes at most; more wait for the next.
_MAX_BATCH_ROWS = 50_000
#: How long the writer waits for more rows to share a commit with.
_GATHER_SECONDS = 0.02


@dataclass
class Rows:
    """Decoded records for one of the `RECEIVED` tables, column by column (in the
    table's order), ready for one columnar insert."""

    table: Table
    values: list[list[Any]] = field(default_factory=list)
    rejected: int = 0
    error: str = ""

    def __post_init__(self) -> None:
        self.values = [[] for _ in self.table.columns]

    def add(self, row: Iterable[Any]) -> None:
        """One record: its values in the order of the table's columns."""
        for column, value in zip(self.values, row, strict=True):
            column.append(value)

    def appenders(self) -> dict[str, Callable[[Any], None]]:
        """Each column's `append`, by name: for a decoder's hot loop, which appends
        column by column without building a row."""
        return {name: column.append
                for name, column in zip(self.table.names, self.values, strict=True)}

    def __len__(self) -> int:
        return len(self.values[0]) if self.values else 0


class StoreBusy(Exception):
    """More rows wait to be written than the store accepts; try again shortly."""


@dataclass
class _Batch:
    rows: Rows
    done: Future[int]


def _insert_statement(table: Table) -> str:
    names = ", ".join(table.names)
    derived_names = "".join(f", {column.name}" for column in table.derived)
    derived_values = "".join(f", {column.sql}" for column in table.derived)
    return (f"INSERT INTO {table.name} ({names}{derived_names}) "
            f"SELECT {names}{derived_values} FROM {_STAGED}")


def _arrow_table(table: Table, values: list[list[Any]]) -> pa.Table:
    return pa.Table.from_arrays(
        [_arrow_array(column, spec.type.arrow) for spec, column in zip(table.columns, values,
                                                                       strict=True)],
        names=list(table.names))


def _arrow_array(values: list[Any], type_: pa.DataType) -> pa.Array:
    try:
        return pa.array(values, type=type_)
    except (pa.ArrowException, OverflowError):
        # Arrow converts nothing by itself: an attribute copied into a text column may be
        # a number, a bool or a list (`enduser.id` = 42), an integer may not fit. Converted
        # here, off the common path, rather than failing the whole commit.
        return pa.array([_fitted(value, type_) for value in values], type=type_)


_INT_RANGES = {BIGINT.arrow: (-2**63, 2**63 - 1), INTEGER.arrow: (-2**31, 2**31 - 1)}
as_json = json.JSONEncoder(separators=(",", ":"), default=str).encode


def _fitted(value: Any, type_: pa.DataType) -> Any:
    """`value` as the column's type takes it: text for a text column, None for an
    integer out of range (a NOT NULL column then refuses it, as before)."""
    if value is None:
        return None
    if type_ == TEXT.arrow:
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value) if isinstance(value, int | float) else as_json(value)
    if type_ in _INT_RANGES:
        low, high = _INT_RANGES[type_]
        return value if type(value) is int and low <= value <= high else None
    if type_ == DOUBLE.arrow:
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
        self._db.execute(TRACE_KEY_MACRO)
        for table in TABLES:
            self._db.execute(table.ddl)
        self._statements = {table.name: _insert_statement(table) for table in RECEIVED}
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
        by_table: dict[Table, list[list[Any]]] = {}
        for batch in batches:
            columns = by_table.setdefault(batch.rows.table,
                                          [[] for _ in batch.rows.table.columns])
            for merged, values in zip(columns, batch.rows.values, strict=True):
                merged.extend(values)
        error: Exception | None = None
        try:
            cursor.execute("BEGIN TRANSACTION")
            for table, columns in by_table.items():
                if columns and columns[0]:
                    cursor.register(_STAGED, _arrow_table(table, columns))
                    try:
                        cursor.execute(self._statements[table.name])
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
                self.received[batch.rows.table.name] += len(batch.rows)
                self.received["rejected"] += batch.rows.rejected
                batch.done.set_result(len(batch.rows))
            else:
                batch.done.set_exception(error)
        if error is None:
            for batch in batches:
                if batch.rows.table is SPANS:
                    for listener in self._span_listeners:
                        try:
                            listener(batch.rows)
                        except Exception:
                            logger.exception("a span listener failed")

    # --- reading, and the features' own writes ---------------------------------------

    def in_transaction(self, work: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run `work` on a cursor of its own inside one transaction, rolled back if it
        raises (call it from a worker thread, one writer of those tables at a time)."""
        def run(cursor: duckdb.DuckDBPyConnection) -> T:
            cursor.execute("BEGIN TRANSACTION")
            try:
                result = work(cursor)
                cursor.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    cursor.execute("ROLLBACK")
                raise
            return result
        return self.read(run)

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
            for table in TABLES:
                if table.time_column is None:
                    continue
                # DuckDB answers a DELETE with the number of rows it deleted.
                row = cursor.execute(
                    f"DELETE FROM {table.name} WHERE {table.time_column} < ?",
                    [cutoff_ns]).fetchone()
                total += int(row[0]) if row else 0
            return total
        return self.read(run)

    def close(self) -> None:
        self._queue.put(None)
        self._writer.join(timeout=10)
        self._db.close()
