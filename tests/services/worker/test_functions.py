"""The worker's functions on a real PostgreSQL and the embedded mailbox (real SMTP),
against a stand-in for identity, catalog and inventory (`world.World`): notifications
by e-mail, SMS and push; thumbnails; inventory reports on request and per time slot."""

from __future__ import annotations

import asyncio
import csv
import functools
import io
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiosmtplib
import pytest
from opentelemetry.metrics import Meter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from PIL import Image
from sqlalchemy import func, select

from kansoku.contracts.calls import ServiceCaller
from kansoku.contracts.clients import CatalogClient, InventoryClient
from kansoku.kit import semconv
from kansoku.kit.auth import ServiceCredentials
from kansoku.kit.db import Database
from kansoku.kit.db_telemetry import DatabaseTelemetry
from kansoku.kit.errors import DependencyUnavailable
from kansoku.kit.http import BreakerPolicy, CircuitBreakers, ServiceClient
from kansoku.kit.i18n import Language
from kansoku.services.worker import reports, service, store
from kansoku.services.worker.mailbox import start_mailbox
from kansoku.services.worker.models import Mail, Notification, ProcessedEvent, Report
from kansoku.services.worker.service import (
    ImageThumbnails,
    InventoryReports,
    Invocation,
    Mailer,
    Notifier,
)
from kansoku.services.worker.thumbnails import UnusableImage
from tests.services.worker.world import World, png, product, stock_level
from tests.support import eventually, free_ports, json_lines, migrate, service_logging
from tests.tokens import TokenIssuer

FUNCTIONS_LOGGER = "kansoku.worker.functions"


# --- fixtures -------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def db(postgres_url: str) -> AsyncIterator[Database]:
    await migrate(postgres_url, "worker")
    database = Database(postgres_url, schema="worker", application_name="worker-tests")
    yield database
    await database.dispose()


@pytest.fixture(scope="module")
async def mailbox_port(db: Database) -> AsyncIterator[int]:
    """The embedded mailbox, a real SMTP server, on a free port."""
    (port,) = free_ports(1)
    server = await start_mailbox(db, "127.0.0.1", port)
    yield port
    server.close()
    await server.wait_closed()


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def meter(reader: InMemoryMetricReader) -> Meter:
    return MeterProvider(metric_readers=[reader]).get_meter("kansoku.worker")


@pytest.fixture
def notifier(mailbox_port: int, meter: Meter) -> Notifier:
    return Notifier(Mailer(None, mailbox_port, "shop@kansoku.example"), meter)


@pytest.fixture
def world() -> World:
    return World(TokenIssuer())


@pytest.fixture
async def clients(world: World) -> AsyncIterator[dict[str, ServiceClient]]:
    """identity, catalog and inventory clients reaching `world`, with fresh breakers."""
    breakers = CircuitBreakers(BreakerPolicy())
    made = {name: world.client(name, breakers) for name in ("identity", "catalog", "inventory")}
    yield made
    for client in made.values():
        await client.aclose()


@pytest.fixture
def credentials(world: World, clients: dict[str, ServiceClient]) -> ServiceCredentials:
    return ServiceCredentials("worker", clients["identity"], world.secret)


@pytest.fixture
def thumbnails(clients: dict[str, ServiceClient], credentials: ServiceCredentials
               ) -> ImageThumbnails:
    return ImageThumbnails(CatalogClient(clients["catalog"]), ServiceCaller(credentials))


@pytest.fixture
def inventory_reports(clients: dict[str, ServiceClient], credentials: ServiceCredentials,
                      meter: Meter) -> InventoryReports:
    return InventoryReports(CatalogClient(clients["catalog"]),
                            InventoryClient(clients["inventory"]), ServiceCaller(credentials),
                            meter)


# --- helpers --------------------------------------------------------------------------


def counted(reader: InMemoryMetricReader, name: str) -> dict[tuple[tuple[str, Any], ...], int]:
    """A counter's value per attribute set, as exported so far."""
    values: dict[tuple[tuple[str, Any], ...], int] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name != name:
                    continue
                for point in metric.data.data_points:
                    assert isinstance(point, NumberDataPoint)
                    key = tuple(sorted((point.attributes or {}).items()))
                    values[key] = int(point.value)
    return values


def by_channel(reader: InMemoryMetricReader) -> dict[str, int]:
    return {dict(key)[semconv.NOTIFICATION_CHANNEL]: value
            for key, value in counted(reader, semconv.METRIC_NOTIFICATIONS).items()}


async def claimed(db: Database, function: str, event_id: str) -> bool:
    async with db.transaction() as session:
        found = await session.scalar(select(func.count()).select_from(ProcessedEvent).where(
            ProcessedEvent.function == function, ProcessedEvent.event_id == event_id))
    return found == 1


async def notifications_of(db: Database, event_id: str) -> list[Notification]:
    async with db.transaction() as session:
        return list((await session.scalars(
            select(Notification).where(Notification.event_id == event_id))).all())


async def mail_about(db: Database, words: str) -> list[Mail]:
    async with db.transaction() as session:
        return list((await session.scalars(
            select(Mail).where(Mail.subject.contains(words)))).all())


def order_event(number: str, **extra: Any) -> dict[str, Any]:
    """An order event's payload, as orders writes it (`orders.service._event`)."""
    return {"order_id": str(uuid.uuid4()), "number": number, "status": "paid",
            "user_id": str(uuid.uuid4()), "email": "alice@example.com", "name": "Alice",
            "total": "25.00", "currency": "USD",
            "items": [{"product_id": 1, "name": "Star chart", "quantity": 2,
                       "unit_price": "12.50"}], **extra}


def event_id() -> str:
    return str(uuid.uuid4())


async def run(name: str, event: str, db: Database, function: Any,
              payload: dict[str, Any]) -> Any:
    """One invocation of an event function, as the worker's subscription runs it."""
    async def work(invocation: Invocation) -> Any:
        return await function(payload, invocation)
    return await service.run_function(name, event, db, work)


# --- notifications --------------------------------------------------------------------


async def test_order_confirmation_emails_and_pushes_to_the_customer_once(
        db: Database, notifier: Notifier, reader: InMemoryMetricReader) -> None:
    payload, event = order_event("KS-CONF-1"), event_id()
    confirm = functools.partial(service.order_confirmation, notifier=notifier)
    for _ in range(2):  # a redelivery is recognised and skipped
        await run("order-confirmation", event, db, confirm, payload)

    [push] = await notifications_of(db, event)
    assert (push.channel, push.recipient) == ("push", f"user:{payload['user_id']}")
    assert "KS-CONF-1" in push.text and "$25.00" in push.text
    [mail] = await mail_about(db, "KS-CONF-1")
    assert mail.recipients == ["alice@example.com"] and "2 x Star chart" in mail.body
    assert mail.subject == "Your order KS-CONF-1 is confirmed"
    assert by_channel(reader) == {"email": 1, "push": 1}


async def test_an_order_placed_in_japanese_is_confirmed_and_cancelled_in_japanese(
        db: Database, notifier: Notifier) -> None:
    """The language the customer shopped in comes with the order's events: the e-mail
    and the push speak it, whatever the worker's own language; the money is written
    as Japanese writes it."""
    paid, event = order_event("KS-JA-1", language="ja"), event_id()
    await run("order-confirmation", event, db,
              functools.partial(service.order_confirmation, notifier=notifier), paid)
    [mail] = await mail_about(db, "KS-JA-1")
    assert mail.subject == "【kansoku shop】ご注文\uff08KS-JA-1\uff09を承りました"
    assert mail.body.startswith("Alice 様") and "$25.00 のお支払いを確認" in mail.body
    assert "Star chart \u00d7 2\uff08単価 $12.50\uff09" in mail.body
    [push] = await notifications_of(db, event)
    assert push.text.startswith("ご注文 KS-JA-1 を承りました")

    cancelled = order_event("KS-JA-2", language="ja", status="cancelled",
                            reason="payment declined")
    await run("order-cancellation", event_id(), db,
              functools.partial(service.order_cancellation, notifier=notifier), cancelled)
    [mail] = await mail_about(db, "KS-JA-2")
    assert "キャンセルのお知らせ" in mail.subject
    assert "\uff08payment declined\uff09" in mail.body
    # An event from before orders kept the language: English, as it always was.
    await run("order-confirmation", event_id(), db,
              functools.partial(service.order_confirmation, notifier=notifier),
              order_event("KS-EN-OLD"))
    [mail] = await mail_about(db, "KS-EN-OLD")
    assert mail.subject == "Your order KS-EN-OLD is confirmed"


async def test_a_failed_email_takes_back_the_push_and_the_claim(
        db: Database, notifier: Notifier, meter: Meter, reader: InMemoryMetricReader,
        caplog: pytest.LogCaptureFixture) -> None:
    """Notifications are recorded in the transaction that claims the event: when the
    e-mail cannot be sent the push is not kept either, and the retry sends each once."""
    payload, event = order_event("KS-FAIL-1"), event_id()
    (nowhere,) = free_ports(1)  # nothing listens there
    broken = Notifier(Mailer(None, nowhere, "shop@kansoku.example"), meter)
    caplog.set_level(logging.INFO, logger=FUNCTIONS_LOGGER)
    with pytest.raises(aiosmtplib.SMTPConnectError):
        await run("order-confirmation", event, db,
                  functools.partial(service.order_confirmation, notifier=broken), payload)
    assert await notifications_of(db, event) == []
    assert not await claimed(db, "order-confirmation", event)
    assert by_channel(reader) == {}
    failed = [r for r in caplog.records if getattr(r, "event_id", None) == event]
    assert [(r.levelname, getattr(r, "outcome", None)) for r in failed] == [
        ("WARNING", "error")]
    assert "error" in vars(failed[0])

    await run("order-confirmation", event, db,
              functools.partial(service.order_confirmation, notifier=notifier), payload)
    assert [n.channel for n in await notifications_of(db, event)] == ["push"]
    assert len(await mail_about(db, "KS-FAIL-1")) == 1
    assert by_channel(reader) == {"email": 1, "push": 1}


async def test_an_email_sent_is_one_info_line(
        db: Database, notifier: Notifier, capsys: pytest.CaptureFixture[str]) -> None:
    """The worker at INFO writes one line per e-mail it sends — the function's invocation
    record — not the SMTP dialogue (aiosmtpd narrates a dozen lines an e-mail at INFO)
    nor the mailbox's receipt (the mailbox stands in for another's mail server)."""
    confirm = functools.partial(service.order_confirmation, notifier=notifier)
    with service_logging("worker", "INFO"):
        for number in range(3):
            await run("order-confirmation", event_id(), db, confirm,
                      order_event(f"KS-LOG-{number}"))
    lines = json_lines(capsys.readouterr().out)
    assert [(line["level"], line["message"]) for line in lines] == [
        ("INFO", "order-confirmation ok")] * 3, lines


async def test_the_mailbox_keeps_a_message_without_a_trace_of_its_own(
        postgres_url: str, db: Database) -> None:
    """The mailbox's bookkeeping happens outside any request or event: traced, its
    `connect` and `INSERT` would each be a one-span trace per e-mail."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    traced = Database(postgres_url, schema="worker", application_name="worker-tests")
    telemetry = DatabaseTelemetry(traced.engine, provider, None)
    (port,) = free_ports(1)
    server = await start_mailbox(traced, "127.0.0.1", port)
    try:
        await Mailer(None, port, "shop@kansoku.example").send(
            "alice@example.com", "Untraced KS-MBOX-1", "kept")
        assert len(await mail_about(db, "KS-MBOX-1")) == 1
    finally:
        server.close()
        await server.wait_closed()
        telemetry.close()
        await traced.dispose()
    assert [span.name for span in exporter.get_finished_spans()] == []


async def test_order_cancellation_pushes_the_reason(db: Database, notifier: Notifier) -> None:
    payload, event = order_event("KS-CANC-1", reason="payment declined"), event_id()
    await run("order-cancellation", event, db,
              functools.partial(service.order_cancellation, notifier=notifier), payload)
    [push] = await notifications_of(db, event)
    assert push.recipient == f"user:{payload['user_id']}"
    assert "KS-CANC-1" in push.text and "payment declined" in push.text


async def test_a_declined_payment_is_explained_in_the_customers_language(
        db: Database, notifier: Notifier) -> None:
    """Orders sends why it cancelled as codes (its own, and payments' decline reason);
    the worker words them in the language the order was placed in. An event from before
    the codes keeps its English reason."""
    declined = order_event("KS-JA-DECL", language="ja", status="cancelled",
                           reason="payment declined: insufficient_funds",
                           reason_code="payment-declined", decline_reason="insufficient_funds")
    event = event_id()
    await run("order-cancellation", event, db,
              functools.partial(service.order_cancellation, notifier=notifier), declined)
    [mail] = await mail_about(db, "KS-JA-DECL")
    assert "\uff08お支払いが承認されませんでした\uff1a残高不足\uff09" in mail.body
    assert "insufficient" not in mail.body and "declined" not in mail.body
    [push] = await notifications_of(db, event)
    assert "お支払いが承認されませんでした\uff1a残高不足" in push.text

    expired = order_event("KS-EN-EXP", status="cancelled", reason="stock no longer reserved; "
                          "refunded", reason_code="reservation-expired")
    await run("order-cancellation", event_id(), db,
              functools.partial(service.order_cancellation, notifier=notifier), expired)
    [mail] = await mail_about(db, "KS-EN-EXP")
    assert "(the items were no longer reserved for it; the payment is refunded)" in mail.body


async def test_low_stock_texts_oncall_and_emails_the_admin(
        db: Database, notifier: Notifier, reader: InMemoryMetricReader) -> None:
    event = event_id()
    alert = functools.partial(service.low_stock_alert, notifier=notifier,
                              admin_email="ops@example.com", oncall_phone="+15550199",
                              staff_language=Language.ENGLISH)
    await run("low-stock-alert", event, db, alert,
              {"product_id": 424242, "available": 3, "low_stock_threshold": 5})
    [sms] = await notifications_of(db, event)
    assert (sms.channel, sms.recipient) == ("sms", "+15550199")
    assert "424242" in sms.text and "3 left" in sms.text
    [mail] = await mail_about(db, "product 424242")
    assert mail.recipients == ["ops@example.com"]
    assert by_channel(reader) == {"email": 1, "sms": 1}



async def test_the_staff_get_the_low_stock_alert_in_their_language(
        db: Database, notifier: Notifier) -> None:
    event = event_id()
    alert = functools.partial(service.low_stock_alert, notifier=notifier,
                              admin_email="ops@example.com", oncall_phone="+15550199",
                              staff_language=Language.JAPANESE)
    await run("low-stock-alert", event, db, alert,
              {"product_id": 434343, "available": 2, "low_stock_threshold": 5})
    [sms] = await notifications_of(db, event)
    assert sms.text == "kansoku: 商品 434343 の在庫が残り 2 個です (しきい値 5)。"
    [mail] = await mail_about(db, "434343")
    assert mail.subject == "在庫僅少: 商品 434343"
    assert mail.body.startswith("商品 434343 の在庫が 2 個になりました (しきい値 5)。")

# --- image-thumbnail ------------------------------------------------------------------


def uploaded(product_id: int, version: int) -> dict[str, Any]:
    return {"product_id": product_id, "version": version, "content_type": "image/png"}


async def test_thumbnail_is_made_and_stored_with_a_service_token_once(
        db: Database, world: World, thumbnails: ImageThumbnails,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    world.add_image(7, 3, png(900, 1800))
    event = event_id()
    for _ in range(2):
        await run(ImageThumbnails.NAME, event, db, thumbnails, uploaded(7, 3))

    [stored] = world.thumbnails
    assert (stored.product_id, stored.version, stored.content_type) == (7, 3, "image/webp")
    assert stored.caller.is_service and stored.caller.user_id == "service:worker"
    thumbnail = Image.open(io.BytesIO(stored.data))
    assert thumbnail.format == "WEBP" and thumbnail.size == (160, 320)
    # The token went to catalog, never into a log line.
    [token] = world.issued_tokens
    assert all(token not in record.getMessage() and token not in str(vars(record))
               for record in caplog.records)


async def test_a_gone_image_leaves_nothing_to_do(db: Database, world: World,
                                                 thumbnails: ImageThumbnails) -> None:
    event = event_id()
    await run(ImageThumbnails.NAME, event, db, thumbnails, uploaded(8, 1))
    assert world.thumbnails == []
    assert await claimed(db, ImageThumbnails.NAME, event)


@pytest.mark.parametrize(("scenario", "logged"), [
    ("replaced", "a newer image was uploaded meanwhile"),
    ("deleted", "the product is gone"),
])
async def test_a_thumbnail_catalog_no_longer_wants_is_done_with(
        db: Database, world: World, thumbnails: ImageThumbnails,
        caplog: pytest.LogCaptureFixture, scenario: str, logged: str) -> None:
    """Catalog answers 409 when the image was replaced between the worker's fetch and
    its store, 404 when the product was deleted: nothing to retry in either case."""
    world.add_image(9, 1, png(64, 64))
    if scenario == "replaced":
        world.add_image(9, 2, png(64, 64, "red"))
    else:
        del world.current_image[9]
    caplog.set_level(logging.INFO, logger=FUNCTIONS_LOGGER)
    event = event_id()
    await run(ImageThumbnails.NAME, event, db, thumbnails, uploaded(9, 1))
    assert world.thumbnails == []
    assert await claimed(db, ImageThumbnails.NAME, event)
    assert any(logged in record.getMessage() for record in caplog.records)


async def test_a_non_image_fails_the_invocation_for_a_retry(
        db: Database, world: World, thumbnails: ImageThumbnails) -> None:
    world.add_image(10, 1, b"<svg xmlns='http://www.w3.org/2000/svg'/>")
    event = event_id()
    with pytest.raises(UnusableImage, match="not a PNG, JPEG, WebP or GIF"):
        await run(ImageThumbnails.NAME, event, db, thumbnails, uploaded(10, 1))
    assert world.thumbnails == []
    assert not await claimed(db, ImageThumbnails.NAME, event)


async def test_without_a_service_token_nothing_is_stored(
        db: Database, world: World, thumbnails: ImageThumbnails) -> None:
    world.add_image(11, 1, png(64, 64))
    world.secret = "a different secret"  # identity no longer agrees
    event = event_id()
    with pytest.raises(DependencyUnavailable, match="refused a service token"):
        await run(ImageThumbnails.NAME, event, db, thumbnails, uploaded(11, 1))
    assert world.thumbnails == []
    assert not await claimed(db, ImageThumbnails.NAME, event)


# --- inventory-report -----------------------------------------------------------------


def stock_the_world(world: World) -> tuple[list[int], int]:
    """450 stock levels, some low, some of products catalog no longer has, and ids long
    enough that one catalog call cannot name 100 of them (its `ids` takes 800 characters).
    Returns the product ids and how many are low."""
    ids = [*range(1, 401), *range(99_000_001, 99_000_051)]
    for product_id in ids:
        on_hand = product_id % 20  # 0..5 are low: 6 of every 20
        world.stock.append(stock_level(product_id, on_hand))
        if product_id % 97:  # a few products were deleted from the catalog
            world.products[product_id] = product(product_id)
    world.products[3] = product(3, name="=HYPERLINK(\"http://evil.example\")")
    low = sum(1 for product_id in ids if product_id % 20 <= 5)
    return ids, low


async def stored_report(db: Database, report_id: uuid.UUID) -> Report | None:
    async with db.transaction() as session:
        return await store.get_report(session, report_id)


async def test_inventory_report_reads_every_page_and_stores_csv_and_json(
        db: Database, world: World, inventory_reports: InventoryReports,
        reader: InMemoryMetricReader) -> None:
    ids, low = stock_the_world(world)
    made = await inventory_reports.on_request(db)

    # Every page of inventory, each with the worker's service token.
    assert [(limit, offset) for limit, offset, _ in world.inventory_reads] == [
        (200, 0), (200, 200), (200, 400)]
    assert all(caller.is_service for _, _, caller in world.inventory_reads)
    assert all(len(ids_param) <= 800 and ids_param.count(",") < 100
               for ids_param in world.product_reads)

    report = await stored_report(db, made.id)
    assert report is not None
    assert (report.kind, report.row_count, report.low_stock_count) == (
        "inventory", len(ids), low)
    rows = list(csv.DictReader(io.StringIO(report.csv)))
    assert list(rows[0]) == list(reports.COLUMNS)
    assert [int(row["product_id"]) for row in rows] == ids
    assert rows[0] == {"product_id": "1", "sku": "SKU-1", "name": "Thing 1",
                       "category": "Telescopes", "on_hand": "1", "reserved": "0",
                       "available": "1", "low_stock_threshold": "5", "status": "low",
                       "low_stock": "true"}
    assert rows[2]["name"].startswith("'=")  # a spreadsheet shows it, never runs it
    gone = next(row for row in rows if row["product_id"] == "97")
    assert (gone["sku"], gone["name"]) == ("", "")

    document = report.document
    assert document["id"] == str(made.id) and document["row_count"] == len(ids)
    assert document["low_stock_count"] == low
    assert document["items"][0]["low_stock"] is True
    assert document["items"][96]["name"] is None
    assert counted(reader, semconv.METRIC_REPORTS) == {(("kind", "inventory"),): 1}


async def test_instances_make_one_report_per_time_slot(
        db: Database, world: World, clients: dict[str, ServiceClient],
        credentials: ServiceCredentials, meter: Meter) -> None:
    """Two worker instances wake up for the same slot: the claim lets one make the
    report; the other waits for it and then finds the slot done."""
    stock_the_world(world)
    instances = [InventoryReports(CatalogClient(clients["catalog"]),
                                  InventoryClient(clients["inventory"]),
                                  ServiceCaller(credentials), meter) for _ in range(2)]
    slot = datetime(2031, 1, 2, 3, tzinfo=UTC)
    made = await asyncio.gather(*(instance.for_slot(db, slot) for instance in instances))
    assert sorted(report is None for report in made) == [False, True]
    assert len(world.inventory_reads) == 3, "inventory was read by one instance only"

    async def never(run: Invocation) -> bool:
        raise AssertionError("the slot's report was made twice")
    assert await service.run_function(InventoryReports.NAME, service.slot_event_id(slot),
                                      db, never) is None


async def test_unreachable_inventory_fails_the_report_and_the_slot_is_retried(
        db: Database, world: World, inventory_reports: InventoryReports,
        caplog: pytest.LogCaptureFixture, reader: InMemoryMetricReader) -> None:
    stock_the_world(world)
    world.down.add("inventory")
    slot = datetime(2031, 5, 6, 7, tzinfo=UTC)
    caplog.set_level(logging.INFO, logger=FUNCTIONS_LOGGER)
    with pytest.raises(DependencyUnavailable, match="inventory"):
        await inventory_reports.for_slot(db, slot)
    [failed] = [r for r in caplog.records if getattr(r, "function", None) == "inventory-report"]
    assert getattr(failed, "outcome", None) == "error"
    assert "inventory" in getattr(failed, "error", "")
    assert not await claimed(db, InventoryReports.NAME, service.slot_event_id(slot))
    assert counted(reader, semconv.METRIC_REPORTS) == {}

    world.down.clear()
    assert await inventory_reports.for_slot(db, slot) is not None


async def test_the_schedule_survives_a_failure_and_reports_when_inventory_is_back(
        db: Database, world: World, inventory_reports: InventoryReports,
        caplog: pytest.LogCaptureFixture) -> None:
    stock_the_world(world)
    world.down.add("inventory")
    caplog.set_level(logging.INFO)
    loop = asyncio.create_task(inventory_reports.run_on_schedule(db, 1.0, 0.0))
    try:
        async def failed_once() -> bool:
            return any("scheduled inventory report" in r.getMessage() for r in caplog.records)
        await eventually(failed_once, 5, "a failed scheduled report")
        world.down.clear()

        async def reported() -> bool:
            return any(getattr(r, "outcome", None) == "ok"
                       and getattr(r, "function", None) == "inventory-report"
                       for r in caplog.records)
        await eventually(reported, 5, "a scheduled report once inventory was back")
        assert not loop.done(), "the loop keeps running"
    finally:
        loop.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loop


def test_time_is_cut_into_the_same_slots_everywhere() -> None:
    hour = 3600.0
    a = datetime(2031, 1, 2, 3, 0, 1, tzinfo=UTC)
    b = datetime(2031, 1, 2, 3, 59, 59, tzinfo=UTC)
    assert service.report_slot(a, hour) == service.report_slot(b, hour) == datetime(
        2031, 1, 2, 3, tzinfo=UTC)
    assert service.report_slot(b + timedelta(seconds=1), hour) == datetime(
        2031, 1, 2, 4, tzinfo=UTC)
    assert service.slot_event_id(service.report_slot(a, hour)) == (
        "inventory-report:2031-01-02T03:00:00+00:00")
