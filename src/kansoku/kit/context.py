"""What the current request is: its request id and the user it acts for.

The request id lives in a context variable set by the request middleware; the user id
lives in OpenTelemetry baggage, so it crosses process boundaries with the trace.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

from opentelemetry import baggage

from kansoku.kit import semconv

_request_id: ContextVar[str | None] = ContextVar("kansoku_request_id", default=None)

#: A caller-supplied request id is kept only if it is short and plain, so it can never
#: smuggle markup or newlines into logs.
_ACCEPTABLE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def current_request_id() -> str | None:
    return _request_id.get()


def set_request_id(request_id: str) -> None:
    _request_id.set(request_id)


def new_request_id(supplied: str | None = None) -> str:
    """Keep a well-formed id the caller sent (so it can follow its own request), else make one."""
    if supplied and _ACCEPTABLE_REQUEST_ID.match(supplied):
        return supplied
    return uuid.uuid4().hex


def current_user_id() -> str | None:
    """The user this request acts for, as carried in baggage by whoever authenticated it."""
    value = baggage.get_baggage(semconv.BAGGAGE_USER_ID)
    return str(value) if value is not None else None
