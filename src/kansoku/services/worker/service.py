"""The worker's functions, serverless-style: each runs on one event (or one time slot),
is idempotent (an event handled once is skipped when delivered again), and leaves one
structured log record and its invocation metrics.

- `order-confirmation`, `order-cancellation`: e-mail and a push notification to the
  customer.
- `low-stock-alert`: e-mail to the admin and a text message to the on-call phone, in
  the staff's language (the `staff_language` setting).

A customer's notifications are in the language the order was placed in (its events say
which). Why an order was cancelled comes as codes (`reason_code`, and payments'
`decline_reason`), worded in that language by `kansoku.contracts.reasons`.
- `image-thumbnail`: a WebP thumbnail of a product's uploaded image, stored in catalog.
- `inventory-report`: every product's stock as CSV and JSON, on a schedule and on demand.

Every function runs inside `run_function`'s transaction, which first claims the event:
whatever the function writes with `Invocation.session` is committed together with the
claim, or not at all.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import aiosmtplib
from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.trace import StatusCode
from sqlalchemy.ext.asyncio import AsyncSession

from kansoku.contracts.calls import Caller, Refused
from kansoku.contracts.clients import CatalogClient, InventoryClient
from kansoku.contracts.reasons import cancellation_words
from kansoku.kit import events, i18n, semconv
from kansoku.kit.db import Database
from kansoku.kit.errors import Problem
from kansoku.kit.flags import ActiveFault, FaultFlags
from kansoku.kit.i18n import Language, _
from kansoku.services.worker import reports, store
from kansoku.services.worker.models import Notification, Report
from kansoku.services.worker.thumbnails import THUMBNAIL_CONTENT_TYPE, make_thumbnail

logger = logging.getLogger("kansoku.worker.functions")
_tracer = trace.get_tracer("kansoku.worker")
_meter = metrics.get_meter("kansoku.worker")
_invocations = _meter.create_counter(semconv.METRIC_FUNCTION_INVOCATIONS, unit="{invocation}",
                                     description="Function invocations, by outcome")
_duration = _meter.create_histogram(semconv.METRIC_FUNCTION_DURATION, unit="s",
                                    description="Function run time")
_warm: set[str] = set()

T = TypeVar("T")
Channel = Literal["email", "sms", "push"]


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


@dataclass
class Invocation:
    """One run of a function: which event it handles, and the transaction that claimed
    the event. What the function writes with `session` commits with the claim."""

    function: str
    event_id: str
    session: AsyncSession
    _after_commit: list[Callable[[], None]] = field(default_factory=list, init=False,
                                                    repr=False)

    def after_commit(self, hook: Callable[[], None]) -> None:
        """Run `hook` once the invocation's work is committed. Counting there means a
        run that fails (and is retried) is counted once, by the run that succeeds."""
        self._after_commit.append(hook)

    def committed(self) -> None:
        """Called by `run_function` once the transaction has committed."""
        for hook in self._after_commit:
            hook()


async def run_function(name: str, event_id: str, db: Database,
                       work: Callable[[Invocation], Awaitable[T]]) -> T | None:
    """Run one invocation of `name` for `event_id`, at most once, and account for it.

    Returns what `work` returned, or None when the event was already handled. An error
    in `work` rolls everything back, leaves the event unclaimed for a retry, is logged
    with the invocation's record, and is raised again."""
    started = time.perf_counter()
    cold_start = name not in _warm
    _warm.add(name)
    outcome = "ok"
    error: str | None = None
    try:
        async with db.transaction() as session:
            if not await store.claim(session, name, event_id):
                outcome = "duplicate"
                return None
            invocation = Invocation(name, event_id, session)
            result = await work(invocation)
        invocation.committed()
        return result
    except Exception as exc:
        outcome = "error"
        error = f"{type(exc).__name__}: {exc}"[:500]
        raise
    finally:
        elapsed = time.perf_counter() - started
        _invocations.add(1, {"function": name, "outcome": outcome})
        _duration.record(elapsed, {"function": name})
        record: dict[str, Any] = {
            "function": name, "event_id": event_id, "duration_ms": round(elapsed * 1000, 1),
            "outcome": outcome, "cold_start": cold_start}
        if error is not None:
            record["error"] = error
        logger.log(logging.WARNING if error else logging.INFO, "%s %s", name, outcome,
                   extra=record)


# --- Notifications --------------------------------------------------------------------


class Notifier:
    """Sends the shop's notifications and counts them by channel.

    E-mail goes over SMTP (`Mailer`). Text messages and push notifications are
    simulated: each is a row in the `notifications` table, written in the invocation's
    transaction, so it is "sent" exactly when the event counts as handled.
    """

    def __init__(self, mailer: Mailer, meter: Meter | None = None) -> None:
        self.mailer = mailer
        self._sent = (meter or _meter).create_counter(
            semconv.METRIC_NOTIFICATIONS, unit="{notification}",
            description="Notifications sent, by channel (email, sms, push)")

    async def email(self, run: Invocation, to: str, subject: str, body: str) -> None:
        await self.mailer.send(to, subject, body)
        self._count(run, "email")

    async def sms(self, run: Invocation, phone: str, text: str) -> None:
        await self._record(run, "sms", phone, text)

    async def push(self, run: Invocation, recipient: str, text: str) -> None:
        await self._record(run, "push", recipient, text)

    async def _record(self, run: Invocation, channel: Channel, recipient: str,
                      text: str) -> None:
        await store.add_notification(run.session, Notification(
            channel=channel, recipient=recipient, text=text, event_id=run.event_id))
        self._count(run, channel)

    def _count(self, run: Invocation, channel: Channel) -> None:
        run.after_commit(lambda: self._sent.add(1, {semconv.NOTIFICATION_CHANNEL: channel}))


def _lines(payload: dict[str, Any]) -> str:
    return "\n".join("  " + _("{quantity} x {name} at {price}").format(
        quantity=item["quantity"], name=item["name"],
        price=i18n.format_money(item["unit_price"], payload["currency"]))
        for item in payload["items"])


def _customer(payload: dict[str, Any]) -> str:
    """The push recipient for the customer of an order event."""
    return f"user:{payload['user_id']}"


@contextmanager
def _speaking(language: Language) -> Iterator[None]:
    """Write in `language` meanwhile."""
    previous = i18n.current_language()
    i18n.set_language(language)
    try:
        yield
    finally:
        i18n.set_language(previous)


def _customers_language(payload: dict[str, Any]) -> Language:
    """The language the customer shopped in (the order event says which; English for
    events from before orders kept it)."""
    return i18n.parse_language(payload.get("language")) or i18n.DEFAULT_LANGUAGE


def cancellation_reason(payload: dict[str, Any]) -> str:
    """Why the order of an `order.cancelled` event was cancelled, in the current
    language: from its codes (`kansoku.contracts.reasons`); from its English `reason`
    for an event from before the codes (or a code this worker does not know yet)."""
    return (cancellation_words(payload.get("reason_code"), payload.get("decline_reason"),
                               payload.get("reason"))
            or _("no reason given"))


# In the functions below the recorded notifications come first and the e-mail last:
# if the e-mail fails, the records roll back and the retry sends everything once; the
# other way round, a failed record would send the e-mail again on the retry.


async def order_confirmation(payload: dict[str, Any], run: Invocation, *,
                             notifier: Notifier) -> None:
    # Whom it is for first: an event without its customer fails naming that (its dead
    # letter says what the event lacks), before anything is written for them.
    customer = _customer(payload)
    with _speaking(_customers_language(payload)):
        total = i18n.format_money(payload["total"], payload["currency"])
        push = _("Order {number} is confirmed: we received {total}. Thank you!").format(
            number=payload["number"], total=total)
        subject = _("Your order {number} is confirmed").format(number=payload["number"])
        body = _("Hello {name},\n\nthank you for your order {number}. We received your "
                 "payment of {total}:\n\n{lines}\n\nkansoku shop\n").format(
            name=payload["name"], number=payload["number"], total=total,
            lines=_lines(payload))
    await notifier.push(run, customer, push)
    await notifier.email(run, payload["email"], subject, body)


async def order_cancellation(payload: dict[str, Any], run: Invocation, *,
                             notifier: Notifier) -> None:
    with _speaking(_customers_language(payload)):
        reason = cancellation_reason(payload)
        push = _("Order {number} was cancelled ({reason}).").format(
            number=payload["number"], reason=reason)
        subject = _("Your order {number} was cancelled").format(number=payload["number"])
        body = _("Hello {name},\n\nyour order {number} was cancelled ({reason}). Nothing "
                 "was charged that was not refunded.\n\nkansoku shop\n").format(
            name=payload["name"], number=payload["number"], reason=reason)
    await notifier.push(run, _customer(payload), push)
    await notifier.email(run, payload["email"], subject, body)


async def low_stock_alert(payload: dict[str, Any], run: Invocation, *, notifier: Notifier,
                          admin_email: str, oncall_phone: str,
                          staff_language: Language) -> None:
    """To the shop's staff, in their language (the worker's `staff_language`)."""
    stock = {"product": payload["product_id"], "available": payload["available"],
             "threshold": payload["low_stock_threshold"]}
    with _speaking(staff_language):
        text = _("kansoku: product {product} is low, {available} left (threshold "
                 "{threshold}).").format(**stock)
        subject = _("Low stock: product {product}").format(**stock)
        body = _("Product {product} is down to {available} units (threshold "
                 "{threshold}). Time to restock.\n\nkansoku shop\n").format(**stock)
    await notifier.sms(run, oncall_phone, text)
    await notifier.email(run, admin_email, subject, body)


# --- Calling other services -----------------------------------------------------------


def _refused(service: str, refusal: Refused) -> Problem:
    """Another service answered with a status the function cannot work with (a 4xx it
    did not expect, such as 401 for a bad service token)."""
    return Problem(502, "dependency-refused",
                   f"The {service} service refused the worker's request "
                   f"(HTTP {refusal.status}: {refusal.detail})", dependency=service)


# --- image-thumbnail ------------------------------------------------------------------


class ImageThumbnails:
    """The `image-thumbnail` function, run on `product.image_uploaded`.

    Fetches the uploaded image from catalog, makes its thumbnail (see `thumbnails`) and
    stores it in catalog with the worker's service token. The image's version travels
    both ways, so catalog can refuse (409) a thumbnail of an image that has since been
    replaced. An image or product that is gone (404) leaves nothing to do either.
    """

    NAME = "image-thumbnail"

    def __init__(self, catalog: CatalogClient, worker: Caller) -> None:
        self.catalog = catalog
        #: The worker itself, with its service token: catalog keeps thumbnails from it.
        self.worker = worker

    async def __call__(self, payload: dict[str, Any], run: Invocation) -> None:
        product_id, version = int(payload["product_id"]), int(payload["version"])
        facts = {"product_id": product_id, "image_version": version}
        try:
            original = await self.catalog.image(product_id, version=version)
        except Refused as refusal:
            if refusal.status != 404:
                raise _refused("catalog", refusal) from refusal
            logger.info("no thumbnail for product %s: image version %s is gone",
                        product_id, version, extra=facts)
            return
        thumbnail = await asyncio.to_thread(make_thumbnail, original.content or b"")
        try:
            await self.catalog.store_thumbnail(self.worker, product_id, version, thumbnail,
                                               THUMBNAIL_CONTENT_TYPE)
        except Refused as refusal:
            if refusal.status == 409:
                logger.info("thumbnail of product %s image version %s not stored: a newer "
                            "image was uploaded meanwhile", product_id, version, extra=facts)
            elif refusal.status == 404:
                logger.info("thumbnail of product %s image version %s not stored: the "
                            "product is gone", product_id, version, extra=facts)
            else:
                raise _refused("catalog", refusal) from refusal
            return
        logger.info("thumbnail of product %s image version %s stored (%d bytes)",
                    product_id, version, len(thumbnail),
                    extra={**facts, "thumbnail_bytes": len(thumbnail)})


# --- inventory-report -----------------------------------------------------------------

#: Inventory's largest page of stock levels.
_STOCK_PAGE = 200
#: After a failed scheduled report, try the same slot again this much later (or at the
#: next slot, if that comes sooner).
_SCHEDULE_RETRY_SECONDS = 60.0


def report_slot(now: datetime, interval_seconds: float) -> datetime:
    """The start of the time slot `now` falls in. Slots are counted from the Unix epoch,
    so every worker instance cuts time the same way and agrees on the slot."""
    seconds = now.timestamp()
    return datetime.fromtimestamp(seconds - seconds % interval_seconds, UTC)


def slot_event_id(slot: datetime) -> str:
    """The event id of a slot's scheduled report: one claim, so one report, per slot."""
    return f"{InventoryReports.NAME}:{slot.isoformat()}"


class InventoryReports:
    """The `inventory-report` function: every stock level (from inventory, read with the
    worker's service token, a page at a time) with each product's SKU, name and
    category (from catalog), stored as one report row with its CSV and JSON.

    It runs per time slot (`run_on_schedule`) and on an admin's request (`on_request`).
    If inventory or catalog cannot be reached the invocation fails and nothing is
    stored.
    """

    NAME = "inventory-report"

    def __init__(self, catalog: CatalogClient, inventory: InventoryClient, worker: Caller,
                 meter: Meter | None = None) -> None:
        self.catalog = catalog
        self.inventory = inventory
        #: The worker itself, with its service token: inventory shows it every level.
        self.worker = worker
        self._made = (meter or _meter).create_counter(
            semconv.METRIC_REPORTS, unit="{report}", description="Reports made, by kind")

    async def __call__(self, run: Invocation) -> Report:
        created_at = datetime.now(UTC)
        levels = await self._stock_levels()
        products = await self._products([int(level["product_id"]) for level in levels])
        report_id = uuid.uuid4()
        rendered = reports.render_inventory(report_id, created_at, levels, products)
        report = Report(id=report_id, kind=reports.INVENTORY, created_at=created_at,
                        row_count=rendered.row_count,
                        low_stock_count=rendered.low_stock_count, csv=rendered.csv,
                        document=rendered.document)
        await store.add_report(run.session, report)
        run.after_commit(lambda: self._made.add(1, {"kind": reports.INVENTORY}))
        logger.info("inventory report %s: %d products, %d low on stock", report_id,
                    rendered.row_count, rendered.low_stock_count,
                    extra={"report_id": str(report_id), "row_count": rendered.row_count,
                           "low_stock_count": rendered.low_stock_count})
        return report

    async def on_request(self, db: Database) -> Report:
        """A report now, for an admin (each request makes a new one)."""
        report = await run_function(self.NAME, f"{self.NAME}:request:{uuid.uuid4()}", db,
                                    self)
        assert report is not None, "a new event id is never a duplicate"
        return report

    async def for_slot(self, db: Database, slot: datetime) -> Report | None:
        """The slot's report, unless another run (maybe another instance) made it."""
        return await run_function(self.NAME, slot_event_id(slot), db, self)

    async def run_on_schedule(self, db: Database, interval_seconds: float,
                              first_run_after: float) -> None:
        """Make a report for every slot of `interval_seconds`, for as long as it runs.
        A failed report is tried again; the loop itself never stops on one."""
        await asyncio.sleep(first_run_after)
        while True:
            slot = report_slot(datetime.now(UTC), interval_seconds)
            next_slot = slot + timedelta(seconds=interval_seconds)
            # No request or event starts this run: its own span makes the calls to
            # identity, inventory and catalog and the SQL one trace instead of many.
            with _tracer.start_as_current_span(f"{self.NAME} scheduled",
                                               record_exception=False,
                                               set_status_on_exception=False) as span:
                try:
                    await self.for_slot(db, slot)
                    wait = (next_slot - datetime.now(UTC)).total_seconds()
                except Exception as exc:
                    span.record_exception(exc)
                    span.set_status(StatusCode.ERROR, type(exc).__name__)
                    # run_function has logged the failed invocation; say what happens next.
                    wait = min(_SCHEDULE_RETRY_SECONDS,
                               (next_slot - datetime.now(UTC)).total_seconds())
                    logger.warning("scheduled inventory report for %s failed (%s); "
                                   "trying again in %.0f s", slot.isoformat(),
                                   type(exc).__name__, max(wait, 0.0))
            await asyncio.sleep(max(wait, 0.0))

    async def _stock_levels(self) -> list[dict[str, Any]]:
        levels: dict[int, dict[str, Any]] = {}
        offset = 0
        while True:
            try:
                page = await self.inventory.overview(self.worker, limit=_STOCK_PAGE,
                                                     offset=offset, low_only=False)
            except Refused as refusal:
                raise _refused("inventory", refusal) from refusal
            # Keyed by product: a row that moves between pages while we read is kept once.
            levels.update((int(item["product_id"]), item) for item in page["items"])
            offset += len(page["items"])
            if not page["items"] or offset >= int(page["total"]):
                return list(levels.values())

    async def _products(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        try:
            return await self.catalog.products_by_id(ids)
        except Refused as refusal:
            raise _refused("catalog", refusal) from refusal


# --- Fault flags and the queue lag ------------------------------------------------------

#: The events orderQueueLag slows down, and by how much each.
ORDER_SUBJECTS = frozenset({"order.paid", "order.cancelled"})
QUEUE_LAG_SECONDS = 5.0
#: workerMemoryLeak keeps this much per event at 1x (10x, 100x: ten, a hundred times),
#: up to `LEAK_LIMIT_BYTES` in all: enough to see and to alert on, not enough to take
#: down the machine the stack runs on.
LEAK_UNIT_BYTES = 256 * 1024
LEAK_LIMIT_BYTES = 512 * 1024 * 1024


class FaultEffects:
    """What the worker's fault flags do to each event, before its function runs."""

    def __init__(self, flags: FaultFlags) -> None:
        self.flags = flags
        #: The leak: blocks kept and never read. Freed when the flag goes off, as a
        #: restart would, so that turning the flag off ends the incident.
        self.leaked: list[bytes] = []
        self.leaked_bytes = 0
        self._limit_logged = False
        flags.add_listener(self._free_when_off)

    async def before_event(self, subject: str) -> None:
        if subject in ORDER_SUBJECTS and (lag := self.flags.active("orderQueueLag")):
            # Events of one consumer are handled one at a time: this holds up the queue.
            await lag.sleep(QUEUE_LAG_SECONDS, "slow consumer")
        if leak := self.flags.active("workerMemoryLeak"):
            self._leak(leak)

    def _leak(self, fault: ActiveFault) -> None:
        size = int(LEAK_UNIT_BYTES * float(fault.value))
        fault.mark()
        if self.leaked_bytes + size > LEAK_LIMIT_BYTES:
            if not self._limit_logged:
                logger.warning("the simulated memory leak reached its limit of %d MiB",
                               LEAK_LIMIT_BYTES // 2**20)
                self._limit_logged = True
            return
        # Written byte by byte (not zero pages the kernel could leave unmapped), so the
        # process's resident memory really grows.
        self.leaked.append(b"\x5a" * size)
        self.leaked_bytes += size

    def _free_when_off(self) -> None:
        if self.leaked and not self.flags.active("workerMemoryLeak"):
            freed, self.leaked, self.leaked_bytes = self.leaked_bytes, [], 0
            self._limit_logged = False
            logger.info("the simulated memory leak is off: %d MiB freed", freed // 2**20)


class ConsumerLag:
    """Messages each of the worker's durable consumers has not acknowledged yet (not
    delivered, or delivered and in progress), read from JetStream every `interval`
    seconds and reported by the `kansoku.events.consumer.lag` gauge."""

    def __init__(self, meter: Meter, consumers: dict[str, str], interval: float = 5.0
                 ) -> None:
        #: durable consumer name → the subject it consumes
        self.consumers = consumers
        self.interval = interval
        self.lag: dict[str, int] = {}
        meter.create_observable_gauge(
            semconv.METRIC_QUEUE_LAG, callbacks=[self._observe], unit="{message}",
            description="Messages a consumer has not acknowledged yet")

    def _observe(self, options: CallbackOptions) -> Iterator[Observation]:
        for durable, lag in list(self.lag.items()):
            yield Observation(lag, {semconv.MESSAGING_CONSUMER: durable,
                                    semconv.MESSAGING_DESTINATION: self.consumers[durable]})

    async def read_once(self, js: Any) -> None:
        for durable in self.consumers:
            try:
                info = await js.consumer_info(events.STREAM, durable)
            except Exception as exc:  # not subscribed yet, or NATS away: keep the last
                logger.debug("no consumer info for %s: %s", durable, exc)
                continue
            self.lag[durable] = int(info.num_pending or 0) + int(info.num_ack_pending or 0)

    async def run(self, jetstream: Callable[[], Any]) -> None:
        while True:
            await asyncio.sleep(self.interval)
            js = jetstream()
            if js is not None:
                await self.read_once(js)
