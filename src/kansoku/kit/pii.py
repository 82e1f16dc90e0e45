"""Personal data kept out of logs and spans: e-mail addresses are masked on the way out.

The user id (`enduser.id`, `user_id`) is how telemetry names a person; an e-mail address
names them to anyone who reads it, and logs and traces are read by many (the explorer,
a vendor's backend). Whatever code logs or records — our own lines, a library's (the
SMTP server's "recip: <alice@example.com>"), an exception's message — passes one of
two gates before it leaves the process:

- `PersonalDataFilter`, on every log handler (`kit.logging.setup_logging`): the
  message, string fields given with `extra=` and the exception's text;
- `PersonalDataSpanProcessor`, around the span exporter (`kit.telemetry`): attributes,
  event attributes (an exception's message) and the status description.

`alice@example.com` becomes `a***@example.com`: the domain stays (a mail provider's
outage is still visible), the person does not.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, Final

from opentelemetry.context import Context
from opentelemetry.sdk.trace import Event, ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import Status
from opentelemetry.util.types import AnyValue

#: An address as mail servers and people write them; the local part is masked.
_EMAIL: Final = re.compile(
    r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")


def mask_emails(text: str) -> str:
    """`text` with every e-mail address's local part masked (`a***@example.com`)."""
    if "@" not in text:  # the common case, without a regex
        return text
    return _EMAIL.sub(r"\1***@\2", text)


def _masked_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask_emails(value)
    if isinstance(value, tuple | list):
        return type(value)(_masked_value(item) for item in value)
    return value


#: Attributes every LogRecord has; the others came from `extra=`.
_RECORD_FIELDS: Final = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)))


class PersonalDataFilter(logging.Filter):
    """Masks e-mail addresses in a record's message, its string extras and its
    exception text, for every handler it is added to."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "@" in message:
            record.msg, record.args = mask_emails(message), None
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and isinstance(value, str | list | tuple):
                setattr(record, key, _masked_value(value))
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            if "@" in text:
                # An exception may name an address in its message or its arguments: its
                # masked text takes its place, in the message.
                record.msg = f"{record.getMessage()}\n{mask_emails(text)}"
                record.args, record.exc_info, record.exc_text = None, None, None
        return True


def _masked_attributes(attributes: Mapping[str, AnyValue] | None
                       ) -> dict[str, AnyValue] | None:
    if not attributes:
        return None
    return {key: _masked_value(value) for key, value in attributes.items()}


def _names_an_address(span: ReadableSpan) -> bool:
    def has_at(attributes: Mapping[str, AnyValue] | None) -> bool:
        return any("@" in value if isinstance(value, str)
                   else isinstance(value, tuple | list)
                   and any(isinstance(item, str) and "@" in item for item in value)
                   for value in (attributes or {}).values())

    return (has_at(span.attributes) or any(has_at(event.attributes) for event in span.events)
            or "@" in (span.status.description or ""))


class PersonalDataSpanProcessor(SpanProcessor):
    """Hands `exporting` (the processor that exports) each span, with e-mail addresses
    masked in a copy when it names one; other spans pass as they are (no copy)."""

    def __init__(self, exporting: SpanProcessor) -> None:
        self.exporting = exporting

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.exporting.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        if _names_an_address(span):
            span = ReadableSpan(
                name=span.name, context=span.context, parent=span.parent,
                resource=span.resource, attributes=_masked_attributes(span.attributes),
                events=[Event(event.name, _masked_attributes(event.attributes),
                              event.timestamp) for event in span.events],
                links=span.links, kind=span.kind,
                status=Status(span.status.status_code,
                              mask_emails(span.status.description)
                              if span.status.description else None),
                start_time=span.start_time, end_time=span.end_time,
                instrumentation_scope=span.instrumentation_scope)
        self.exporting.on_end(span)

    def shutdown(self) -> None:
        self.exporting.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporting.force_flush(timeout_millis)
