"""The spans' vocabulary, as the store keeps it, and what a failed request is."""

from __future__ import annotations

import enum
from typing import Any

#: Attributes (and resources) as OpenTelemetry allows them: strings, numbers, booleans,
#: lists and maps of them, parsed from the store's JSON. Any, not pydantic's JsonValue:
#: that checks and serializes each value in Python, which costs a trace of thousands of
#: spans more than reading it.
Attributes = dict[str, Any]


class SpanKind(enum.StrEnum):
    """OpenTelemetry's span kinds, in the order of their numbers in OTLP."""

    UNSPECIFIED = "unspecified"
    INTERNAL = "internal"
    SERVER = "server"
    CLIENT = "client"
    PRODUCER = "producer"
    CONSUMER = "consumer"


class SpanStatus(enum.StrEnum):
    """OpenTelemetry's status codes, in the order of their numbers in OTLP."""

    UNSET = "unset"
    OK = "ok"
    ERROR = "error"


#: SQL over `spans`: the span is a request that failed — error status, or an HTTP status
#: of 500 or more (a 4xx is the caller's mistake, not a failure of the service).
FAILED_REQUEST = "(status = 'error' OR coalesce(http_status, 0) >= 500)"

#: SQL over `spans`: the span handled a request — a server span, or a consumer's
#: (a message is the worker's request).
HANDLED_REQUEST = "kind IN ('server', 'consumer')"

#: All zeros: OpenTelemetry's invalid ids, which a span may not have (a sender with no
#: context would put every such span in one endless "trace").
INVALID_TRACE_ID = "0" * 32
INVALID_SPAN_ID = "0" * 16
