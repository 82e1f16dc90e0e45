"""The logs' SQL: a search of the log records."""

from __future__ import annotations

from typing import Any

from kansoku.explorer.common.sql import as_models, loads
from kansoku.explorer.logs.models import LogRecord
from kansoku.explorer.store import TelemetryStore


def search_logs(store: TelemetryStore, *, start_ns: int, end_ns: int, service: str | None,
                min_severity: int | None, text: str | None, trace_id: str | None,
                limit: int) -> list[LogRecord]:
    """Log records in [start, end], newest first, `limit` at most: of `service`, at
    `min_severity` or above, with `text` in the message, of one trace."""
    where = ["time_ns BETWEEN ? AND ?"]
    parameters: list[Any] = [start_ns, end_ns]
    if service:
        where.append("service = ?")
        parameters.append(service)
    if min_severity:
        where.append("severity_number >= ?")
        parameters.append(min_severity)
    if text:
        where.append("body ILIKE ?")
        parameters.append("%" + text.replace("\\", "\\\\").replace("%", "\\%")
                          .replace("_", "\\_") + "%")
    if trace_id:
        where.append("trace_id = ?")
        parameters.append(trace_id.lower())
    rows = store.rows(
        "SELECT time_ns, service, severity_number, severity, body, trace_id, span_id, "
        f"attributes FROM logs WHERE {' AND '.join(where)} "
        "ORDER BY time_ns DESC LIMIT ?", [*parameters, limit])
    for row in rows:
        row["attributes"] = loads(row["attributes"]) or {}
    return as_models(LogRecord, rows)
