"""The logs' SQL: a search of the log records."""

from __future__ import annotations

from kansoku.explorer.common.sql import ESCAPE, Where, as_models, containing, loads
from kansoku.explorer.logs.models import LogRecord
from kansoku.explorer.store import TelemetryStore


def search_logs(store: TelemetryStore, *, start_ns: int, end_ns: int, service: str | None,
                min_severity: int | None, text: str | None, trace_id: str | None,
                limit: int) -> list[LogRecord]:
    """Log records in [start, end], newest first, `limit` at most: of `service`, at
    `min_severity` or above, with `text` in the message, of one trace."""
    where = Where("time_ns BETWEEN ? AND ?", start_ns, end_ns)
    where.add_if(service, "service = ?")
    where.add_if(min_severity, "severity_number >= ?")
    where.add_if(containing(text) if text else None, f"body ILIKE ? {ESCAPE}")
    where.add_if(trace_id.lower() if trace_id else None, "trace_id = ?")
    rows = store.rows(
        "SELECT time_ns, service, severity_number, severity, body, trace_id, span_id, "
        f"attributes FROM logs WHERE {where} "
        "ORDER BY time_ns DESC LIMIT ?", [*where.parameters, limit])
    for row in rows:
        row["attributes"] = loads(row["attributes"]) or {}
    return as_models(LogRecord, rows)
