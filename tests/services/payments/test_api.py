"""Payments on a real PostgreSQL: Luhn and expiry checks, declining test cards, one
charge per order however often it is asked, and never a card number stored."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from kansoku.kit.telemetry import Telemetry
from kansoku.services.payments.app import create_app
from kansoku.services.payments.service import card_brand, luhn_valid
from kansoku.services.payments.settings import Settings
from tests.support import migrate
from tests.tokens import TokenIssuer

TOKENS = TokenIssuer()
#: Payments' one caller for charges: orders, with its service token.
ORDERS = TOKENS.service_headers("orders")
#: The customer the test charges are for.
BUYER = "buyer-of-the-payments-tests"
GOOD_CARD = "4111111111111111"


@pytest.fixture(scope="module")
async def payments(postgres_url: str, nats_url: str) -> AsyncIterator[httpx.AsyncClient]:
    await migrate(postgres_url, "payments")
    app = create_app(Settings(database_url=postgres_url, nats_url=nats_url),
                     Telemetry("payments"))
    app.state.tokens = TOKENS.verifier
    async with (app.router.lifespan_context(app),
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                  base_url="http://payments") as client):
        yield client


def charge(order_id: uuid.UUID | None = None, card: str = GOOD_CARD, **details: Any
           ) -> dict[str, Any]:
    return {"order_id": str(order_id or uuid.uuid4()), "user_id": BUYER, "amount": "25.50",
            "currency": "USD",
            "payment_method": "credit_card",
            "payment_details": {"card_number": card, "expiry_month": 12,
                                "expiry_year": 2099, "cvv": "123", **details}}


def test_luhn_and_brands() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert card_brand("5555555555554444") == "mastercard"
    assert card_brand("378282246310005") == "amex"


async def test_a_good_card_is_charged_once_per_order(payments: httpx.AsyncClient) -> None:
    order = uuid.uuid4()
    answers = await asyncio.gather(*(payments.post("/charges", json=charge(order),
                                                   headers=ORDERS) for _ in range(5)))
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["id"] for a in answers}) == 1, "one payment however often asked"
    paid = answers[0].json()
    assert (paid["status"], paid["brand"], paid["last4"]) == ("succeeded", "visa", "1111")
    assert GOOD_CARD not in answers[0].text and "123" not in str(paid.get("cvv"))


@pytest.mark.parametrize(("card", "reason"), [("4000000000007775", "insufficient_funds"),
                                              ("4000000000008880", "stolen_card"),
                                              ("4000000000006660", "processing_error")])
async def test_test_cards_decline_with_their_reason(payments: httpx.AsyncClient, card: str,
                                                    reason: str) -> None:
    order = uuid.uuid4()
    declined = await payments.post("/charges", json=charge(order, card), headers=ORDERS)
    assert declined.status_code == 402
    assert declined.json()["reason"] == reason
    record = await payments.get(f"/charges/{declined.json()['payment_id']}", headers=ORDERS)
    assert record.json()["status"] == "declined", "the decline is kept on record"
    # A good card may still pay the same order afterwards.
    retry = await payments.post("/charges", json=charge(order), headers=ORDERS)
    assert retry.status_code == 201


async def test_bad_cards_name_the_field(payments: httpx.AsyncClient) -> None:
    luhn = await payments.post("/charges", json=charge(card="4111111111111112"),
                               headers=ORDERS)
    expired = await payments.post("/charges", json=charge(expiry_year=2020), headers=ORDERS)
    cvv = await payments.post("/charges", json=charge(cvv="12x"), headers=ORDERS)
    assert luhn.status_code == 422 and luhn.json()["field"] == "payment_details.card_number"
    assert expired.status_code == 422 and "expired" in expired.json()["detail"]
    assert cvv.status_code == 422 and "12x" not in cvv.text
    assert "4111111111111112" not in luhn.text


async def test_wallets_and_refunds(payments: httpx.AsyncClient) -> None:
    wallet = {"order_id": str(uuid.uuid4()), "user_id": BUYER, "amount": "10.00",
              "currency": "EUR",
              "payment_method": "wallet", "payment_details": {"wallet_id": "wallet-alice"}}
    paid = await payments.post("/charges", json=wallet, headers=ORDERS)
    empty = await payments.post("/charges", headers=ORDERS, json={
        **wallet, "order_id": str(uuid.uuid4()), "payment_details": {"wallet_id": "empty-wallet"}})
    assert paid.status_code == 201 and paid.json()["method"] == "wallet"
    assert empty.status_code == 402
    refunded = await payments.post(f"/charges/{paid.json()['id']}/refund", headers=ORDERS)
    assert refunded.json()["status"] == "refunded"
    assert refunded.json()["refund_reason"] == "requested"
    again = await payments.post(f"/charges/{paid.json()['id']}/refund", headers=ORDERS)
    assert again.json()["refunded_at"] == refunded.json()["refunded_at"], "refunded once"
    missing = await payments.post(f"/charges/{uuid.uuid4()}/refund", headers=ORDERS)
    assert missing.status_code == 404


async def test_no_card_number_or_cvv_in_the_database(payments: httpx.AsyncClient,
                                                     postgres_url: str) -> None:
    await payments.post("/charges", json=charge(card="5555555555554444", cvv="987"),
                        headers=ORDERS)
    connection = await asyncpg.connect(postgres_url)
    try:
        rows = await connection.fetch("SELECT row_to_json(p)::text AS row "
                                      "FROM payments.payments p")
    finally:
        await connection.close()
    dump = "\n".join(row["row"] for row in rows)
    assert "4444" in dump, "the last four digits are kept"
    assert "5555555555554444" not in dump and "4111111111111111" not in dump
    assert '"987"' not in dump
