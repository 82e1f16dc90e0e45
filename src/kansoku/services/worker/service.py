"""The worker's functions, serverless-style: each runs on one event, is idempotent (an
event handled once is skipped when delivered again), and leaves one structured log
record and its invocation metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import aiosmtplib
from opentelemetry import metrics

from kansoku.kit import semconv
from kansoku.kit.db import Database
from kansoku.services.worker import store

logger = logging.getLogger("kansoku.worker.functions")
_meter = metrics.get_meter("kansoku.worker")
_invocations = _meter.create_counter(semconv.METRIC_FUNCTION_INVOCATIONS, unit="{invocation}",
                                     description="Function invocations, by outcome")
_duration = _meter.create_histogram(semconv.METRIC_FUNCTION_DURATION, unit="s",
                                    description="Function run time")
_warm: set[str] = set()


class Mailer:
    """Sends e-mail over SMTP: to the configured server, or the embedded mailbox."""

    def __init__(self, smtp_url: str | None, embedded_port: int, sender: str) -> None:
        if smtp_url:
            parts = urlsplit(smtp_url)
            self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 25
        else:
            self.host, self.port = "127.0.0.1", embedded_port
        self.sender = sender

    async def send(self, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.sender, to, subject
        message.set_content(body)
        await aiosmtplib.send(message, hostname=self.host, port=self.port, timeout=10)


async def run_function(name: str, event_id: str, db: Database,
                       work: Callable[[], Awaitable[None]]) -> None:
    """Run one invocation of `name` for `event_id`, at most once, and account for it."""
    started = time.perf_counter()
    cold_start = name not in _warm
    _warm.add(name)
    outcome = "ok"
    try:
        async with db.transaction() as session:
            if not await store.claim(session, name, event_id):
                outcome = "duplicate"
                return
            await work()
    except Exception:
        outcome = "error"
        raise
    finally:
        elapsed = time.perf_counter() - started
        _invocations.add(1, {"function": name, "outcome": outcome})
        _duration.record(elapsed, {"function": name})
        logger.info("%s %s", name, outcome, extra={
            "function": name, "event_id": event_id, "duration_ms": round(elapsed * 1000, 1),
            "outcome": outcome, "cold_start": cold_start})


def _lines(payload: dict[str, Any]) -> str:
    return "\n".join(f"  {item['quantity']} x {item['name']} at {item['unit_price']} "
                     f"{payload['currency']}" for item in payload["items"])


async def order_confirmation(payload: dict[str, Any], mailer: Mailer) -> None:
    await mailer.send(
        payload["email"], f"Your order {payload['number']} is confirmed",
        f"Hello {payload['name']},\n\nthank you for your order {payload['number']}. "
        f"We received your payment of {payload['total']} {payload['currency']}:\n\n"
        f"{_lines(payload)}\n\nkansoku shop\n")


async def order_cancellation(payload: dict[str, Any], mailer: Mailer) -> None:
    await mailer.send(
        payload["email"], f"Your order {payload['number']} was cancelled",
        f"Hello {payload['name']},\n\nyour order {payload['number']} was cancelled "
        f"({payload.get('reason', 'no reason given')}). Nothing was charged that was not "
        "refunded.\n\nkansoku shop\n")


async def low_stock_alert(payload: dict[str, Any], mailer: Mailer, admin_email: str) -> None:
    await mailer.send(
        admin_email, f"Low stock: product {payload['product_id']}",
        f"Product {payload['product_id']} is down to {payload['available']} units "
        f"(threshold {payload['low_stock_threshold']}). Time to restock.\n\nkansoku shop\n")
