"""What the worker's admin API returns."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict

from kansoku.kit.fields import UtcDateTime

NotificationChannel = Literal["sms", "push"]


class MailOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    sender: str
    recipients: list[str]
    subject: str
    body: str
    received_at: UtcDateTime


class NotificationOut(BaseModel):
    """A text message or push notification the shop sent (simulated)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    channel: NotificationChannel
    #: A phone number (sms) or `user:<user id>` (push).
    recipient: str
    text: str
    #: The event that caused it.
    event_id: str
    created_at: UtcDateTime


class ReportSummary(BaseModel):
    """A report without its content (`GET /reports/{id}.csv` and `.json` have that)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str
    created_at: UtcDateTime
    #: Products in the report.
    row_count: int
    #: Of those, how many inventory flags as low on stock.
    low_stock_count: int
