"""Structured logs: one JSON object a line on stdout, and the same records over OTLP.

Every record carries time, level, service, message, trace_id, span_id, request_id and,
when known, user_id, so a log line leads to its trace and its request. E-mail addresses
are masked in every record (`kit.pii`): the user id names the person.

At INFO every line is kansoku telling an operator something: the libraries it runs on
narrate their own work at INFO (aiosmtpd a dozen lines of SMTP dialogue per e-mail,
uvicorn its start and stop, which the kit says once), and that chatter is DEBUG here
(`LIBRARY_LOGGERS`); their warnings and errors keep their level.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

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


#: The loggers (and their children) of libraries whose INFO records narrate their own
#: work rather than the shop's: aiosmtpd's SMTP dialogue (`mail.log`, `mail.debug`),
#: uvicorn's start and stop (the kit logs both), asyncio, the NATS client, httpx and
#: httpcore (the client span says all of it), OpenTelemetry's SDK, OpenFeature and the
#: flagd provider, the circuit breakers, Alembic.
LIBRARY_LOGGERS: Final = ("mail.log", "mail.debug", "uvicorn", "asyncio", "nats", "httpx",
                          "httpcore", "opentelemetry", "openfeature", "purgatory", "alembic")


class LibraryChatter(logging.Filter):
    """Makes a library's records below WARNING (see `LIBRARY_LOGGERS`) DEBUG records, and
    lets them through only when the process logs at DEBUG."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level
        self._prefixes = tuple(f"{name}." for name in LIBRARY_LOGGERS)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING or not (
                record.name in LIBRARY_LOGGERS or record.name.startswith(self._prefixes)):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return self.level <= logging.DEBUG


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
    """Send every logger's records, uvicorn's included, through the JSON formatter, with
    the libraries' chatter at DEBUG (`LibraryChatter`).

    `extra_handlers` (the OTLP log handler) receive the same records, after the context
    filter has stamped them.
    """
    stdout = logging.StreamHandler(sys.stdout)
    stdout.setFormatter(JsonFormatter(service))
    handlers: list[logging.Handler] = [stdout, *extra_handlers]
    root = logging.getLogger()
    root.setLevel(level.upper())
    chatter, context_filter = LibraryChatter(root.level), ContextFilter()
    personal_data = PersonalDataFilter()
    for handler in handlers:
        handler.addFilter(chatter)
        handler.addFilter(context_filter)
        # E-mail addresses masked before any handler writes or sends a record (kit.pii).
        handler.addFilter(personal_data)
    root.handlers = handlers
    # Unless the process logs at DEBUG, none of that chatter is written: the libraries'
    # loggers then skip making those records at all (httpx would make one per request).
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(
            logging.NOTSET if root.level <= logging.DEBUG else logging.WARNING)
    # uvicorn configures its own handlers; route its records through ours instead. Its
    # access log is replaced by the request middleware's line, which knows the request id.
    for name in ("uvicorn", "uvicorn.error"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers = []
        uvicorn_logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True
