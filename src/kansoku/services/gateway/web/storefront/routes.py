"""The storefront's web pages, server-rendered from `templates/`.

Browsing (home, products, a product) is open to anyone; the cart, checkout and orders
need a logged-in customer (`CustomerDep` sends others to the login page and back). Every
form posts its CSRF token (`CsrfChecked`) and is answered the Post/Redirect/Get way: a
303 to the next page with a one-time notice, or the same page again with each mistake
in words next to its field. The key forms carry `data-rum-action` (add-to-cart,
checkout, place-order), so the pages' script measures them as user actions.

The pages read the shop through the same read model as the public API (`shop.py`) and
call the services through the same clients (`clients.py`), for the session's user; a
service that is away shows as the 503 page, never a traceback.
"""

from __future__ import annotations

import asyncio
import math
import re
import uuid
from typing import Annotated, Final, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from kansoku.contracts.calls import Json, Refused
from kansoku.kit.errors import DependencyUnavailable, Problem
from kansoku.kit.i18n import _, lazy_gettext
from kansoku.services.gateway.shop import PricedCart
from kansoku.services.gateway.state import Gateway, GatewayDep, limit_requests
from kansoku.services.gateway.web import forms
from kansoku.services.gateway.web.auth import (
    CsrfChecked,
    CustomerDep,
    LoginRefused,
    WebSessionDep,
    log_in,
    log_out,
    safe_next,
    see_other,
)
from kansoku.services.gateway.web.rendering import render
from kansoku.services.gateway.web.sessions import WebSession

router = APIRouter(include_in_schema=False)
#: Form posts count against the same per-address limit as the public API (the 429 page
#: beyond it): logging in here must not be a way around the API's limit on guessing
#: passwords. Reading pages is not limited (each costs no more than its API call).
LIMITED: Final = [Depends(limit_requests)]

#: Products on the home page, and on each page of the product list.
FEATURED_PRODUCTS: Final = 24
PRODUCTS_PER_PAGE: Final = 12
ORDERS_PER_PAGE: Final = 10
#: The most of one product a cart line holds (the cart service's own limit).
MAX_QUANTITY: Final = 99
SORTS: Final = {"id": lazy_gettext("Featured"), "name": lazy_gettext("Name"),
                "price": lazy_gettext("Price: low to high"),
                "-price": lazy_gettext("Price: high to low"), "newest": lazy_gettext("Newest")}
_CHECKOUT_KEY: Final = re.compile(r"^[0-9a-f]{32}$")

ProductId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _no_such_product(product_id: int) -> Problem:
    return Problem(404, "product-not-found",
                   _("There is no product {id}: it may have been removed from the shop."
                     ).format(id=product_id))


# --- browsing -------------------------------------------------------------------------

@router.get("/")
async def home(request: Request, session: WebSessionDep, gateway: GatewayDep) -> Response:
    """The home page: featured products and the categories."""
    page, categories = await asyncio.gather(
        gateway.clients.catalog.products(limit=FEATURED_PRODUCTS),
        gateway.shop.categories.get())
    return render(request, "home.html", {"products": page["items"], "total": page["total"],
                                         "categories": categories})


@router.get("/products")
async def products(
    request: Request, session: WebSessionDep, gateway: GatewayDep,
    category: Annotated[str | None, Query(max_length=64)] = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
    sort: Annotated[Literal["id", "name", "price", "-price", "newest"], Query()] = "id",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    """The product list: a category, search words, an order, a page."""
    category, search = category or None, (q or "").strip() or None
    found, categories = await asyncio.gather(
        gateway.shop.browse(category=category, search=search, sort=sort,
                            limit=PRODUCTS_PER_PAGE, offset=(page - 1) * PRODUCTS_PER_PAGE),
        gateway.shop.categories.get())
    current = next((c for c in categories if c["slug"] == category), None)
    pages = max(1, math.ceil(found["total"] / PRODUCTS_PER_PAGE))
    query = {key: value for key, value in
             (("category", category), ("q", search), ("sort", sort if sort != "id" else None))
             if value}
    return render(request, "products.html", {
        "products": found["items"], "total": found["total"], "categories": categories,
        "category": current, "category_slug": category, "search_words": search or "",
        "sort": sort, "sorts": SORTS, "page": page, "pages": pages, "query": query,
        "first": (page - 1) * PRODUCTS_PER_PAGE + 1 if found["items"] else 0,
        "last": (page - 1) * PRODUCTS_PER_PAGE + len(found["items"])})


async def _product(gateway: Gateway, product_id: int) -> Json:
    """The product with its stock, or the storefront's own 404 page."""
    try:
        return await gateway.shop.product(product_id)
    except Refused as refused:
        if refused.status == 404:
            raise _no_such_product(product_id) from refused
        raise


async def _product_page(request: Request, product: Json, *,
                        errors: dict[str, str] | None = None, quantity: int = 1,
                        status_code: int = 200) -> Response:
    return render(request, "product.html", {
        "product": product, "errors": errors or {}, "quantity": quantity,
        "max_quantity": _max_quantity(product)}, status_code=status_code)


def _max_quantity(product: Json) -> int:
    stock = product.get("stock")
    return MAX_QUANTITY if stock is None else max(0, min(MAX_QUANTITY, stock))


@router.get("/products/{product_id}")
async def product_detail(product_id: ProductId, request: Request, session: WebSessionDep,
                         gateway: GatewayDep) -> Response:
    """One product: picture, description, price and whether it is in stock."""
    return await _product_page(request, await _product(gateway, product_id))


# --- the cart -------------------------------------------------------------------------

@router.post("/cart/items", dependencies=LIMITED)
async def add_to_cart(request: Request, checked: CsrfChecked, customer: CustomerDep,
                      gateway: GatewayDep) -> Response:
    """Add units of a product to the cart (the product page's form)."""
    form = await request.form()
    product_id = forms.whole_number(form, "product_id")
    if product_id is None or product_id < 1:
        raise Problem(422, "product-needed", _("Choose a product to add to your cart."))
    found = await _product(gateway, product_id)
    quantity = forms.whole_number(form, "quantity")
    error = None
    if quantity is None or not 1 <= quantity <= MAX_QUANTITY:
        error = _("Choose how many to add: 1 to {most}.").format(most=MAX_QUANTITY)
    elif found["stock_status"] == "out":
        error = _("This product is sold out: it cannot be added to your cart.")
    else:
        in_cart = await gateway.shop.cart_quantity(customer, product_id)
        available = found["stock"] if found["stock"] is not None else MAX_QUANTITY
        if in_cart + quantity > min(available, MAX_QUANTITY):
            most = min(available, MAX_QUANTITY)
            error = (_("Only {most} can be bought, and your cart holds {in_cart} already: "
                       "choose fewer.") if in_cart else
                     _("Only {most} can be bought: choose fewer.")).format(
                         most=most, in_cart=in_cart)
    if error:
        return await _product_page(request, found, errors={"quantity": error},
                                   quantity=quantity or 1, status_code=422)
    assert quantity is not None
    await gateway.clients.cart.add(customer, product_id, quantity)
    customer.add_message(_("Added {quantity} of {name} to your cart.").format(
        quantity=quantity, name=found["name"]))
    return see_other("/cart")


async def _cart_page(request: Request, gateway: Gateway, customer: WebSession, *,
                     errors: dict[int, str] | None = None, status_code: int = 200
                     ) -> Response:
    cart = await gateway.shop.priced_cart(customer)
    levels = await gateway.shop.stock_levels([item.product_id for item in cart.items])
    shortages = _shortages(cart, levels)
    return render(request, "cart.html", {
        "cart": cart, "stock": levels, "errors": {**shortages, **(errors or {})},
        "max_quantity": MAX_QUANTITY}, status_code=status_code)


def _shortages(cart: PricedCart, levels: dict[int, Json]) -> dict[int, str]:
    """Cart lines wanting more than can be bought now, with what to do about it."""
    shortages = {}
    for item in cart.items:
        level = levels.get(item.product_id)
        if level is None or item.quantity <= level["available"]:
            continue
        if level["available"] == 0:
            shortages[item.product_id] = _("Sold out: remove it to check out.")
        else:
            shortages[item.product_id] = _("Only {available} left: lower the quantity "
                                           "to check out.").format(
                                               available=level["available"])
    return shortages


@router.get("/cart")
async def cart(request: Request, customer: CustomerDep, gateway: GatewayDep) -> Response:
    """The cart: change quantities, remove lines, go to checkout."""
    return await _cart_page(request, gateway, customer)


@router.post("/cart/items/{product_id}", dependencies=LIMITED)
async def change_quantity(product_id: ProductId, request: Request, checked: CsrfChecked,
                          customer: CustomerDep, gateway: GatewayDep) -> Response:
    """Set a cart line's quantity (0 removes it)."""
    quantity = forms.whole_number(await request.form(), "quantity")
    if quantity is None or quantity > MAX_QUANTITY:
        return await _cart_page(
            request, gateway, customer, status_code=422,
            errors={product_id: _("Choose a quantity from 0 to {most}.").format(
                most=MAX_QUANTITY)})
    await gateway.clients.cart.set_quantity(customer, product_id, quantity)
    customer.add_message(_("Your cart was updated.") if quantity
                         else _("Removed from your cart."))
    return see_other("/cart")


@router.post("/cart/items/{product_id}/remove", dependencies=LIMITED)
async def remove_from_cart(product_id: ProductId, request: Request, checked: CsrfChecked,
                           customer: CustomerDep, gateway: GatewayDep) -> Response:
    """Remove a line from the cart."""
    await gateway.clients.cart.remove(customer, product_id)
    customer.add_message(_("Removed from your cart."))
    return see_other("/cart")


@router.post("/cart/checkout", dependencies=LIMITED)
async def start_checkout(request: Request, checked: CsrfChecked, customer: CustomerDep,
                         gateway: GatewayDep) -> Response:
    """Go to checkout, once everything in the cart can be bought."""
    cart = await gateway.shop.priced_cart(customer)
    if not cart.items:
        customer.add_message(_("Your cart is empty: add products first."))
        return see_other("/cart")
    levels = await gateway.shop.stock_levels([item.product_id for item in cart.items])
    if _shortages(cart, levels):
        return await _cart_page(request, gateway, customer, status_code=409)
    return see_other("/checkout")


# --- checkout -------------------------------------------------------------------------

def _checkout_page(request: Request, cart: PricedCart, *, values: dict[str, str],
                   errors: dict[str, str], status_code: int = 200,
                   checkout_key: str | None = None) -> Response:
    return render(request, "checkout.html", {
        "cart": cart, "values": values, "errors": errors,
        # One key per order attempt: the same form sent twice places one order.
        "checkout_key": checkout_key or uuid.uuid4().hex,
        "countries": forms.country_names(), "months": range(1, 13),
        "years": forms.expiry_years()}, status_code=status_code)


@router.get("/checkout")
async def checkout(request: Request, customer: CustomerDep, gateway: GatewayDep
                   ) -> Response:
    """The checkout form: where to send the order and the card to pay with."""
    cart = await gateway.shop.priced_cart(customer)
    if not cart.items:
        customer.add_message(_("Your cart is empty: add products first."))
        return see_other("/cart")
    return _checkout_page(request, cart, values={"country": "US"}, errors={})


#: Fields a service names in its answer → the checkout form's field.
_CHECKOUT_FIELDS: Final = {
    "payment_details.card_number": "card_number", "payment_details.expiry_year": "expiry",
    "payment_details.expiry_month": "expiry", "payment_details.cvv": "cvv",
    "payment_details": "card_number", "shipping_address.street": "street",
    "shipping_address.city": "city", "shipping_address.state": "state",
    "shipping_address.zip": "zip", "shipping_address.country": "country",
}


@router.post("/checkout", dependencies=LIMITED)
async def place_order(request: Request, checked: CsrfChecked, customer: CustomerDep,
                      gateway: GatewayDep) -> Response:
    """Place the order and pay it: the checkout saga (reserve the stock, charge the
    card, commit the stock). Mistakes and declines show on the form again; the card
    number and security code are never shown back."""
    form = await request.form()
    sent_key = forms.text(form, "checkout_key")
    key = sent_key if _CHECKOUT_KEY.match(sent_key) else uuid.uuid4().hex
    cart = await gateway.shop.priced_cart(customer)
    if not cart.items:
        customer.add_message(_("Your cart is empty: add products first."))
        return see_other("/cart")
    filled = forms.checkout(form)
    if not filled.ok:
        return _checkout_page(request, cart, values=filled.values, errors=filled.errors,
                              status_code=422, checkout_key=key)

    orders = gateway.clients.orders
    # The order as the customer sees it in the cart; the same key gives back the same
    # order, so a form sent twice never orders twice.
    order = {"items": [{"product_id": item.product_id, "quantity": item.quantity}
                       for item in cart.items],
             "shipping_address": filled.data["address"]}
    try:
        placed = await orders.place(customer, order, idempotency_key=key)
        if placed["status"] == "cancelled":
            # This key's order was declined earlier (its page was sent again): a new one.
            key = uuid.uuid4().hex
            placed = await orders.place(customer, order, idempotency_key=key)
    except Refused as refused:
        field = _CHECKOUT_FIELDS.get(refused.field or "", "form")
        return _checkout_page(request, cart, values=filled.values,
                              errors={field: refused.detail}, status_code=refused.status)
    if placed["status"] != "paid":
        try:
            payment = await orders.pay(customer, placed["id"], {
                "payment_method": "credit_card", "payment_details": filled.data["card"]})
        except Refused as refused:
            return _declined(request, cart, filled, refused, key)
        except DependencyUnavailable:
            return _checkout_page(
                request, cart, values=filled.values, status_code=503,
                errors={"form": _("The payment could not be made right now, so nothing "
                                  "was charged and the order was not placed. Please try "
                                  "again in a minute.")})
        customer.add_message(_("Payment received: {brand} card ending {last4}.").format(
            brand=str(payment["brand"]).upper(), last4=payment["last4"]))
    await gateway.shop.empty_cart(customer)
    return see_other(f"/orders/{placed['id']}/confirmation")


def _declined(request: Request, cart: PricedCart, filled: forms.Checked,
              refused: Refused, key: str) -> Response:
    """The checkout form again after the payment was refused, saying why."""
    if refused.status == 402:
        # Declined: orders cancelled that order and freed its stock; the cart is as it
        # was, and the next attempt is a new order.
        return _checkout_page(request, cart, values=filled.values, status_code=402, errors={
            "card_number": _("{reason} Nothing was charged: use another card.").format(
                reason=refused.detail)})
    if refused.status == 422:
        # The card failed the processor's checks: the order waits, the same key pays it.
        field = _CHECKOUT_FIELDS.get(refused.field or "", "card_number")
        return _checkout_page(request, cart, values=filled.values, status_code=422,
                              errors={field: refused.detail}, checkout_key=key)
    return _checkout_page(request, cart, values=filled.values, status_code=refused.status,
                          errors={"form": refused.detail})


# --- orders ---------------------------------------------------------------------------

@router.get("/orders")
async def orders(request: Request, customer: CustomerDep, gateway: GatewayDep,
                 page: Annotated[int, Query(ge=1, le=10_000)] = 1) -> Response:
    """The customer's orders, newest first."""
    found = await gateway.clients.orders.page(customer, limit=ORDERS_PER_PAGE,
                                              offset=(page - 1) * ORDERS_PER_PAGE)
    return render(request, "orders.html", {
        "orders": found["items"], "total": found["total"], "page": page,
        "pages": max(1, math.ceil(found["total"] / ORDERS_PER_PAGE))})


async def _order_page(request: Request, gateway: Gateway, customer: WebSession,
                      order_id: str, *, just_placed: bool) -> Response:
    not_yours = Problem(404, "order-not-found", _("You have no order with this number: see "
                                                  "your orders for the ones you placed."))
    if not _is_uuid(order_id):
        raise not_yours
    try:
        found = await gateway.clients.orders.order(customer, order_id)
    except Refused as refused:
        if refused.status in (404, 422):
            raise not_yours from refused
        raise
    return render(request, "order.html", {"order": found, "just_placed": just_placed})


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


@router.get("/orders/{order_id}")
async def order(order_id: str, request: Request, customer: CustomerDep,
                gateway: GatewayDep) -> Response:
    """One order: what was bought, where it goes, and its status."""
    return await _order_page(request, gateway, customer, order_id, just_placed=False)


@router.get("/orders/{order_id}/confirmation")
async def order_confirmation(order_id: str, request: Request, customer: CustomerDep,
                             gateway: GatewayDep) -> Response:
    """The page after paying: thank you, and the order number."""
    return await _order_page(request, gateway, customer, order_id, just_placed=True)


# --- accounts -------------------------------------------------------------------------

@router.get("/login")
async def login_form(request: Request, session: WebSessionDep,
                     next: Annotated[str | None, Query(max_length=2000)] = None
                     ) -> Response:
    """The login form."""
    if session.logged_in:
        return see_other(safe_next(next))
    return render(request, "login.html", {"values": {}, "errors": {}, "next": safe_next(next)})


@router.post("/login", dependencies=LIMITED)
async def login(request: Request, session: CsrfChecked) -> Response:
    """Log in, then go back to the page that asked for it."""
    form = await request.form()
    target = safe_next(forms.text(form, "next"))
    filled = forms.login(form)
    if filled.ok:
        try:
            await log_in(request, filled.data["email"], filled.data["password"])
        except LoginRefused as refused:
            filled.errors["password"] = refused.message
        else:
            return see_other(target)
    return render(request, "login.html", {"values": filled.values, "errors": filled.errors,
                                          "next": target}, status_code=422)


@router.get("/register")
async def registration_form(request: Request, session: WebSessionDep,
                            next: Annotated[str | None, Query(max_length=2000)] = None
                            ) -> Response:
    """The form to open an account."""
    if session.logged_in:
        return see_other(safe_next(next))
    return render(request, "register.html",
                  {"values": {}, "errors": {}, "next": safe_next(next)})


@router.post("/register", dependencies=LIMITED)
async def register(request: Request, session: CsrfChecked, gateway: GatewayDep
                   ) -> Response:
    """Open an account and log in with it."""
    form = await request.form()
    target = safe_next(forms.text(form, "next"))
    filled = forms.registration(form)
    if filled.ok:
        try:
            await gateway.clients.identity.register(filled.data)
        except Refused as refused:
            field = refused.field if refused.field in ("name", "email", "password") else "email"
            filled.errors[field] = refused.detail
        else:
            try:
                customer = await log_in(request, filled.data["email"],
                                        filled.data["password"])
            except LoginRefused:  # made, but not (yet) accepted: log in by hand
                session.add_message(_("Your account is ready: log in with it."))
                return see_other(f"/login?next={quote(target, safe='/')}")
            customer.add_message(_("Welcome, {name}: your account is ready.").format(
                name=filled.data["name"]))
            return see_other(target)
    return render(request, "register.html", {"values": filled.values, "errors": filled.errors,
                                             "next": target}, status_code=422)


@router.post("/logout", dependencies=LIMITED)
async def logout(request: Request, session: CsrfChecked) -> Response:
    """Log out: the session ends, here and in Valkey."""
    await log_out(request)
    return see_other("/")
