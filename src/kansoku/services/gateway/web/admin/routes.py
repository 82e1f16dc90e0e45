"""The admin's web pages (admin role only), server-rendered from `templates/admin/`.

Every page takes `AdminDep` (anonymous visitors are sent to `/admin/login`, customers
get the 403 page) and every form post `AdminPost`, which also checks the form's CSRF
token. A post that worked answers 303 to the next page (Post/Redirect/Get) with a
one-time notice; one with mistakes shows the form again, each mistake in words next to
its field. The pages call the services for the admin's own session, so each service
still checks the role itself; public reads (the catalog) go without a token.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Annotated, Any, Final
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from kansoku.contracts.calls import Json, Refused
from kansoku.kit.errors import DependencyUnavailable, Problem
from kansoku.kit.i18n import _
from kansoku.services.gateway import faults
from kansoku.services.gateway.api.schemas import NewProduct, ProductChange, StockChange
from kansoku.services.gateway.state import Gateway, GatewayDep
from kansoku.services.gateway.web import forms
from kansoku.services.gateway.web.auth import (
    AdminDep,
    AdminPost,
    CsrfChecked,
    LoginRefused,
    WebSessionDep,
    log_in,
    safe_next,
    see_other,
)
from kansoku.services.gateway.web.forms import LABELS, FieldError, field_help
from kansoku.services.gateway.web.rendering import render
from kansoku.services.gateway.web.sessions import WebSession

router = APIRouter(prefix="/admin", include_in_schema=False)


async def _posted_form(request: Request) -> AsyncIterator[FormData]:
    """The posted form (parsed once per request, the CSRF check reads it too); the
    uploaded files it holds are closed (their temporary files removed) afterwards."""
    form = await request.form()
    try:
        yield form
    finally:
        await form.close()


#: Route parameter type: the posted form's fields and files.
PostedForm = Annotated[FormData, Depends(_posted_form)]

PRODUCTS_PER_PAGE: Final = 25
STOCK_PER_PAGE: Final = 50


def _page_links(path: str, params: Mapping[str, Any], *, offset: int, per_page: int,
                total: int) -> dict[str, str | None]:
    """The previous and next page's addresses (None at either end)."""
    def link(new_offset: int) -> str:
        query = {key: value for key, value in params.items() if value}
        if new_offset:
            query["offset"] = new_offset
        return f"{path}?{urlencode(query)}" if query else path
    return {"previous_url": link(max(offset - per_page, 0)) if offset > 0 else None,
            "next_url": link(offset + per_page) if offset + per_page < total else None}


def _offset(request: Request) -> int:
    raw = request.query_params.get("offset", "0")
    return int(raw) if raw.isdigit() and len(raw) < 10 else 0


# --- logging in -----------------------------------------------------------------------

@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, session: WebSessionDep) -> Response:
    """The admin's login form; an admin already logged in goes straight on."""
    target = safe_next(request.query_params.get("next"), "/admin")
    if session.is_admin:
        return see_other(target)
    return _login_form(request, target, email="", errors={})


def _login_form(request: Request, target: str, *, email: str, errors: dict[str, str],
                status_code: int = 200) -> HTMLResponse:
    return render(request, "admin/login.html", {
        "heading": _("Admin login"), "next": target, "values": {"email": email},
        "errors": errors, "labels": LABELS}, status_code=status_code)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, session: CsrfChecked, form: PostedForm) -> Response:
    """Log in with e-mail and password; an admin goes on to `next`."""
    email, password = forms.text(form, "email"), form.get("password")
    target = safe_next(forms.text(form, "next"), "/admin")
    errors = {}
    if not email:
        errors["email"] = field_help("email")
    if not isinstance(password, str) or not password:
        errors["password"] = field_help("password")
    if errors:
        return _login_form(request, target, email=email, errors=errors, status_code=422)
    assert isinstance(password, str)
    try:
        session = await log_in(request, email, password)
    except LoginRefused as refused:
        return _login_form(request, target, email=email, errors={"form": refused.message},
                           status_code=401)
    if not session.is_admin:
        # A customer's right password: they are logged in (as a customer), but the
        # admin pages stay closed.
        return _login_form(request, target, email=email, status_code=403, errors={
            "form": _("{email} is a customer account: it cannot open the admin pages. "
                      "Log in with an administrator's account.").format(email=email)})
    session.add_message(_("Logged in as {who}.").format(who=session.email))
    return see_other(target)


# --- the dashboard --------------------------------------------------------------------

@router.get("", response_class=HTMLResponse)
async def dashboard(request: Request, admin: AdminDep, gateway: GatewayDep) -> Response:
    """Today's orders and revenue, products low on stock, dead letters, and the recent
    failures, with links into the explorer."""
    board = await gateway.shop.dashboard(admin)
    return render(request, "admin/dashboard.html", {
        "heading": _("Dashboard"), "section": "/admin", "board": board})


# --- products -------------------------------------------------------------------------

async def _category_options(gateway: Gateway) -> list[tuple[str, str]]:
    """(slug, name) for the category choice; "" is Uncategorized."""
    categories = await gateway.clients.catalog.categories()
    return [("", _("Uncategorized"))] + [(c["slug"], c["name"]) for c in categories
                                      if c["slug"] != "uncategorized"]


@router.get("/products", response_class=HTMLResponse)
async def products(request: Request, admin: AdminDep, gateway: GatewayDep) -> Response:
    """Every product, newest first: search, filter by category, page."""
    search = request.query_params.get("q", "").strip()[:100]
    category = request.query_params.get("category", "").strip()[:64]
    offset = _offset(request)
    categories = await gateway.clients.catalog.categories()
    if category not in {c["slug"] for c in categories}:
        category = ""
    page = await gateway.shop.products_with_stock(limit=PRODUCTS_PER_PAGE, offset=offset,
                                                  search=search, category=category)
    return render(request, "admin/products.html", {
        "heading": _("Products"), "section": "/admin/products", "page": page,
        "search": search, "categories": categories, "chosen_category": category,
        **_page_links("/admin/products", {"q": search, "category": category},
                      offset=offset, per_page=PRODUCTS_PER_PAGE, total=page["total"])})


@router.get("/products/new", response_class=HTMLResponse)
async def new_product_page(request: Request, admin: AdminDep, gateway: GatewayDep
                           ) -> Response:
    """The form for a new product, with its picture."""
    return await _new_product_form(request, gateway, {"currency": "USD", "inventory": "0"},
                                   {})


async def _product_form(gateway: Gateway) -> dict[str, Any]:
    """What both product forms (new, and editing) show besides the product."""
    return {"labels": LABELS, "category_options": await _category_options(gateway),
            "max_image_kib": gateway.settings.max_image_bytes // 1024}


async def _new_product_form(request: Request, gateway: Gateway, values: dict[str, str],
                            errors: dict[str, str], status_code: int = 200) -> HTMLResponse:
    return render(request, "admin/new_product.html", {
        "heading": _("New product"), "section": "/admin/products/new", "values": values,
        "errors": errors, **await _product_form(gateway)}, status_code=status_code)


@router.post("/products/new", response_class=HTMLResponse)
async def create_product(request: Request, admin: AdminPost, form: PostedForm,
                         gateway: GatewayDep) -> Response:
    """Create the product with its starting stock, then upload its picture (the worker
    makes the thumbnail a moment later)."""
    values = forms.values(form, (*forms.PRODUCT_FIELDS, "inventory"))
    new, errors = forms.validated(NewProduct, forms.product(form, with_stock=True))
    try:
        image = await forms.picture_from(form, gateway.settings.max_image_bytes)
    except FieldError as mistake:
        errors[mistake.field] = mistake.message
        image = None
    if new is None or errors:
        return await _new_product_form(request, gateway, values, errors, status_code=422)
    try:
        product = await gateway.shop.create_product(
            admin, new.model_dump(mode="json", exclude={"inventory"}), new.inventory)
    except Refused as refused:
        return await _new_product_form(request, gateway, values,
                                       forms.refusal_errors(refused),
                                       status_code=refused.status)
    notice = _("“{name}” was created with {units} in stock.").format(
        name=product["name"], units=new.inventory)
    if image is not None:
        try:
            await gateway.clients.catalog.upload_image(admin, product["id"], *image)
            notice += " " + _("Its thumbnail is being made.")
        except Refused as refused:
            notice += " " + _("Its picture was not accepted ({reason}): choose another one "
                              "below.").format(reason=refused.detail)
    admin.add_message(notice)
    return see_other(f"/admin/products/{product['id']}")


async def _product_or_404(gateway: Gateway, product_id: int) -> Json:
    try:
        return await gateway.clients.catalog.product(product_id)
    except Refused as refused:
        if refused.status == 404:
            raise Problem(404, "product-not-found",
                          _("There is no product {id}: it may have been deleted.").format(
                              id=product_id), title="Not Found") from refused
        raise


async def _product_page(request: Request, gateway: Gateway, product: Json, *,
                        values: dict[str, str] | None = None,
                        errors: dict[str, str] | None = None,
                        image_errors: dict[str, str] | None = None,
                        status_code: int = 200) -> HTMLResponse:
    try:
        stock: Json | None = await gateway.clients.inventory.stock(product["id"])
    except DependencyUnavailable:
        stock = None
    if values is None:
        category = product["category"]["slug"]
        # The words as stored in each language (the product's `name` is the reader's).
        texts = product.get("texts") or {}
        english = texts.get("en") or {"name": product["name"],
                                      "description": product["description"]}
        japanese = texts.get("ja") or {"name": "", "description": ""}
        values = {"name": english["name"], "description": english["description"],
                  "name_ja": japanese["name"], "description_ja": japanese["description"],
                  "price": str(product["price"]), "currency": product["currency"],
                  "category": "" if category == "uncategorized" else category,
                  "sku": product["sku"]}
    return render(request, "admin/product.html", {
        "heading": product["name"], "section": "/admin/products", "product": product,
        "stock": stock, "values": values, "errors": errors or {},
        "image_errors": image_errors or {}, **await _product_form(gateway)},
        status_code=status_code)


@router.get("/products/{product_id}", response_class=HTMLResponse)
async def product_page(request: Request, product_id: int, admin: AdminDep,
                       gateway: GatewayDep) -> Response:
    """One product: its picture and thumbnail, its details to edit, its stock."""
    return await _product_page(request, gateway, await _product_or_404(gateway, product_id))


@router.post("/products/{product_id}", response_class=HTMLResponse)
async def save_product(request: Request, product_id: int, admin: AdminPost,
                       form: PostedForm, gateway: GatewayDep) -> Response:
    """Save the product's details."""
    product = await _product_or_404(gateway, product_id)
    values = forms.values(form, forms.PRODUCT_FIELDS)
    change, errors = forms.validated(ProductChange, forms.product(form, with_stock=False))
    if change is None:
        return await _product_page(request, gateway, product, values=values, errors=errors,
                                   status_code=422)
    try:
        await gateway.clients.catalog.replace_product(admin, product_id,
                                                      change.model_dump(mode="json"))
    except Refused as refused:
        return await _product_page(request, gateway, product, values=values,
                                   errors=forms.refusal_errors(refused),
                                   status_code=refused.status)
    admin.add_message(_("Your changes were saved."))
    return see_other(f"/admin/products/{product_id}")


@router.post("/products/{product_id}/image", response_class=HTMLResponse)
async def upload_image(request: Request, product_id: int, admin: AdminPost,
                       form: PostedForm, gateway: GatewayDep) -> Response:
    """Replace the product's picture."""
    product = await _product_or_404(gateway, product_id)
    try:
        image = await forms.picture_from(form, gateway.settings.max_image_bytes)
        if image is None:
            raise FieldError("image", _("Choose a picture to upload."))
        await gateway.clients.catalog.upload_image(admin, product_id, *image)
    except FieldError as mistake:
        return await _product_page(request, gateway, product,
                                   image_errors={"image": mistake.message}, status_code=422)
    except Refused as refused:
        return await _product_page(request, gateway, product,
                                   image_errors={"image": refused.detail},
                                   status_code=refused.status)
    admin.add_message(_("The new picture was uploaded. Its thumbnail is being made."))
    return see_other(f"/admin/products/{product_id}")


@router.get("/products/{product_id}/delete", response_class=HTMLResponse)
async def delete_product_page(request: Request, product_id: int, admin: AdminDep,
                              gateway: GatewayDep) -> Response:
    """Ask before deleting: it cannot be undone."""
    product = await _product_or_404(gateway, product_id)
    return render(request, "admin/delete_product.html", {
        "heading": _("Delete a product"), "section": "/admin/products", "product": product})


@router.post("/products/{product_id}/delete", response_class=HTMLResponse)
async def delete_product(request: Request, product_id: int, admin: AdminPost,
                         gateway: GatewayDep) -> Response:
    """Delete the product (after the confirmation page)."""
    product = await _product_or_404(gateway, product_id)
    await gateway.clients.catalog.delete_product(admin, product_id)
    admin.add_message(_("“{name}” was deleted.").format(name=product["name"]))
    return see_other("/admin/products")


# --- inventory ------------------------------------------------------------------------

@router.get("/inventory", response_class=HTMLResponse)
async def inventory(request: Request, admin: AdminDep, gateway: GatewayDep) -> Response:
    """Stock levels and reservations of every product, low stock highlighted."""
    low_only = request.query_params.get("low") in ("1", "true", "on")
    offset = _offset(request)
    page = await gateway.shop.stock_overview(admin, limit=STOCK_PER_PAGE, offset=offset,
                                             low_only=low_only)
    return render(request, "admin/inventory.html", {
        "heading": _("Inventory"), "section": "/admin/inventory", "page": page,
        "low_only": low_only,
        **_page_links("/admin/inventory", {"low": "1" if low_only else ""}, offset=offset,
                      per_page=STOCK_PER_PAGE, total=page["total"])})


async def _adjust_page(request: Request, gateway: Gateway, admin: WebSession,
                       product_id: int, *, values: dict[str, str], errors: dict[str, str],
                       status_code: int = 200) -> HTMLResponse:
    clients = gateway.clients
    stock = await clients.inventory.stock(product_id)
    try:
        product = (await clients.catalog.products_by_id([product_id])).get(product_id)
    except DependencyUnavailable:
        product = None
    try:
        history: list[Json] | None = await clients.inventory.adjustments(admin, product_id,
                                                                         limit=10)
    except (DependencyUnavailable, Refused):
        history = None
    heading = (_("Stock of {name}").format(name=product["name"]) if product
               else _("Stock of product #{id}").format(id=product_id))
    return render(request, "admin/adjust_stock.html", {
        "heading": heading, "section": "/admin/inventory",
        "product_id": product_id, "product": product, "stock": stock, "history": history,
        "values": values, "errors": errors, "labels": LABELS}, status_code=status_code)


@router.get("/inventory/{product_id}", response_class=HTMLResponse)
async def adjust_page(request: Request, product_id: int, admin: AdminDep,
                      gateway: GatewayDep) -> Response:
    """One product's stock, and the form to restock or adjust it."""
    return await _adjust_page(request, gateway, admin, product_id, values={}, errors={})


@router.post("/inventory/{product_id}", response_class=HTMLResponse)
async def adjust_stock(request: Request, product_id: int, admin: AdminPost,
                       form: PostedForm, gateway: GatewayDep) -> Response:
    """Restock (add units) or adjust (remove units), with a reason."""
    values = forms.values(form, ("delta", "reason"))
    delta = values["delta"].removeprefix("+")
    change, errors = forms.validated(StockChange, {"delta": delta or None,
                                                   "reason": values["reason"]})
    if delta.lstrip("-").isdigit() and int(delta) == 0:  # valid, but changes nothing
        change, errors = None, {"delta": field_help("delta"), **errors}
    if change is None:
        return await _adjust_page(request, gateway, admin, product_id, values=values,
                                  errors=errors, status_code=422)
    try:
        level = await gateway.clients.inventory.adjust(admin, product_id, change.delta,
                                                       change.reason)
    except Refused as refused:
        return await _adjust_page(request, gateway, admin, product_id, values=values,
                                  errors=forms.refusal_errors(refused),
                                  status_code=refused.status)
    done = (_("Added {units} (“{reason}”): {available} available now.") if change.delta > 0
            else _("Removed {units} (“{reason}”): {available} available now."))
    admin.add_message(done.format(units=abs(change.delta), reason=change.reason,
                                  available=level["available"]))
    return see_other(f"/admin/inventory/{product_id}")


# --- the mailbox and dead letters -----------------------------------------------------

@router.get("/mailbox", response_class=HTMLResponse)
async def mailbox(request: Request, admin: AdminDep, gateway: GatewayDep) -> Response:
    """The e-mails (and text and push messages) the shop sent, newest first."""
    worker = gateway.clients.worker
    mails = await worker.mailbox(admin, limit=100)
    try:
        notifications: list[Json] | None = await worker.notifications(admin, limit=50)
    except (DependencyUnavailable, Refused):
        notifications = None
    return render(request, "admin/mailbox.html", {
        "heading": _("Mailbox"), "section": "/admin/mailbox", "mails": mails,
        "notifications": notifications})


@router.get("/dead-letters", response_class=HTMLResponse)
async def dead_letters(request: Request, admin: AdminDep, gateway: GatewayDep) -> Response:
    """Events every delivery failed for, with their error; replay each."""
    return await _dead_letters_page(request, gateway, admin)


async def _dead_letters_page(request: Request, gateway: Gateway, admin: WebSession, *,
                             replay_error: str | None = None,
                             status_code: int = 200) -> HTMLResponse:
    letters = await gateway.clients.worker.dead_letters(admin, limit=200)
    return render(request, "admin/dead_letters.html", {
        "heading": _("Dead letters"), "section": "/admin/dead-letters", "letters": letters,
        "replay_error": replay_error}, status_code=status_code)


@router.post("/dead-letters/{sequence}/replay", response_class=HTMLResponse)
async def replay_dead_letter(request: Request, sequence: int, admin: AdminPost,
                             gateway: GatewayDep) -> Response:
    """Deliver a dead letter again."""
    try:
        replayed = await gateway.clients.worker.replay_dead_letter(admin, sequence)
    except Refused as refused:
        return await _dead_letters_page(request, gateway, admin, replay_error=refused.detail,
                                        status_code=refused.status)
    admin.add_message(_("Dead letter {sequence} was delivered again to {subject}.").format(
        sequence=sequence, subject=replayed.get("subject", "?")))
    return see_other("/admin/dead-letters")


# --- fault flags ---------------------------------------------------------------------

async def _faults_page(request: Request, gateway: Gateway, *, error: str | None = None,
                       status_code: int = 200) -> HTMLResponse:
    rows, unreadable, writable = await faults.page_rows(gateway.settings)
    return render(request, "admin/faults.html", {
        "heading": _("Faults"), "section": "/admin/faults", "flags": rows,
        "writable": writable, "error": error or unreadable}, status_code=status_code)


@router.get("/faults", response_class=HTMLResponse)
async def fault_flags(request: Request, admin: AdminDep, gateway: GatewayDep) -> Response:
    """Every fault flag: what it does, where to look, its variant, and a switch."""
    return await _faults_page(request, gateway)


@router.post("/faults/reset", response_class=HTMLResponse)
async def reset_fault_flags(request: Request, admin: AdminPost) -> Response:
    """Turn every flag off."""
    await faults.reset(faults.flag_store(request))
    admin.add_message(_("Every fault flag is off."))
    return see_other("/admin/faults")


@router.post("/faults/{name}", response_class=HTMLResponse)
async def switch_fault_flag(request: Request, name: str, admin: AdminPost,
                            form: PostedForm, gateway: GatewayDep) -> Response:
    """Switch one flag to the variant chosen in its form."""
    try:
        flag = await faults.switch(faults.flag_store(request), name,
                                   forms.text(form, "variant"))
    except Problem as problem:
        if problem.status >= 500:
            raise
        return await _faults_page(request, gateway, error=problem.detail,
                                  status_code=problem.status)
    admin.add_message(_("{flag} is now {variant}.").format(flag=flag.name, variant=flag.variant)
                      if flag.variant != "off" else _("{flag} is off.").format(flag=flag.name))
    return see_other("/admin/faults")
