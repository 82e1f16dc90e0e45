"""Structured logs: one JSON object a line on stdout, and the same records over OTLP.

Every record carries time, level, service, message, trace_id, span_id, request_id and,
when known, user_id, so a log line leads to its trace and its request. E-mail addresses
are masked in every record (`kit.pii`): the user id names the person.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

from kansoku.kit.context import current_request_id, current_user_id
from kansoku.kit.pii import PersonalDataFilter

#: Attributes every LogRecord has; anything else on a record came from `extra=` and is
#: written out as a field of its own.
_STANDARD_RECORD_FIELDS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()
    | {"message", "asctime", "request_id", "user_id", "taskName", "color_message"}
)


class ContextFilter(logging.Filter):
    """Stamps the request id and user id on a record, for every handler that follows."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Only what is known: an empty attribute still costs the OTLP handler and the
        # exporter their work, on every record.
        request_id = current_request_id()
        if request_id is not None:
            record.request_id = request_id
        user_id = current_user_id()
        if user_id is not None:
            record.user_id = user_id
        return True


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            entry["trace_id"] = format(span_context.trace_id, "032x")
            entry["span_id"] = format(span_context.span_id, "016x")
        for field in ("request_id", "user_id"):
            value = getattr(record, field, None)
            if value:
                entry[field] = value
        for key, value in vars(record).items():
            if key not in _STANDARD_RECORD_FIELDS and not key.startswith("otel"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def skip_unused_record_fields() -> None:
    """Stop gathering, for every record, what no handler of a served process writes: the
    caller's source location (a walk up the stack), the thread, and the process id and
    name (a system call each). The logging HOWTO's "Optimization" section names these
    switches. Called by `kit.serve` only: a test run keeps them for its own log output.
    """
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def setup_logging(
    service: str, level: str, *, extra_handlers: Sequence[logging.Handler] = ()
) -> None:
    """Send every logger's records, uvicorn's included, through the JSON formatter.

    `extra_handlers` (the OTLP log handler) receive the same records, after the context
    filter has stamped them.
    """
    stdout = logging.StreamHandler(sys.stdout)
    stdout.setFormatter(JsonFormatter(service))
    handlers: list[logging.Handler] = [stdout, *extra_handlers]
    context_filter, personal_data = ContextFilter(), PersonalDataFilter()
    for handler in handlers:
        handler.addFilter(context_filter)
        # E-mail addresses masked before any handler writes or sends a record (kit.pii).
        handler.addFilter(personal_data)

    root = logging.getLogger()
    root.handlers = handlers
    root.setLevel(level.upper())
    # uvicorn configures its own handlers; route its records through ours instead. Its
    # access log is replaced by the request middleware's line, which knows the request id.
    for name in ("uvicorn", "uvicorn.error"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers = []
        uvicorn_logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # httpx logs every request at INFO; the client span already says all of it.
    logging.getLogger("httpx").setLevel(logging.WARNING)
