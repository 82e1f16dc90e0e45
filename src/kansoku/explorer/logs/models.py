"""What the logs feature answers."""

from __future__ import annotations

from pydantic import BaseModel, Field

from kansoku.explorer.common.spans import Attributes


class LogRecord(BaseModel):
    time_ns: int
    service: str
    severity_number: int | None = Field(description="OpenTelemetry's: 9 info, 13 warn, "
                                                    "17 error")
    severity: str | None
    body: str | None
    trace_id: str | None = Field(description="The trace it was written in, to open it")
    span_id: str | None
    attributes: Attributes
