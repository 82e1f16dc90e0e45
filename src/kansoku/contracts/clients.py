"""One typed client per kansoku service, shared by every service that calls it: the
gateway (for its pages and public API), orders (catalog, inventory, cart, payments) and
the worker (catalog, inventory). Each method is one call of the service's API; what a
call can end in, and for whom it is made, is `kansoku.contracts.calls`.

The services' own documents (`/openapi.json`) describe the same calls; these clients
are what the code of the callers says, in one place, instead of a URL and a JSON body
written out wherever a call is made.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import cast

import httpx

from kansoku.contracts.calls import Caller, Download, Json, Refused, ServiceApi
from kansoku.contracts.schemas import ChargeRequest, Payment, Reservation, ReservedLine
from kansoku.kit.errors import DependencyUnavailable
from kansoku.kit.i18n import _

#: Catalog's largest page, and the longest `ids` parameter it takes.
_PRODUCTS_PER_CALL = 100
_MAX_IDS_LENGTH = 800


def _id_batches(ids: list[int]) -> Iterator[list[int]]:
    """`ids` in batches catalog takes in one call: at most 100, at most 800 characters
    comma-separated."""
    batch: list[int] = []
    for product_id in ids:
        longer = [*batch, product_id]
        if batch and (len(longer) > _PRODUCTS_PER_CALL
                      or len(",".join(map(str, longer))) > _MAX_IDS_LENGTH):
            yield batch
            longer = [product_id]
        batch = longer
    if batch:
        yield batch


class IdentityClient(ServiceApi):
    """Accounts and tokens."""

    async def register(self, registration: Json) -> Json:
        return await self._object("POST", "/users", json=registration)

    async def log_in(self, email: str, password: str, client_address: str) -> Json:
        """Tokens for these credentials (`Refused` 401 when they are wrong, 429 while
        logins are locked). `client_address` is who is logging in, for identity's
        per-address throttle (it believes the header from the gateway only)."""
        return await self._object("POST", "/auth/login",
                                  json={"email": email, "password": password},
                                  headers={"X-Forwarded-For": client_address})

    async def refresh(self, refresh_token: str) -> Json:
        """New tokens for a refresh token (each works once)."""
        return await self._object("POST", "/auth/refresh",
                                  json={"refresh_token": refresh_token})

    async def me(self, caller: Caller) -> Json:
        return await self._object("GET", "/users/me", caller)

    async def change_me(self, caller: Caller, change: Json, client_address: str) -> Json:
        return await self._object("PATCH", "/users/me", caller, json=change,
                                  headers={"X-Forwarded-For": client_address})


class CatalogClient(ServiceApi):
    """Products, categories and their pictures."""

    async def products(self, *, limit: int, offset: int = 0, category: str | None = None,
                       search: str | None = None, sort: str | None = None) -> Json:
        """A page of products (`items`, `total`)."""
        return await self._object("GET", "/products", params={
            "limit": limit, "offset": offset, "category": category, "q": search,
            "sort": sort})

    async def products_by_id(self, product_ids: Iterable[int]) -> dict[int, Json]:
        """The products with these ids, by id; missing ones absent. As many calls as
        catalog needs (it takes 100 ids, 800 characters of them, per call)."""
        products: dict[int, Json] = {}
        for batch in _id_batches(sorted(set(product_ids))):
            page = await self._object("GET", "/products", params={
                "ids": ",".join(map(str, batch)), "limit": _PRODUCTS_PER_CALL})
            products.update((int(product["id"]), product) for product in page["items"])
        return products

    async def product(self, product_id: int) -> Json:
        return await self._object("GET", f"/products/{product_id}")

    async def categories(self) -> list[Json]:
        return await self._list("GET", "/categories")

    async def create_product(self, caller: Caller, product: Json) -> Json:
        return await self._object("POST", "/products", caller, json=product)

    async def replace_product(self, caller: Caller, product_id: int, product: Json) -> Json:
        return await self._object("PUT", f"/products/{product_id}", caller, json=product)

    async def delete_product(self, caller: Caller, product_id: int) -> None:
        await self._call("DELETE", f"/products/{product_id}", caller)

    async def upload_image(self, caller: Caller, product_id: int, data: bytes,
                           media_type: str) -> Json:
        """Send an uploaded picture; the catalog checks and keeps it."""
        return await self._object("PUT", f"/products/{product_id}/image", caller,
                                  headers={"Content-Type": media_type}, content=data)

    async def image(self, product_id: int, *, if_none_match: str | None = None,
                    version: int | None = None) -> Download:
        """The uploaded picture; with `version`, exactly that upload (`Refused` 404 once
        it has been replaced)."""
        return await self._download(f"/products/{product_id}/image",
                                    if_none_match=if_none_match,
                                    params={"version": version})

    async def thumbnail(self, product_id: int, *, if_none_match: str | None = None
                        ) -> Download:
        return await self._download(f"/products/{product_id}/thumbnail",
                                    if_none_match=if_none_match)

    async def store_thumbnail(self, caller: Caller, product_id: int, version: int,
                              thumbnail: bytes, media_type: str) -> None:
        """Keep the thumbnail of image `version` (the worker, or an admin). `Refused`
        409 when a newer image was uploaded meanwhile, 404 when the product is gone."""
        await self._call("PUT", f"/products/{product_id}/thumbnail", caller,
                         params={"version": version}, content=thumbnail,
                         headers={"Content-Type": media_type})


class InventoryClient(ServiceApi):
    """Stock levels and adjustments."""

    async def stock(self, product_id: int) -> Json:
        return await self._object("GET", f"/stock/{product_id}")

    async def stock_levels(self, product_ids: list[int]) -> dict[int, Json]:
        """Stock levels of these products (at most 100), by product id."""
        if not product_ids:
            return {}
        levels = await self._list("GET", "/stock",
                                  params={"product_ids": ",".join(map(str, product_ids))})
        return {level["product_id"]: level for level in levels}

    async def overview(self, caller: Caller, *, limit: int, offset: int, low_only: bool
                       ) -> Json:
        """A page of every product's stock (admin)."""
        return await self._object("GET", "/inventory", caller, params={
            "limit": limit, "offset": offset, "low_only": str(low_only).lower()})

    async def adjust(self, caller: Caller, product_id: int, delta: int, reason: str) -> Json:
        """Add (or with a negative `delta`, remove) units; the new level (admin)."""
        return await self._object("POST", f"/inventory/{product_id}/adjust", caller,
                                  json={"delta": delta, "reason": reason})

    async def adjustments(self, caller: Caller, product_id: int, *, limit: int
                          ) -> list[Json]:
        """The product's latest stock changes, with their reasons (admin)."""
        return await self._list("GET", f"/inventory/{product_id}/adjustments", caller,
                                params={"limit": limit})

    # Reservations: checkout's steps, for orders only (its `ServiceCaller`).

    async def reserve(self, caller: Caller, order_id: uuid.UUID,
                      items: list[ReservedLine], ttl_seconds: int) -> Reservation:
        """Hold `items` for the order until it is paid or `ttl_seconds` pass (`Refused`
        409 when a product is short)."""
        return Reservation.model_validate(await self._object(
            "POST", "/reservations", caller, json={
                "order_id": str(order_id), "ttl_seconds": ttl_seconds,
                "items": [line.model_dump() for line in items]}))

    async def commit(self, caller: Caller, order_id: uuid.UUID) -> Reservation:
        """The order is paid: its held units leave the warehouse (`Refused` 409 when the
        reservation expired first)."""
        return Reservation.model_validate(
            await self._object("POST", f"/reservations/{order_id}/commit", caller))

    async def release(self, caller: Caller, order_id: uuid.UUID) -> Reservation:
        """The order will not be paid: its units are available again."""
        return Reservation.model_validate(
            await self._object("POST", f"/reservations/{order_id}/release", caller))


class CartClient(ServiceApi):
    """The caller's cart (its lines: product ids and quantities)."""

    async def lines(self, caller: Caller) -> list[Json]:
        return cast(list[Json], (await self._object("GET", "/cart", caller))["items"])

    async def add(self, caller: Caller, product_id: int, quantity: int) -> None:
        await self._call("POST", "/cart/items", caller,
                         json={"product_id": product_id, "quantity": quantity})

    async def set_quantity(self, caller: Caller, product_id: int, quantity: int) -> None:
        """Set a line's quantity (0 removes it)."""
        await self._call("PATCH", f"/cart/items/{product_id}", caller,
                         json={"quantity": quantity})

    async def remove(self, caller: Caller, product_id: int) -> None:
        await self._call("DELETE", f"/cart/items/{product_id}", caller)

    async def empty(self, caller: Caller) -> None:
        await self._call("DELETE", "/cart", caller)


class PaymentOutcomeUnknown(DependencyUnavailable):
    """Orders got the payment request but its answer was lost (it stopped, or the
    connection broke): the card may have been charged. Nothing is lost either way — a
    charge that went through reaches its order by itself (`payment.succeeded`), and
    paying the same order again never charges twice."""

    def __init__(self, order_id: str) -> None:
        super().__init__("orders", "no answer after the payment was sent", request_sent=True)
        self.code = "payment-outcome-unknown"
        self.detail = _(
            "The orders service did not answer; the charge may have gone through. Look "
            "at order {order_id} in a moment, or retry the payment: paying the same "
            "order again never charges twice.").format(order_id=order_id)
        self.extensions["order_id"] = order_id


class OrdersClient(ServiceApi):
    """Orders, their payment, and the sales summary."""

    async def place(self, caller: Caller, order: Json, *, idempotency_key: str | None
                    ) -> Json:
        """Place an order (its stock is reserved). The same key gives back the same
        order: a request sent twice never orders twice."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return await self._object("POST", "/orders", caller, json=order, headers=headers)

    async def pay(self, caller: Caller, order_id: uuid.UUID | str, payment: Json) -> Json:
        """Pay the order (the saga's charge and commit). The card's number and security
        code go to orders and payments in the body, and nowhere else. Raises
        `PaymentOutcomeUnknown` when orders got the request but its answer was lost."""
        try:
            return await self._object("POST", f"/orders/{order_id}/payment", caller,
                                      json=payment)
        except DependencyUnavailable as exc:
            if not exc.request_sent:
                raise
            raise PaymentOutcomeUnknown(str(order_id)) from exc

    async def page(self, caller: Caller, *, limit: int, offset: int) -> Json:
        """The caller's orders, newest first (`items`, `total`)."""
        return await self._object("GET", "/orders", caller,
                                  params={"limit": limit, "offset": offset})

    async def order(self, caller: Caller, order_id: uuid.UUID | str) -> Json:
        return await self._object("GET", f"/orders/{order_id}", caller)

    async def sales_summary(self, caller: Caller, *, since: datetime | None = None) -> Json:
        return await self._object("GET", "/sales/summary", caller, params={
            "since": since.isoformat() if since else None})


class PaymentsClient(ServiceApi):
    """Charges and refunds: for orders only (its `ServiceCaller`), and for admins."""

    async def charge(self, caller: Caller, charge: ChargeRequest) -> Payment:
        """Charge an order once (asking again gives back the same payment). `Refused`
        402 when the card is declined, 422 when its details fail the checks, 409 when
        the order was cancelled or already paid a different amount."""
        return Payment.model_validate(await self._object(
            "POST", "/charges", caller, json=charge.model_dump(mode="json")))

    async def payment(self, caller: Caller, payment_id: uuid.UUID) -> Payment:
        return Payment.model_validate(
            await self._object("GET", f"/charges/{payment_id}", caller))

    async def refund(self, caller: Caller, payment_id: uuid.UUID) -> Payment:
        """Give the money back (asking again changes nothing)."""
        return Payment.model_validate(
            await self._object("POST", f"/charges/{payment_id}/refund", caller))


class WorkerClient(ServiceApi):
    """What the worker keeps: the mailbox, notifications, reports and dead letters."""

    async def mailbox(self, caller: Caller, *, limit: int) -> list[Json]:
        return await self._list("GET", "/mailbox", caller, params={"limit": limit})

    async def notifications(self, caller: Caller, *, limit: int,
                            channel: str | None = None) -> list[Json]:
        return await self._list("GET", "/notifications", caller,
                                params={"channel": channel, "limit": limit})

    async def dead_letters(self, caller: Caller, *, limit: int) -> list[Json]:
        return await self._list("GET", "/dead-letters", caller, params={"limit": limit})

    async def replay_dead_letter(self, caller: Caller, sequence: int) -> Json:
        return await self._object("POST", f"/dead-letters/{sequence}/replay", caller)

    async def reports(self, caller: Caller, *, limit: int) -> list[Json]:
        return await self._list("GET", "/reports", caller, params={"limit": limit})

    async def make_inventory_report(self, caller: Caller) -> Json:
        return await self._object("POST", "/reports/inventory", caller)

    async def report_file(self, caller: Caller, report_id: uuid.UUID, file_format: str
                          ) -> Download:
        return await self._download(f"/reports/{report_id}.{file_format}", caller)


@dataclass(frozen=True)
class LabAnswer:
    """What the lab answered to one operation: its status and JSON. A deliberate SQL
    error is the lab's 500 with `"status": "error"`: an answer to show, not a failure
    (the lab marks it so, and `kit.http` neither retries it nor counts it against the
    lab's circuit breaker)."""

    status_code: int
    body: Json


class LabClient(ServiceApi):
    """The performance lab."""

    async def run(self, caller: Caller, path: str, request: Json) -> LabAnswer:
        """Run one operation (`path`, e.g. `/scenarios/n-plus-one/fixed`) with the seeds'
        request. The lab's refusals are `Refused`; its error answers are answers — a
        deliberate SQL error (500), or the lab's database lost mid-operation (503).
        Raises `DependencyUnavailable` when the lab cannot be reached or does not
        answer."""
        try:
            answer = await self.client.request("POST", path, json=request,
                                               headers=await caller.auth_headers())
        except DependencyUnavailable as exc:
            # A 503 that is the lab's own answer (it lost its database) still counts
            # against its breaker: that is a failure of the lab's, not the caller's.
            shown = _lab_error_answer(exc.response)
            if shown is None:
                raise
            return shown
        if answer.status_code >= 500:
            shown = _lab_error_answer(answer)
            if shown is None:
                raise DependencyUnavailable("lab", f"it answered HTTP {answer.status_code}")
            return shown
        if answer.status_code >= 400:
            raise Refused.from_response(answer)
        try:
            body = answer.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise DependencyUnavailable("lab", "its answer was not a JSON object")
        return LabAnswer(answer.status_code, body)


def _lab_error_answer(response: object) -> LabAnswer | None:
    """The lab's own error answer (`"status": "error"` in JSON) in `response`, else
    None."""
    if not isinstance(response, httpx.Response):
        return None
    if not response.headers.get("content-type", "").startswith("application/json"):
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("status") != "error":
        return None
    return LabAnswer(response.status_code, body)
